// Job logs: a byte or line window of job.console (finished jobs) or of the job's console rows (running ones), cut in SQL.
import type { Kysely, Transaction } from 'kysely'
import { badRequest, gone, notFound } from '../lib/errors.js'
import { LOG_OFFSET_MAX, LOG_TAIL_MAX, LOG_WINDOW_MAX, type JobLog } from '../schemas/data.js'
import type { Database } from './schema.js'

export interface LogWindowOptions {
  /** First byte of the window (UTF-8 bytes of the whole log). */
  offset?: number | undefined
  /** Bytes in the window, at most LOG_WINDOW_MAX; alone it means "the last `length` bytes". */
  length?: number | undefined
  /** The last N lines instead of a byte window (at most LOG_WINDOW_MAX bytes of them). */
  tail?: number | undefined
}

/** What the collector leaves in job.console after 30 days (INFRABOX_SCHEMA.md). */
const DELETED = 'deleted'
/** A UTF-8 character is at most 4 bytes: a window end moves at most 3 bytes to finish one. */
const MAX_CONTINUATION = 3
const NEWLINE = 0x0a

type Source = 'job' | 'rows'

/**
 * A window of the job's log. The log is `job.console` when non-empty (InfraBox concatenates the rows
 * there when a job ends), else the job's `console` rows by date, then id. A log the collector
 * replaced by 'deleted' is 410.
 *
 * The window is cut in PostgreSQL: sizes come from octet_length (no detoasting) and only the
 * window's bytes (substr of convert_to(..., 'UTF8')) travel to Node, so a 50 MB log costs a 1 MiB
 * answer. Both reads share one REPEATABLE READ snapshot, so a job that finishes in between (rows
 * moved into job.console) cannot produce a torn window.
 *
 * Characters are never split: the window's start moves forward to the next character boundary and
 * its end forward to finish the character it cuts (<= 3 bytes), so `offset` and `length` in the
 * answer describe the bytes actually served and offset + length is always a boundary to resume from.
 */
export async function readJobLog (db: Kysely<Database>, projectId: string, jobId: string, opts: LogWindowOptions = {}): Promise<JobLog> {
  if (opts.tail !== undefined && (opts.offset !== undefined || opts.length !== undefined)) {
    throw badRequest('tail cannot be combined with offset or length')
  }
  // The route schemas bound these already; the checks keep other callers from reaching SQL with nonsense.
  for (const [name, value, min, max] of [['offset', opts.offset, 0, LOG_OFFSET_MAX], ['length', opts.length, 1, LOG_WINDOW_MAX], ['tail', opts.tail, 1, LOG_TAIL_MAX]] as const) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= min && value <= max)) throw badRequest(`${name} must be an integer from ${min} to ${max}`)
  }

  return await db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(async trx => {
    const { source, total } = await measureLog(trx, projectId, jobId)
    if (total === 0) return { log: '', total_bytes: 0, offset: 0, length: 0, truncated: false }

    // The requested window [start, end) before snapping to character boundaries.
    let start: number
    let end: number
    if (opts.offset !== undefined) {
      start = Math.min(opts.offset, total)
      end = Math.min(start + (opts.length ?? LOG_WINDOW_MAX), total)
    } else {
      end = total
      start = Math.max(0, total - (opts.length ?? LOG_WINDOW_MAX))
    }

    const fetchEnd = Math.min(end + MAX_CONTINUATION, total)
    const bytes = await readBytes(trx, source, jobId, start, fetchEnd - start)
    const head = nextBoundary(bytes, 0)
    const tailEnd = end >= total ? bytes.length : nextBoundary(bytes, end - start)
    let from = head
    const to = Math.max(head, tailEnd)
    if (opts.tail !== undefined) from = startOfLastLines(bytes, head, to, opts.tail, start === 0)

    const window = bytes.subarray(from, to)
    const offset = start + from
    return {
      log: Buffer.from(window.buffer, window.byteOffset, window.byteLength).toString('utf8'),
      total_bytes: total,
      offset,
      length: window.byteLength,
      truncated: offset > 0 || offset + window.byteLength < total
    }
  })
}

