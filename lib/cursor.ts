// Opaque keyset cursors: base64url JSON tagged with the list they belong to, strictly checked on the way back.
import { badRequest } from './errors.js'
import { UUID } from './ids.js'

type CursorValue = string | number

/** Encodes a keyset position (the sort key of the last item served) for the list named `kind`. */
export function encodeCursor (kind: string, position: readonly CursorValue[]): string {
  return Buffer.from(JSON.stringify({ v: 1, k: kind, p: position }), 'utf8').toString('base64url')
}

const BASE64URL = /^[A-Za-z0-9_-]{1,1024}$/

/**
 * Decodes a cursor issued by `encodeCursor` for the same `kind`, with one value per entry of `shape`
 * ('string' | 'number' | 'uuid' | 'date'). Anything else is a 400: a cursor from another list, a
 * hand-made or truncated one never reaches SQL.
 */
export function decodeCursor (kind: string, raw: string, shape: ReadonlyArray<'string' | 'number' | 'uuid' | 'date'>): CursorValue[] {
  const invalid = badRequest('cursor is not one this list issued')
  if (!BASE64URL.test(raw)) throw invalid
  let parsed: unknown
  try { parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) } catch { throw invalid }
  if (typeof parsed !== 'object' || parsed === null) throw invalid
  const { v, k, p } = parsed as { v?: unknown, k?: unknown, p?: unknown }
  if (v !== 1 || k !== kind || !Array.isArray(p) || p.length !== shape.length) throw invalid
  return shape.map((type, i) => {
    const value: unknown = p[i]
    switch (type) {
      case 'number':
        if (typeof value === 'number' && Number.isSafeInteger(value)) return value
        break
      case 'uuid':
        if (typeof value === 'string' && UUID.test(value)) return value
        break
      case 'date':
        if (typeof value === 'string' && !Number.isNaN(Date.parse(value)) && value.length <= 40) return value
        break
      case 'string':
        if (typeof value === 'string' && value.length <= 512 && !value.includes('\u0000')) return value
        break
    }
    throw invalid
  })
}
