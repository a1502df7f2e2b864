// A job's log read as a stream of numbered lines (SPEC §11): chunks of about 1 MiB, streamed by COPY as bytes (the failure summary's scan) or fetched through a server-side cursor, never the whole log in the gateway's memory.
import { sql, type Kysely, type Transaction } from 'kysely'
import type pg from 'pg'
import { notFound } from '../lib/errors.js'
import { UUID } from '../lib/ids.js'
import { rawClientSource } from './connect.js'
import { copyOutBinary } from './copy-out.js'
import type { Database, JobState } from './schema.js'

/** What InfraBox's collector leaves in job.console after 30 days. */
const DELETED = 'deleted'
/** Bytes per chunk of job.console. */
export const CHUNK_BYTES = 1024 * 1024
/** A chunk ends after the first newline within this many bytes of its nominal end (else at a character boundary). */
const BOUNDARY_PROBE = 8192
/** Chunks (job.console) or rows (console) fetched per round trip. */
const FETCH_CHUNKS = 2
const FETCH_ROWS = 500
/** A line longer than this is served cut (the rest of it is skipped, its bytes still counted). */
export const LINE_CHARS_MAX = 64 * 1024

/**
 * Where the prefilter's skipping of a chunk's text stops, scanning from `at`: before the chunk's last `last` complete
 * lines, which the ordinary line loop visits (a later chunk may not follow them).
 */
function prefilterThreshold (text: string, at: number, last: number): number {
  let threshold = text.lastIndexOf('\n') + 1
  for (let k = 0; k < last && threshold > at; k++) threshold = Math.max(at, text.lastIndexOf('\n', threshold - 2) + 1)
  return threshold
}

/**
 * One skip of the prefilter from `at` (a line start) towards `threshold`: the lines passed before the line holding
 * its next match, and that line's start (`at`) and end (its '\n', `end`); `end` is -1 when no match comes before the
 * threshold, and `at` is then where the skipping stopped.
 */
function skipToMatch (text: string, at: number, threshold: number, match: RegExp): { passed: number, at: number, end: number } {
  match.lastIndex = at
  const found = match.exec(text)
  const target = found === null || found.index >= threshold ? threshold : found.index
  let passed = 0
  for (;;) {
    const nl = text.indexOf('\n', at)
    if (nl === -1 || nl >= target) break
    passed++
    at = nl + 1
  }
  return { passed, at, end: target === threshold ? -1 : text.indexOf('\n', at) }
}
/** Bytes of a line kept to cut its text from (UTF-8 takes at most 3 bytes per UTF-16 unit, so this is enough). */
const LINE_BYTES_MAX = 4 * LINE_CHARS_MAX
/**
 * The streamed read of job.console is one statement: its time bound is the session's statement_timeout plus a second
 * for every this many bytes of log (8 MiB/s, about a twentieth of what a loaded 2-core machine manages).
 */
const COPY_BYTES_PER_SECOND_FLOOR = 8 * 1024 * 1024

export interface LogMeta {
  /** where the log lives: job.console (an ended job), console rows (a running one), or nowhere yet */
  source: 'job' | 'rows' | 'none'
  /** InfraBox's collector replaced it by 'deleted' */
  deleted: boolean
  total_bytes: number
  state: JobState
}

/** A place in a log to resume from: the byte where a line starts and that line's number (from 1). */
export interface LogPosition { byte: number, line: number }

export interface ScanOptions {
  /** start here instead of at the log's start (a position an earlier scan returned) */
  from?: LogPosition | undefined
  /** stop at the first line boundary after this many bytes were read (the scan says where it stopped) */
  maxBytes?: number | undefined
  /**
   * Visit only the lines in which `match` (a global RegExp) finds something, and the last `last` lines of the log;
   * the others are counted without being cut out of their chunk (the fast path of the failure summary).
   */
  only?: { match: RegExp, last: number } | undefined
  /**
   * How job.console is read. By default a scan with `only` (and no `maxBytes`) over a pg pool streams it with COPY as
   * raw bytes; everything else, PGlite, and a running job's console rows go through the cursor. 'cursor' forces the
   * cursor (tests compare the two).
   */
  via?: 'cursor' | undefined
}

export interface ScanResult extends LogMeta {
  /** lines visited */
  lines: number
  /** bytes read from the log (from `from` on) */
  scanned_bytes: number
  /** where the next unvisited line starts, or null when the scan reached the end */
  next: LogPosition | null
  /** how the log was read: streamed as bytes with COPY, or fetched as text through a cursor */
  via: 'copy' | 'cursor'
}

