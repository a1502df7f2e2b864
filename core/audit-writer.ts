// The audit pipeline: rows are queued in memory and written in multi-row batches off the request path.
import { randomFillSync } from 'node:crypto'
import type { Kysely, Selectable } from 'kysely'
import type { FastifyBaseLogger } from 'fastify'
import type { Database, Json, McpAccessLogTable } from '../db/schema.js'
import { insertAccessLogJson } from '../db/access-log.js'
import { isRowDataError } from '../lib/errors.js'
import { UUID } from '../lib/ids.js'
import type { Metrics } from './metrics.js'

/** One mcp_access_log row as the chain records it: every column but the id, which the writer draws. */
export type AuditRow = Omit<Selectable<McpAccessLogTable>, 'id'>

export interface AuditWriterOptions {
  /** interval between batches (AUDIT_FLUSH_MS) */
  flushMs: number
  /** rows held at most while PostgreSQL is unreachable (AUDIT_BUFFER_MAX) */
  bufferMax: number
  /** rows per INSERT (the batch is one JSON parameter, whatever its size) */
  batchSize?: number
  log: FastifyBaseLogger
  metrics: Metrics
}

const MAX_BACKOFF_MS = 5000
const WARN_EVERY_MS = 10_000

const RANDOM = Buffer.allocUnsafe(16 * 512)
let randomAt = RANDOM.length
/**
 * A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. The audit table's primary key
 * then grows at its right edge like the table itself, instead of a random uuid touching a random leaf of an
 * index that outgrows memory on a busy gateway. Random bytes are drawn 512 ids at a time.
 */
export function uuidv7 (ms: number = Date.now()): string {
  if (randomAt >= RANDOM.length) { randomFillSync(RANDOM); randomAt = 0 }
  const b = RANDOM.subarray(randomAt, randomAt + 16)
  randomAt += 16
  b.writeUIntBE(ms, 0, 6)
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x70
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

// PostgreSQL refuses NUL in text and \u0000 or unpaired surrogates in jsonb; one such row would fail its whole
// batch on every retry (a poison pill that ends in dropping everything behind it). Replaced, not refused.
// eslint-disable-next-line no-control-regex -- NUL is what PostgreSQL refuses
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
// JSON.stringify writes NUL as \u0000 and an unpaired surrogate as \udXXX (paired ones stay raw characters), so
// a row whose JSON text has neither escape is storable as it is. (An escaped backslash followed by "u0000" also
// matches: that only sends the row through the careful path below.)
const MAYBE_UNSTORABLE = /\\u0000|\\ud[89a-f]/i
const storable = (v: string): string => v.replace(UNSTORABLE, '\ufffd')
const deepStorable = (v: unknown): unknown =>
  typeof v === 'string'
    ? storable(v)
    : Array.isArray(v)
      ? v.map(deepStorable)
      : typeof v === 'object' && v !== null && !(v instanceof Date)
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [storable(k), deepStorable(x)]))
        : v

/** The row as the JSON object the batch INSERT reads, with its id; strings PostgreSQL would refuse are repaired. */
export function rowJson (row: AuditRow): string {
  const id = uuidv7()
  // JSON.stringify({ id, ...row }) without copying the row: a uuid needs no escaping, and the row has no id of its own
  const fields = JSON.stringify(row)
  const json = fields === '{}' ? `{"id":"${id}"}` : `{"id":"${id}",${fields.slice(1)}`
  // (the plain substring search first: it rules out nearly every row at a fraction of the regex's cost)
  return json.includes('\\u') && MAYBE_UNSTORABLE.test(json) ? JSON.stringify(deepStorable({ id, ...row })) : json
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const note = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v) ?? String(v)).slice(0, 200)

/** What a repaired row says in its details: which fields were nulled (or cut) and why PostgreSQL refused the row. */
function repairNote (fields: string[], reason: string, original: unknown): Record<string, unknown> {
  return { audit_repair: { fields, reason: storable(reason.slice(0, 300)), original: storable(note(original)) } }
}

const text = (max: number) => (v: unknown): boolean => v === null || v === undefined || (typeof v === 'string' && v.length <= max)
const anyText = (v: unknown): boolean => v === null || v === undefined || typeof v === 'string'
const uuid = (v: unknown): boolean => v === null || v === undefined || (typeof v === 'string' && UUID.test(v))
const smallint = (v: unknown): boolean => v === null || v === undefined || (Number.isInteger(v) && Math.abs(v as number) <= 32767)
const real = (v: unknown): boolean => v === null || v === undefined || (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) < 3e38)
const instant = (v: unknown): boolean => {
  if (typeof v !== 'string') return false
  const t = Date.parse(v)
  return Number.isFinite(t) && t > Date.UTC(1900, 0, 1) && t < Date.UTC(9999, 0, 1)
}

