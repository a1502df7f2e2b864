// Text artifacts of any size read in windows (SPEC §11): byte ranges, the last lines read backwards, or grep over a stream; never the whole object for a window.
import type { Readable } from 'node:stream'
import { RE2JS } from 're2js'
import { untrustedText } from '../lib/text.js'
import {
  ARTIFACT_GREP_MATCHES_DEFAULT, ARTIFACT_WINDOW_DEFAULT, ARTIFACT_WINDOW_MAX, type ArtifactText
} from '../schemas/agent.js'
import { artifactKey, type ArtifactStore } from './artifact-store.js'
import { isTextual } from './artifacts.js'
import { findArtifact } from '../db/artifacts.js'
import type { GatewayServices } from './services.js'
import { badRequest, unprocessable } from '../lib/errors.js'

export interface TextWindow {
  offset?: number | undefined
  length?: number | undefined
  tail?: number | undefined
  grep?: string | undefined
  ignore_case?: boolean | undefined
  max_matches?: number | undefined
}

/** Whether any window argument was given (get_artifact keeps its old answer without one). */
export const hasWindow = (w: TextWindow): boolean =>
  w.offset !== undefined || w.length !== undefined || w.tail !== undefined || w.grep !== undefined

/** A window of a job's artifact: it must be listed in job.archive (404 otherwise), then it is read from the store. */
export async function readJobArtifactText (services: GatewayServices, projectId: string, jobId: string, filename: string, w: TextWindow): Promise<ArtifactText> {
  const key = artifactKey(jobId, filename) // 400 on a name that could climb out, before any query
  const entry = await findArtifact(services.db, projectId, jobId, filename)
  return await readArtifactText(services.artifacts, key, entry.filename, w)
}

/** Reading backwards for tail goes this far per ranged read. */
const TAIL_CHUNK = 64 * 1024
/** The head read to tell text from binary when the name does not say. */
const SNIFF_BYTES = 8 * 1024
/** A line longer than this is matched on its first bytes only (memory stays bounded whatever the file). */
const GREP_LINE_MAX = 64 * 1024
/** A matching line is served up to this many characters. */
const MATCH_LINE_CHARS = 2000
/** grep stops scanning here (and says so): an agent's call must end in seconds. */
export const GREP_SCAN_MAX = 256 * 1024 * 1024

const NEWLINE = 0x0a
const isContinuation = (byte: number | undefined): boolean => byte !== undefined && (byte & 0xc0) === 0x80
const BINARY_TYPES = /^(image\/(?!svg)|audio\/|video\/|font\/|application\/(pdf|zip|gzip|x-tar|x-7z|x-bzip2|x-xz|java-archive|octet-stream-compressed|wasm))/

/** A linear-time pattern (RE2 semantics); anything RE2 cannot run (back-references, look-arounds, bad syntax) is 400. */
export function compilePattern (pattern: string, ignoreCase = false): RE2JS {
  try {
    return RE2JS.compile(pattern, ignoreCase ? RE2JS.CASE_INSENSITIVE : 0)
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw badRequest(`grep pattern refused by the linear-time engine (RE2 syntax, no back-references or look-arounds): ${reason}`)
  }
}

async function readAll (stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  try {
    for await (const chunk of stream) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
      chunks.push(bytes)
      total += bytes.length
      if (total >= max) break
    }
  } finally {
    stream.destroy() // an S3 body holds a socket until it is consumed or destroyed
  }
  return Buffer.concat(chunks).subarray(0, max)
}

/** Bytes [start, end) of the object, by range: the store reads nothing else. */
async function readRange (store: ArtifactStore, key: string, start: number, end: number): Promise<Buffer> {
  if (end <= start) return Buffer.alloc(0)
  const object = await store.open(key, { start, end: end - 1 })
  return await readAll(object.stream, end - start)
}

/** UTF-8 text or null: a NUL byte or an invalid sequence (a character cut at `end` of the buffer is allowed) means binary. */
function decodeText (bytes: Buffer, allowCutEnd: boolean): string | null {
  if (bytes.includes(0)) return null
  let end = bytes.length
  if (allowCutEnd) {
    // drop a character the buffer's end cuts (at most 3 bytes of it)
    let i = end - 1
    while (i >= 0 && end - i <= 3 && isContinuation(bytes[i])) i--
    const lead = bytes[i]
    if (i >= 0 && lead !== undefined && lead >= 0xc0) {
      const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2
      if (end - i < need) end = i
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, end))
  } catch {
    return null
  }
}

const binary = (filename: string, contentType: string): Error =>
  unprocessable(`${filename} is a binary file (${contentType}), not text: download it with GET …/artifacts/download?filename=…, or get_artifact without a window for its link`)

/**
 * A window of the artifact under `key`. Text is told from binary by the media type of its name, else by its
 * first 8 KiB (a NUL byte or invalid UTF-8); a window that does not decode as UTF-8 is refused too. The text
 * served passes through untrustedText; offsets and lengths count the stored bytes.
 */