/**
 * `visit` is called once per line with its text (without the newline, at most LINE_CHARS_MAX characters) and its
 * number; it returns false to stop. A final line without a newline is a line; a log ending with a newline has no
 * empty last line.
 */
export type LineVisitor = (line: string, lineNumber: number) => boolean | undefined

function metaQuery (db: Kysely<Database> | Transaction<Database>, projectId: string, jobId: string) {
  return db
    .selectFrom('job')
    .select(eb => [
      'job.state',
      // texteq compares lengths first: neither test reads a large log
      eb('job.console', '=', DELETED).as('deleted'),
      eb.fn<number | null>('octet_length', [eb.fn('nullif', ['job.console', eb.val('')])]).as('console_bytes'),
      eb.case()
        .when(eb.fn.coalesce('job.console', eb.val('')), '=', '')
        .then(eb.selectFrom('console')
          .select(eb => eb.fn.coalesce(eb.fn.sum<string | number>(eb.fn('octet_length', ['console.output'])), eb.val(0)).as('bytes'))
          .whereRef('console.job_id', '=', 'job.id'))
        .end()
        .as('rows_bytes')
    ])
    .where('job.id', '=', jobId)
    .where('job.project_id', '=', projectId)
}

type MetaRow = Awaited<ReturnType<ReturnType<typeof metaQuery>['executeTakeFirst']>>

function metaOf (row: MetaRow, projectId: string, jobId: string): LogMeta {
  if (row === undefined) throw notFound(`job ${jobId} not found in project ${projectId}`)
  if (row.deleted === true) return { source: 'none', deleted: true, total_bytes: 0, state: row.state }
  if (row.console_bytes !== null) return { source: 'job', deleted: false, total_bytes: Number(row.console_bytes), state: row.state }
  const rows = Number(row.rows_bytes ?? 0)
  return { source: rows > 0 ? 'rows' : 'none', deleted: false, total_bytes: rows, state: row.state }
}

/** Where the job's log lives and its size; 404 for a job outside the project. */
export async function logMeta (db: Kysely<Database> | Transaction<Database>, projectId: string, jobId: string): Promise<LogMeta> {
  return metaOf(await metaQuery(db, projectId, jobId).executeTakeFirst(), projectId, jobId)
}

let cursorSeq = 0

/**
 * Reads the job's log line by line. job.console (InfraBox's log of an ended job) is converted to bytes once in
 * PostgreSQL and cut there into ~1 MiB chunks that end after a newline (or, for a line longer than 8 KiB at the
 * cut, at a character boundary); console rows (a running job's log) come in (date, id) order. Both arrive through a
 * cursor a few chunks at a time inside one read-only REPEATABLE READ transaction, so memory stays at a few MiB
 * whatever the log's size and a job that ends meanwhile (rows moved into job.console) cannot tear the scan. An `only`
 * scan of job.console over a pg pool (the failure summary's) streams the same chunks with COPY instead (copyScan).
 */
export async function scanLogLines (db: Kysely<Database>, projectId: string, jobId: string, visit: LineVisitor, opts: ScanOptions = {}): Promise<ScanResult> {
  // The cursor's and COPY's statements carry their values as literals (neither takes bind parameters): the id is checked here.
  if (!UUID.test(jobId)) throw notFound(`job ${jobId} not found in project ${projectId}`)
  const connect = opts.only !== undefined && opts.maxBytes === undefined && opts.via !== 'cursor' ? rawClientSource(db) : undefined
  if (connect !== undefined && opts.only !== undefined) {
    const streamed = await copyScan(db, connect, projectId, jobId, visit, opts.only, opts.from)
    if (streamed !== null) return streamed
  }
  return await cursorScan(db, projectId, jobId, visit, opts)
}