/** The typed columns of mcp_access_log and what each surely stores; a value outside is nulled (see repairRow). */
const COLUMN_CHECKS: Record<string, (v: unknown) => boolean> = {
  token_id: text(16),
  user_id: uuid,
  project_id: uuid,
  error: anyText,
  ip: text(64),
  status_code: smallint,
  duration_ms: real,
  method: anyText,
  path: anyText,
  request_id: anyText,
  via: anyText
}

/**
 * A row PostgreSQL refused, made storable: every value its column could refuse nulled (NOT NULL ones cut to fit
 * or given a stand-in), strings cleaned, and a note in `details` naming the fields and the refusal. `strict`:
 * keep only what cannot fail (id, action, outcome, time and the note), for a row still refused after the first repair.
 */
export function repairRow (json: string, reason: string, strict = false): string {
  const row = deepStorable(JSON.parse(json)) as Record<string, unknown>
  const fields: string[] = []
  const original: Record<string, unknown> = {}
  const out: Record<string, unknown> = {
    id: typeof row.id === 'string' && UUID.test(row.id) ? row.id : uuidv7(),
    action: typeof row.action === 'string' && row.action !== '' ? row.action.slice(0, 128) : 'unknown',
    outcome: typeof row.outcome === 'string' && row.outcome !== '' ? row.outcome.slice(0, 32) : 'failure',
    accessed_at: instant(row.accessed_at) ? row.accessed_at : new Date().toISOString()
  }
  for (const key of ['action', 'outcome', 'accessed_at'] as const) {
    if (out[key] !== row[key]) { fields.push(key); original[key] = row[key] }
  }
  for (const [column, fits] of Object.entries(COLUMN_CHECKS)) {
    const v = row[column]
    if (v === undefined || v === null) continue
    if (!strict && fits(v)) { out[column] = v; continue }
    fields.push(column)
    original[column] = v
  }
  const repair = repairNote(fields, reason, original)
  out.details = strict
    ? repair
    : isObject(row.details) ? { ...row.details, ...repair } : row.details === null || row.details === undefined ? repair : { details: row.details, ...repair }
  return JSON.stringify(out)
}

/**
 * Requests only ever call `record`, which is synchronous and cannot fail. A timer drains the queue with
 * batched INSERTs on the writer's own connections (never the request's transaction), keeps rows and backs
 * off while the database is unreachable, and drops (counted, logged) only past `bufferMax`.
 */
export class AuditWriter {
  /** rows as JSON text, id included: the id is chosen here, so a batch retried after an INSERT whose answer was lost cannot land twice */
  private queue: string[] = []
  private timer: NodeJS.Timeout | null = null
  private flushing: Promise<void> | null = null
  private backoffMs = 0
  private nextAttemptAt = 0
  /** per message: each warning has its own once-per-10-s allowance (a retry warning must not mute the overflow one) */
  private readonly lastWarnAt = new Map<string, number>()
  /** rows dropped and not yet reported in a log line */
  private droppedUnreported = 0
  private closed = false
  private readonly batchSize: number

  constructor (private readonly db: Kysely<Database>, private readonly opts: AuditWriterOptions) {
    this.batchSize = opts.batchSize ?? 1000
    this.timer = setInterval(() => { void this.tick() }, opts.flushMs)
    this.timer.unref()
    opts.metrics.watchAuditDepth(() => this.queue.length)
  }

  get depth (): number { return this.queue.length }

  record (row: AuditRow): void {
    if (this.queue.length >= this.opts.bufferMax) {
      this.opts.metrics.auditDropped.inc()
      this.droppedUnreported++
      if (this.warn('audit buffer full: dropping rows', { dropped: this.droppedUnreported, bufferMax: this.opts.bufferMax })) this.droppedUnreported = 0
      return
    }
    let json: string
    try {
      json = rowJson(row)
    } catch (err) {
      // details JSON cannot hold (a BigInt, a cycle): the row is kept, its details replaced by a note
      json = rowJson({ ...row, details: repairNote(['details'], 'details are not JSON', err instanceof Error ? err.message : String(err)) as Json })
      this.opts.metrics.auditRepaired.inc()
    }
    this.queue.push(json)
  }

  private async tick (): Promise<void> {
    if (this.flushing !== null || this.queue.length === 0 || Date.now() < this.nextAttemptAt) return
    // One batch per tick (more only while a backlog fills whole batches): rows recorded during an INSERT wait
    // for the next tick instead of following in a small INSERT of their own, so at full load a batch holds
    // about AUDIT_FLUSH_MS of traffic and PostgreSQL commits ten times a second, not after every few rows.
    this.flushing = this.drain(false).finally(() => { this.flushing = null })
    await this.flushing.catch(() => { /* kept in the queue; drain logged and backed off */ })
  }