/** Where the log lives and its size in bytes; 404 for a job outside the project, 410 for a collected log. */
async function measureLog (trx: Transaction<Database>, projectId: string, jobId: string): Promise<{ source: Source, total: number }> {
  const row = await trx
    .selectFrom('job')
    .select(eb => [
      // texteq compares lengths first, so neither test reads a large log.
      eb('job.console', '=', DELETED).as('deleted'),
      eb.fn<number | null>('octet_length', [eb.fn('nullif', ['job.console', eb.val('')])]).as('console_bytes'),
      // CASE evaluates the sub-select only for jobs whose log is still in rows.
      eb.case()
        .when(eb.fn.coalesce('job.console', eb.val('')), '=', '')
        .then(
          eb.selectFrom('console')
            .select(eb => eb.fn.coalesce(eb.fn.sum<string | number>(eb.fn('octet_length', ['console.output'])), eb.val(0)).as('bytes'))
            .whereRef('console.job_id', '=', 'job.id')
        )
        .end()
        .as('rows_bytes')
    ])
    .where('job.id', '=', jobId)
    .where('job.project_id', '=', projectId)
    .executeTakeFirst()
  if (row === undefined) throw notFound(`job ${jobId} not found in project ${projectId}`)
  if (row.deleted === true) throw gone(`the log of job ${jobId} was deleted by InfraBox's garbage collector`)
  if (row.console_bytes !== null) return { source: 'job', total: row.console_bytes }
  // sum() of int4 is bigint, which pg hands over as a string.
  return { source: 'rows', total: Number(row.rows_bytes ?? 0) }
}

/** Bytes [start, start + count) of the log, cut server-side. */
async function readBytes (trx: Transaction<Database>, source: Source, jobId: string, start: number, count: number): Promise<Uint8Array> {
  if (count <= 0) return new Uint8Array(0)
  if (source === 'job') {
    const row = await trx
      .selectFrom('job')
      .select(eb => eb.fn<Uint8Array>('substr', [
        eb.fn('convert_to', ['job.console', eb.val('UTF8')]), eb.val(start + 1), eb.val(count)
      ]).as('bytes'))
      .where('job.id', '=', jobId)
      .executeTakeFirstOrThrow()
    return row.bytes
  }

  // Each row's byte range comes from a running sum in (date, id) order; only rows overlapping the
  // window are cut (each to its overlap) and shipped.
  const end = start + count
  const rows = await trx
    .with('chunk', qb => qb
      .selectFrom('console')
      .select(eb => {
        const size = eb.fn<number>('octet_length', ['console.output'])
        const endAt = eb.fn.sum<number>(size).over(ob => ob.orderBy('console.date').orderBy('console.id'))
        return ['console.output', endAt.as('end_at'), eb(endAt, '-', size).as('start_at')]
      })
      .where('console.job_id', '=', jobId))
    .selectFrom('chunk')
    .select(eb => {
      const from = eb.fn('greatest', [eb(eb.val(start), '-', eb.ref('chunk.start_at')), eb.val(0)])
      const count = eb(
        eb.fn('least', [eb.ref('chunk.end_at'), eb.val(end)]),
        '-',
        eb.fn('greatest', [eb.ref('chunk.start_at'), eb.val(start)])
      )
      // The running sum is bigint; substr takes int4 (both values are bounded by one row's size).
      return eb.fn<Uint8Array>('substr', [
        eb.fn('convert_to', ['chunk.output', eb.val('UTF8')]),
        eb.cast(eb(from, '+', eb.val(1)), 'integer'),
        eb.cast(count, 'integer')
      ]).as('bytes')
    })
    .where('chunk.end_at', '>', start)
    .where('chunk.start_at', '<', end)
    .orderBy('chunk.end_at')
    .execute()
  return Buffer.concat(rows.map(r => r.bytes))
}

const isContinuation = (byte: number | undefined): boolean => byte !== undefined && (byte & 0xc0) === 0x80

/** The first character boundary at or after `i` (valid UTF-8 has at most 3 continuation bytes in a row). */
function nextBoundary (bytes: Uint8Array, i: number): number {
  let j = i
  while (j < bytes.length && j - i < MAX_CONTINUATION && isContinuation(bytes[j])) j++
  return j
}

/**
 * Where the last `lines` lines of bytes[from, to) start. A final newline ends the last line rather
 * than starting an empty one. When the window holds fewer lines and does not start at the log's
 * start, its first line may be a fragment and is dropped (unless it is the only one: a line longer
 * than the window is served as its end).
 */
function startOfLastLines (bytes: Uint8Array, from: number, to: number, lines: number, atLogStart: boolean): number {
  let i = to - 1
  if (i >= from && bytes[i] === NEWLINE) i--
  let seen = 0
  let firstBreak = -1
  for (; i >= from; i--) {
    if (bytes[i] !== NEWLINE) continue
    seen++
    firstBreak = i
    if (seen === lines) return i + 1
  }
  if (atLogStart || firstBreak === -1) return from
  return firstBreak + 1
}