async function cursorScan (db: Kysely<Database>, projectId: string, jobId: string, visit: LineVisitor, opts: ScanOptions): Promise<ScanResult> {
  return await db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(async trx => {
    const meta = await logMeta(trx, projectId, jobId)
    const from = opts.from ?? { byte: 0, line: 1 }
    const start = Math.min(from.byte, meta.total_bytes)
    const result: ScanResult = { ...meta, lines: 0, scanned_bytes: 0, next: null, via: 'cursor' }
    if (meta.source === 'none' || start >= meta.total_bytes) return result

    const name = sql.id(`log_lines_${++cursorSeq}`)
    const declared = meta.source === 'job' ? jobConsoleChunks(jobId, start, 'text') : consoleRowChunks(jobId, start)
    await sql`DECLARE ${name} NO SCROLL CURSOR FOR ${declared}`.execute(trx)
    const fetchSize = sql.raw(String(meta.source === 'job' ? FETCH_CHUNKS : FETCH_ROWS))

    let lineNumber = from.line
    let carry = '' // the start of a line that continues in the next chunk (at most LINE_CHARS_MAX characters)
    let carryCut = false
    let expected = start
    let stopped = false
    const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY
    const emit = (line: string): boolean => {
      result.lines++
      const keep = visit(line, lineNumber++) !== false
      return keep
    }
    /** Takes one chunk (a console row, or ~1 MiB of job.console); true when the scan is to stop here. */
    const consume = (row: { start: string | number, len: string | number, text: string }): boolean => {
      let chunkStart = Number(row.start)
      let text = row.text
      const len = Number(row.len)
      if (chunkStart + len <= expected) return false // a console row before the resume point
      if (chunkStart < expected) {
        // a console row the resume point falls into: drop its bytes before that point
        text = Buffer.from(text, 'utf8').subarray(expected - chunkStart).toString('utf8')
        chunkStart = expected
      }
      if (chunkStart !== expected) throw new Error(`log of job ${jobId}: chunk at byte ${chunkStart}, expected ${expected}`)
      expected = Number(row.start) + len
      result.scanned_bytes += expected - chunkStart
      let at = 0
      const firstBreak = carry !== '' || carryCut ? text.indexOf('\n') : -1
      if (firstBreak !== -1) {
        // the line that began in the previous chunk ends here
        const line = carryCut ? carry : (carry + text.slice(0, firstBreak)).slice(0, LINE_CHARS_MAX)
        carry = ''
        carryCut = false
        at = firstBreak + 1
        if (!emit(line)) {
          stopped = true
          result.next = { byte: chunkStart + Buffer.byteLength(text.slice(0, at)), line: lineNumber }
          return true
        }
      }
      if (opts.only !== undefined && carry === '' && !carryCut) {
        // Skip to each match of the prefilter, counting the lines passed; visit the line it is in. The last
        // `last` lines of the chunk go through the ordinary loop below (a later chunk may not follow).
        const threshold = prefilterThreshold(text, at, opts.only.last)
        while (at < threshold) {
          const step = skipToMatch(text, at, threshold, opts.only.match)
          lineNumber += step.passed
          result.lines += step.passed
          at = step.at
          if (step.end === -1) break
          const line = text.slice(at, Math.min(step.end, at + LINE_CHARS_MAX))
          at = step.end + 1
          if (!emit(line)) {
            stopped = true
            result.next = { byte: chunkStart + Buffer.byteLength(text.slice(0, at)), line: lineNumber }
            return true
          }
        }
      }
      for (;;) {
        const nl = text.indexOf('\n', at)
        if (nl === -1) {
          if (!carryCut) {
            carry += text.slice(at, at + LINE_CHARS_MAX - carry.length)
            carryCut = carry.length >= LINE_CHARS_MAX
          }
          break
        }
        let line = text.slice(at, nl)
        if (carry !== '' || carryCut) {
          line = carryCut ? carry : (carry + line).slice(0, LINE_CHARS_MAX)
          carry = ''
          carryCut = false
        } else if (line.length > LINE_CHARS_MAX) {
          line = line.slice(0, LINE_CHARS_MAX)
        }
        at = nl + 1
        if (!emit(line)) {
          stopped = true
          result.next = { byte: chunkStart + Buffer.byteLength(text.slice(0, at)), line: lineNumber }
          return true
        }
      }
      // the byte cap is checked where a chunk ends on a line boundary (the next scan resumes there)
      if (carry === '' && !carryCut && result.scanned_bytes >= maxBytes && expected < meta.total_bytes) {
        stopped = true
        result.next = { byte: expected, line: lineNumber }
        return true
      }
      return false
    }
    for (;;) {
      const { rows } = await sql<{ start: string | number, len: string | number, text: string }>`FETCH ${fetchSize} FROM ${name}`.execute(trx)
      if (rows.length === 0 || rows.some(row => consume(row))) break
    }
    if (!stopped && (carry !== '' || carryCut)) emit(carry)
    if (stopped && result.next !== null && result.next.byte >= meta.total_bytes) result.next = null
    await sql`CLOSE ${name}`.execute(trx)
    return result
  })
}

/**
 * job.console cut into chunks in PostgreSQL: the log is converted to bytes once (the sub-select's row, evaluated
 * once), chunk starts are found with position()/get_byte() on it, and each chunk is decoded back to text (for the
 * cursor) or left as bytes (for COPY). No ORDER BY over the chunks (sorting them would copy the log per row); the
 * window over the starts keeps their order, and the reader checks that each chunk starts where the last one ended.
 */
