// The table runner of test/hostile: each row is one malformed or malicious request with the exact status, error code
// and audit row it must get. Sent through inject, or as raw bytes over TCP for what inject cannot send.
import net from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Kysely } from 'kysely'
import type { Test } from 'tap'
import { REASON } from '../../lib/errors.js'
import type { Database } from '../../db/schema.js'
import { outcomeOf } from '../../core/audit.js'
import { scanText, type Leak } from './secrets.js'
import { clientRequestId } from '../helpers/db.js'

export interface Case {
  name: string
  method?: string
  url: string
  headers?: Record<string, string>
  /** a string or Buffer is sent as is; an object as JSON */
  payload?: string | Buffer | object
  /** the whole request as bytes (x-request-id: {{rid}} is filled in); sent over TCP instead of inject */
  raw?: (rid: string) => Buffer
  status: number
  code: string
  /** the audit action the row must carry, or null when the request is outside the audited scopes (see `why`) */
  audit: string | null
  /** why a request leaves no row (documented in the table) */
  why?: string
  /** the token_id the row must carry (undefined: not checked) */
  tokenId?: string | null
  /** the request id cannot be ours (a hostile x-request-id is replaced): counted, not matched */
  anonymous?: boolean
  /** more checks on the answer */
  check?: (t: Test, res: Answer) => void
}

export interface Answer { status: number, headers: Record<string, string | string[] | undefined>, body: string }

export interface RunResult { rows: Array<{ c: Case, rid: string, res: Answer }>, leaks: Leak[] }

interface RunOptions {
  app: FastifyInstance
  db: Kysely<Database>
  /** the port app listens on (raw rows) */
  port?: number
  idPrefix: string
  /** secrets that may appear in no answer */
  secrets: readonly string[]
}

/** Sends every row, checks status, code and the error body's shape; then (after the writer flushed) each row's audit row. */
export async function runTable (t: Test, cases: readonly Case[], opts: RunOptions): Promise<RunResult> {
  const rows: RunResult['rows'] = []
  const leaks: Leak[] = []
  await opts.app.mcpGateway.audit.flush() // rows of the setup (token creation) must not count as the table's
  const before = await countRows(opts.db)
  for (const [i, c] of cases.entries()) {
    const rid = `${opts.idPrefix}-${i}`
    const res = c.raw !== undefined ? await rawRequest(opts.port ?? 0, c.raw(rid)) : await injected(opts.app, c, rid)
    rows.push({ c, rid, res })
    let body: Record<string, unknown> | null = null
    try { body = JSON.parse(res.body) as Record<string, unknown> } catch { /* reported below */ }
    const contentType = String(res.headers['content-type'] ?? '')
    t.same({
      status: res.status,
      code: body?.code,
      shape: body === null ? res.body.slice(0, 120) : Object.keys(body).sort().join(','),
      statusInBody: body?.statusCode,
      reason: body?.error,
      json: contentType.startsWith('application/json'),
      stack: /\n\s+at |node_modules|\.ts:\d+/.test(res.body)
    }, {
      status: c.status,
      code: c.code,
      shape: 'code,error,message,statusCode',
      statusInBody: c.status,
      reason: REASON[c.status],
      json: true,
      stack: false
    }, `#${i} ${c.name}: ${c.status} ${c.code}`)
    c.check?.(t, res)
    leaks.push(...scanText(`#${i} ${c.name} (answer)`, res.body + JSON.stringify(res.headers), opts.secrets))
  }
  await opts.app.mcpGateway.audit.flush()
  const audited = await opts.db.selectFrom('mcp_access_log')
    .select([clientRequestId.as('request_id'), 'action', 'status_code', 'outcome', 'token_id', 'path'])
    .where(clientRequestId, 'in', rows.map(r => r.rid))
    .execute()
  const byRid = new Map<string, typeof audited>()
  for (const a of audited) byRid.set(a.request_id ?? '', [...(byRid.get(a.request_id ?? '') ?? []), a])
  for (const [i, { c, rid }] of rows.entries()) {
    if (c.anonymous === true) continue
    const mine = byRid.get(rid) ?? []
    const expected = c.audit === null
      ? []
      : [{ action: c.audit, status_code: c.status, outcome: outcomeOf(c.status), ...(c.tokenId !== undefined ? { token_id: c.tokenId } : {}) }]
    const actual = mine.map(a => ({ action: a.action, status_code: a.status_code, outcome: a.outcome, ...(c.tokenId !== undefined ? { token_id: a.token_id } : {}) }))
    t.same(actual, expected, `#${i} ${c.name}: ${c.audit === null ? `no audit row (${c.why ?? 'outside the audited scopes'})` : `one row, ${c.audit}`}`)
  }
  const expectedTotal = cases.filter(c => c.audit !== null).length
  t.equal(await countRows(opts.db) - before, expectedTotal, `the table wrote exactly ${expectedTotal} audit rows (no stray, none missing)`)
  return { rows, leaks }
}