export async function readArtifactText (store: ArtifactStore, key: string, filename: string, w: TextWindow): Promise<ArtifactText> {
  const modes = [w.offset !== undefined || w.length !== undefined, w.tail !== undefined, w.grep !== undefined].filter(Boolean).length
  if (modes > 1) throw badRequest('give one window: offset/length, tail or grep')
  if ((w.ignore_case !== undefined || w.max_matches !== undefined) && w.grep === undefined) throw badRequest('ignore_case and max_matches go with grep')
  // compiled before any read: a refused pattern costs no I/O
  const pattern = w.grep === undefined ? null : compilePattern(w.grep, w.ignore_case === true)

  const { size, contentType: stored } = await store.stat(key)
  const contentType = stored ?? 'application/octet-stream'
  const essence = (contentType.split(';')[0] ?? '').trim().toLowerCase()
  if (BINARY_TYPES.test(essence)) throw binary(filename, contentType)
  if (!isTextual(contentType) && size > 0) {
    const head = await readRange(store, key, 0, Math.min(size, SNIFF_BYTES))
    if (decodeText(head, head.length < size) === null) throw binary(filename, contentType)
  }
  const base = { filename, size, content_type: contentType }

  if (pattern !== null) return { ...base, ...await grepArtifact(store, key, size, pattern, w.max_matches ?? ARTIFACT_GREP_MATCHES_DEFAULT) }
  if (w.tail !== undefined) {
    const { offset, bytes } = await tailBytes(store, key, size, w.tail)
    const text = decodeText(bytes, false)
    if (text === null) throw binary(filename, contentType)
    return { ...base, mode: 'tail', offset, length: bytes.length, truncated: offset > 0, text: untrustedText(text) }
  }

  // A byte window: its start moves forward to a character boundary and its end forward to finish the character it
  // cuts, as the job log's windows do, so offset + length is always a place to resume from.
  const start = Math.min(w.offset ?? 0, size)
  const end = Math.min(start + (w.length ?? ARTIFACT_WINDOW_DEFAULT), size)
  const bytes = await readRange(store, key, start, Math.min(end + 3, size))
  let from = 0
  while (from < bytes.length && from < 3 && isContinuation(bytes[from])) from++
  let to = end - start
  if (end < size) while (to < bytes.length && to - (end - start) < 3 && isContinuation(bytes[to])) to++
  to = Math.max(from, Math.min(to, bytes.length))
  const text = decodeText(bytes.subarray(from, to), false)
  if (text === null) throw binary(filename, contentType)
  const offset = start + from
  return { ...base, mode: 'bytes', offset, length: to - from, truncated: offset > 0 || offset + (to - from) < size, text: untrustedText(text) }
}

/**
 * The last `lines` lines, read backwards from the end in 64 KiB ranges until enough newlines were seen (a final
 * newline ends the last line, it does not start one), or the start of the file, or 1 MiB: then the first, cut
 * line is dropped unless it is the only one.
 */
async function tailBytes (store: ArtifactStore, key: string, size: number, lines: number): Promise<{ offset: number, bytes: Buffer }> {
  let pos = size
  let collected = Buffer.alloc(0)
  let seen = 0
  while (pos > 0 && collected.length < ARTIFACT_WINDOW_MAX) {
    const from = Math.max(0, pos - TAIL_CHUNK, size - ARTIFACT_WINDOW_MAX)
    const chunk = await readRange(store, key, from, pos)
    for (let i = chunk.length - 1; i >= 0; i--) {
      if (chunk[i] !== NEWLINE || from + i === size - 1) continue
      seen++
      if (seen === lines) {
        const start = from + i + 1
        return { offset: start, bytes: Buffer.concat([chunk.subarray(i + 1), collected]) }
      }
    }
    collected = Buffer.concat([chunk, collected])
    pos = from
  }
  if (pos === 0) return { offset: 0, bytes: collected }
  // 1 MiB read without enough lines: drop the cut first line unless it is all there is
  const firstBreak = collected.indexOf(NEWLINE)
  if (firstBreak === -1 || firstBreak === collected.length - 1) return { offset: pos, bytes: collected }
  return { offset: pos + firstBreak + 1, bytes: collected.subarray(firstBreak + 1) }
}

/**
 * The lines matching `pattern`, streamed: one line at a time is held (at most GREP_LINE_MAX bytes of it), matched
 * after ANSI and control characters are stripped, numbered from 1. Stops at `max` matches or GREP_SCAN_MAX bytes.
 */
async function grepArtifact (store: ArtifactStore, key: string, size: number, pattern: RE2JS, max: number): Promise<Pick<ArtifactText, 'mode' | 'offset' | 'length' | 'truncated' | 'matches'>> {
  const object = await store.open(key, size > 0 ? { start: 0, end: Math.min(size, GREP_SCAN_MAX) - 1 } : undefined)
  const matches: Array<{ line_number: number, line: string }> = []
  let lineNumber = 1
  let carry: Buffer[] = []
  let carried = 0
  let scanned = 0
  let stopped = false
  const test = (bytes: Buffer): void => {
    const line = untrustedText(bytes.toString('utf8'))
    if (pattern.test(line)) matches.push({ line_number: lineNumber, line: line.slice(0, MATCH_LINE_CHARS) })
    lineNumber++
  }
  try {
    for await (const raw of object.stream) {
      const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))
      scanned += chunk.length
      let at = 0
      while (at < chunk.length) {
        const nl = chunk.indexOf(NEWLINE, at)
        const end = nl === -1 ? chunk.length : nl
        // keep at most GREP_LINE_MAX bytes of the current line
        const room = GREP_LINE_MAX - carried
        if (room > 0 && end > at) {
          const piece = chunk.subarray(at, Math.min(end, at + room))
          carry.push(piece)
          carried += piece.length
        }
        if (nl === -1) break
        test(carry.length === 1 ? carry[0] ?? Buffer.alloc(0) : Buffer.concat(carry))
        carry = []
        carried = 0
        at = nl + 1
        if (matches.length >= max) {
          stopped = true
          break
        }
      }
      if (stopped) break
    }
    if (!stopped && carried > 0) test(Buffer.concat(carry))
  } finally {
    object.stream.destroy()
  }
  return { mode: 'grep', offset: 0, length: Math.min(scanned, size), truncated: stopped || size > GREP_SCAN_MAX, matches }
}