function jobConsoleChunks (jobId: string, from: number, as: 'text' | 'bytes') {
  const chunk = sql.lit(CHUNK_BYTES)
  const probe = sql.lit(BOUNDARY_PROBE)
  const start = sql.lit(from)
  const bytes = sql`substring(s.b FROM (bd.start + 1)::int FOR bd.len::int)`
  return sql`
    SELECT bd.start::int4 AS start, bd.len::int4 AS len, ${as === 'text' ? sql`convert_from(${bytes}, 'UTF8')` : bytes} AS text
    FROM (SELECT convert_to(job.console, 'UTF8') AS b FROM job WHERE job.id = ${sql.lit(jobId)}::uuid OFFSET 0) s,
    LATERAL (
      SELECT q.start, coalesce(lead(q.start) OVER (ORDER BY q.i), octet_length(s.b)) - q.start AS len
      FROM (
        SELECT g.i, CASE
          WHEN g.i = ${start} THEN g.i
          WHEN position('\\x0a'::bytea IN substring(s.b FROM (g.i + 1)::int FOR ${probe})) > 0
            THEN g.i + position('\\x0a'::bytea IN substring(s.b FROM (g.i + 1)::int FOR ${probe}))
          ELSE g.i + CASE
            WHEN get_byte(s.b, g.i::int) & 192 <> 128 THEN 0
            WHEN g.i + 1 >= octet_length(s.b) OR get_byte(s.b, (g.i + 1)::int) & 192 <> 128 THEN 1
            WHEN g.i + 2 >= octet_length(s.b) OR get_byte(s.b, (g.i + 2)::int) & 192 <> 128 THEN 2
            ELSE 3 END
          END AS start
        FROM generate_series(${start}, octet_length(s.b) - 1, ${chunk}) g(i)
      ) q
    ) bd
    WHERE bd.len > 0`
}

/** A running job's console rows in (date, id) order, each with the byte where it starts in the log. */
function consoleRowChunks (jobId: string, from: number) {
  return sql`
    SELECT r.start, r.len, r.text FROM (
      SELECT (sum(octet_length(c.output)) OVER w - octet_length(c.output)) AS start, octet_length(c.output) AS len, c.output AS text
      FROM console c WHERE c.job_id = ${sql.lit(jobId)}::uuid
      WINDOW w AS (ORDER BY c.date, c.id ROWS UNBOUNDED PRECEDING)
    ) r
    WHERE r.start + r.len > ${sql.lit(from)}`
}

/**
 * The fast path of an `only` scan of job.console (an ended job's log): one `COPY (chunks) TO STDOUT (FORMAT binary)`
 * in a read-only REPEATABLE READ transaction. PostgreSQL streams the ~1 MiB chunks as raw bytes while the previous
 * ones are scanned (no cursor round trip per chunk, no UTF-8 decoding of the log): each chunk is looked at as a
 * latin1 string (one character per byte, so positions are byte offsets, and ASCII patterns match exactly where they
 * match in the UTF-8 text), newlines are counted there, `only.match` finds the candidate lines, and only the visited
 * lines are decoded as UTF-8. The lines visited, their numbers and texts are those of the cursor's scan.
 * Null when the log is not in job.console (a running job's rows: the cursor reads them).
 */