const countRows = async (db: Kysely<Database>): Promise<number> =>
  Number((await db.selectFrom('mcp_access_log').select(eb => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n)

async function injected (app: FastifyInstance, c: Case, rid: string): Promise<Answer> {
  const jsonBody = c.payload !== undefined && typeof c.payload === 'object' && !Buffer.isBuffer(c.payload)
  const res = await app.inject({
    method: (c.method ?? 'GET') as 'GET',
    url: c.url,
    headers: { 'x-request-id': rid, ...(jsonBody ? { 'content-type': 'application/json' } : {}), ...c.headers },
    ...(c.payload !== undefined ? { payload: jsonBody ? JSON.stringify(c.payload) : c.payload as string | Buffer } : {})
  })
  return { status: res.statusCode, headers: res.headers as Answer['headers'], body: res.body }
}

/** Writes raw bytes to 127.0.0.1:port and reads the whole answer (the server closes: send `Connection: close`). */
export async function rawRequest (port: number, bytes: Buffer, timeoutMs = 5000): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer within ${timeoutMs} ms`)) }, timeoutMs)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => { /* a reset after the answer: what we read is what counts */ })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(parseResponse(Buffer.concat(chunks).toString('latin1')))
    })
    socket.write(bytes)
  })
}

function parseResponse (text: string): Answer {
  const end = text.indexOf('\r\n\r\n')
  const head = end < 0 ? text : text.slice(0, end)
  let body = end < 0 ? '' : text.slice(end + 4)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const l of lines) {
    const colon = l.indexOf(':')
    if (colon > 0) headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim()
  }
  if (headers['transfer-encoding'] === 'chunked') {
    let out = ''
    let rest = body
    for (;;) {
      const nl = rest.indexOf('\r\n')
      const size = parseInt(rest.slice(0, nl), 16)
      if (!(size > 0)) break
      out += rest.slice(nl + 2, nl + 2 + size)
      rest = rest.slice(nl + 2 + size + 2)
    }
    body = out
  } else if (headers['content-length'] !== undefined) {
    body = Buffer.from(body, 'latin1').subarray(0, Number(headers['content-length'])).toString('latin1')
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body: Buffer.from(body, 'latin1').toString('utf8') }
}

/** `GET <path> HTTP/1.1` with the given header lines (raw strings, latin1), Host and Connection: close added. */
export function rawGet (path: string, headerLines: readonly string[], rid: string, method = 'GET'): Buffer {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', `X-Request-Id: ${rid}`, ...headerLines, 'Connection: close', '', '']
  return Buffer.from(lines.join('\r\n'), 'latin1')
}

/** Contents of the tables a hostile request must never change (last_used_at excluded: a legitimate use writes it). */
export async function snapshot (db: Kysely<Database>): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {}
  const tables = ['mcp_token', 'build', 'job', 'project', 'collaborator', 'user', 'commit'] as const
  for (const table of tables) {
    const rows = await db.selectFrom(table).selectAll().execute() as Array<Record<string, unknown>>
    out[table] = rows.map(r => {
      const { last_used_at: _ignored, ...rest } = r
      return rest
    }).sort((a, b) => JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)
  }
  return out
}