  /** Writes everything queued now; rejects (rows kept) if the database refuses. */
  async flush (): Promise<void> {
    // a batch already on its way first (its failure is this flush's failure too), then everything left
    while (this.flushing !== null) await this.flushing
    if (this.queue.length === 0) return
    this.flushing = this.drain(true).finally(() => { this.flushing = null })
    await this.flushing
  }

  /** `all`: until the queue is empty; else the rows queued now, and then only whole batches. */
  private async drain (all: boolean): Promise<void> {
    let first = true
    // eslint-disable-next-line no-unmodified-loop-condition -- `all` is fixed per call; the queue is what changes
    while (this.queue.length > 0 && (first || all || this.queue.length >= this.batchSize)) {
      first = false
      const batch = this.queue.slice(0, this.batchSize)
      try {
        await this.write(batch)
      } catch (err) {
        this.opts.metrics.auditFlushFailures.inc()
        this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs === 0 ? this.opts.flushMs : this.backoffMs * 2)
        this.nextAttemptAt = Date.now() + this.backoffMs
        this.warn('audit rows not written yet, will retry', { queued: this.queue.length, retryInMs: this.backoffMs, err: (err as Error).message })
        throw err
      }
      // Rows recorded while the INSERT ran were appended after the batch: remove exactly the batch.
      this.queue.splice(0, batch.length)
      this.backoffMs = 0
      this.nextAttemptAt = 0
    }
    // Every drop ends up in a log line: those after the last (rate-limited) warning are reported once the
    // buffer drains, so the logged counts add up to mcp_audit_rows_dropped_total.
    if (this.droppedUnreported > 0) {
      this.opts.log.warn({ dropped: this.droppedUnreported, bufferMax: this.opts.bufferMax }, 'audit buffer drained; rows were dropped while it was full')
      this.droppedUnreported = 0
    }
  }

  /**
   * Writes a batch; a batch PostgreSQL refuses for its values (not for being unreachable) is split in halves until
   * the refused rows stand alone, and each of those is written repaired (repairRow), so one row never holds back
   * the others. Safe to repeat after a connection error: rows carry their ids and existing ids are skipped.
   */
  private async write (batch: string[]): Promise<void> {
    try {
      await insertAccessLogJson(this.db, batch)
      this.opts.metrics.auditWritten.inc(batch.length)
    } catch (err) {
      if (!isRowDataError(err)) throw err
      if (batch.length > 1) {
        const half = Math.ceil(batch.length / 2)
        await this.write(batch.slice(0, half))
        await this.write(batch.slice(half))
        return
      }
      await this.writeRepaired(batch[0] as string, err)
    }
  }

  private async writeRepaired (json: string, refusal: unknown): Promise<void> {
    const reason = `${(refusal as { code?: string }).code ?? ''} ${(refusal as Error).message}`.trim()
    for (const strict of [false, true]) {
      try {
        await insertAccessLogJson(this.db, [repairRow(json, reason, strict)])
        this.opts.metrics.auditWritten.inc()
        this.opts.metrics.auditRepaired.inc()
        this.warn('audit row refused by PostgreSQL: written with the offending fields nulled', { reason })
        return
      } catch (err) {
        if (!isRowDataError(err)) throw err
      }
    }
    // not even the bare row (id, action, outcome, time, note) was storable: counted as dropped, the queue moves on
    this.opts.metrics.auditDropped.inc()
    this.opts.log.error({ reason }, 'audit row refused by PostgreSQL even after repair: dropped')
  }

  /** Stops the timer and writes what is queued, retrying until `deadlineMs` passes. */
  async close (deadlineMs = 10_000): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
    const giveUpAt = Date.now() + deadlineMs
    while (this.queue.length > 0 && Date.now() < giveUpAt) {
      try {
        await this.flush()
      } catch {
        await new Promise(resolve => setTimeout(resolve, Math.min(250, Math.max(0, giveUpAt - Date.now()))))
      }
    }
    if (this.droppedUnreported > 0) {
      this.opts.log.warn({ dropped: this.droppedUnreported, bufferMax: this.opts.bufferMax }, 'audit rows were dropped while the buffer was full')
      this.droppedUnreported = 0
    }
    if (this.queue.length > 0) {
      this.opts.metrics.auditDropped.inc(this.queue.length)
      this.opts.log.error({ lost: this.queue.length }, 'audit rows could not be written before shutdown')
    }
  }

  /** Logs `msg` at most once per 10 s; true when it did. */
  private warn (msg: string, fields: Record<string, unknown>): boolean {
    const now = Date.now()
    if (now - (this.lastWarnAt.get(msg) ?? 0) < WARN_EVERY_MS) return false
    this.lastWarnAt.set(msg, now)
    this.opts.log.warn(fields, msg)
    return true
  }
}