async function copyScan (
  db: Kysely<Database>, connect: () => Promise<pg.PoolClient>, projectId: string, jobId: string, visit: LineVisitor,
  only: NonNullable<ScanOptions['only']>, from: LogPosition = { byte: 0, line: 1 }
): Promise<ScanResult | null> {
  const client = await connect()
  let discard = false
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const metaSql = metaQuery(db, projectId, jobId).compile()
    const { rows: [metaRow] } = await client.query<NonNullable<MetaRow>>(metaSql.sql, [...metaSql.parameters])
    const meta = metaOf(metaRow, projectId, jobId)
    if (meta.source === 'rows') {
      await client.query('COMMIT')
      return null
    }
    const start = Math.min(from.byte, meta.total_bytes)
    const result: ScanResult = { ...meta, lines: 0, scanned_bytes: 0, next: null, via: 'copy' }
    if (meta.source === 'none' || start >= meta.total_bytes) {
      await client.query('COMMIT')
      return result
    }
    // one statement reads the whole log: give it the session's bound plus time in proportion to the log's size
    const extraMs = Math.ceil((meta.total_bytes - start) / COPY_BYTES_PER_SECOND_FLOOR * 1000)
    const { rows: [bound] } = await client.query<{ ms: string }>(
      `SELECT set_config('statement_timeout', (CASE WHEN s.setting::bigint = 0 THEN 0 ELSE s.setting::bigint + $1 END)::text, true) AS ms
       FROM pg_settings s WHERE s.name = 'statement_timeout'`, [extraMs])
    const timeoutMs = Number(bound?.ms ?? 0)

    let lineNumber = from.line
    let expected = start
    let stopped = false
    // the start of a line that continues in the next chunk: copies of at most LINE_BYTES_MAX bytes
    let carry: Buffer[] = []
    let carryBytes = 0
    let carrying = false
    const emit = (line: string): boolean => {
      result.lines++
      return visit(line, lineNumber++) !== false
    }
    const textOf = (bytes: Buffer): string => {
      const text = bytes.toString('utf8')
      return text.length > LINE_CHARS_MAX ? text.slice(0, LINE_CHARS_MAX) : text
    }
    const lineAt = (chunk: Buffer, at: number, end: number): string => textOf(chunk.subarray(at, Math.min(end, at + LINE_BYTES_MAX)))
    const keep = (chunk: Buffer, at: number, end: number): void => {
      const n = Math.min(end - at, LINE_BYTES_MAX - carryBytes)
      if (n > 0) {
        carry.push(Buffer.from(chunk.subarray(at, at + n))) // a copy: the chunk is pg's receive buffer
        carryBytes += n
      }
      carrying = true
    }
    const carried = (): string => {
      const line = textOf(Buffer.concat(carry, carryBytes))
      carry = []
      carryBytes = 0
      carrying = false
      return line
    }
    /** One chunk; false once the visitor said stop (the rest of the stream is dropped). */
    const consume = (chunkStart: number, chunk: Buffer): boolean => {
      if (chunkStart !== expected) throw new Error(`log of job ${jobId}: chunk at byte ${chunkStart}, expected ${expected}`)
      expected = chunkStart + chunk.length
      result.scanned_bytes += chunk.length
      const s = chunk.toString('latin1')
      let at = 0
      const stop = (): boolean => {
        stopped = true
        result.next = { byte: chunkStart + at, line: lineNumber }
        return false
      }
      if (carrying) {
        const nl = s.indexOf('\n')
        if (nl === -1) {
          keep(chunk, 0, chunk.length) // the whole chunk continues the line
          return true
        }
        keep(chunk, 0, nl)
        at = nl + 1
        if (!emit(carried())) return stop()
      }
      // Skip to each match of the prefilter, counting the lines passed; visit the line it is in. The last `last`
      // lines of the chunk go through the loop below (a later chunk may not follow).
      const threshold = prefilterThreshold(s, at, only.last)
      while (at < threshold) {
        const step = skipToMatch(s, at, threshold, only.match)
        lineNumber += step.passed
        result.lines += step.passed
        at = step.at
        if (step.end === -1) break
        const line = lineAt(chunk, at, step.end)
        at = step.end + 1
        if (!emit(line)) return stop()
      }
      for (;;) {
        const nl = s.indexOf('\n', at)
        if (nl === -1) {
          if (at < chunk.length) keep(chunk, at, chunk.length)
          return true
        }
        const line = lineAt(chunk, at, nl)
        at = nl + 1
        if (!emit(line)) return stop()
      }
    }
    const copySql = sql`COPY (${jobConsoleChunks(jobId, start, 'bytes')}) TO STDOUT (FORMAT binary)`.compile(db).sql
    try {
      await copyOutBinary(client, copySql, ([chunkStart, len, chunk]) => {
        if (chunkStart === undefined || len === undefined || chunk === undefined || chunk.length !== len.readInt32BE(0)) throw new Error(`log of job ${jobId}: a malformed chunk`)
        return consume(chunkStart.readInt32BE(0), chunk)
      }, { timeoutMs: timeoutMs === 0 ? 0 : timeoutMs + 2000 })
    } catch (err) {
      discard = true // the connection may be mid-stream: never hand it back to the pool
      throw err
    }
    if (!stopped && expected !== meta.total_bytes) throw new Error(`log of job ${jobId}: read up to byte ${expected} of ${meta.total_bytes}`)
    if (!stopped && carrying) emit(carried())
    if (stopped && result.next !== null && result.next.byte >= meta.total_bytes) result.next = null
    await client.query('COMMIT')
    return result
  } catch (err) {
    if (!discard) {
      try { await client.query('ROLLBACK') } catch { discard = true }
    }
    throw err
  } finally {
    client.release(discard ? true : undefined)
  }
}
