// The audit pipeline: rows are queued in memory and written in multi-row batches off the request path.
import type { Kysely } from 'kysely'
import type { FastifyBaseLogger } from 'fastify'
import type { Database, NewAccessLogRow } from '../db/schema.js'
import type { Metrics } from './metrics.js'

export type AuditRow = NewAccessLogRow & { accessed_at: Date }

export interface AuditWriterOptions {
  /** interval between batches (AUDIT_FLUSH_MS) */
  flushMs: number
  /** rows held at most while PostgreSQL is unreachable (AUDIT_BUFFER_MAX) */
  bufferMax: number
  /** rows per INSERT (16 parameters a row; PostgreSQL allows 65535 per statement) */
  batchSize?: number
  log: FastifyBaseLogger
  metrics: Metrics
}

const MAX_BACKOFF_MS = 5000
const WARN_EVERY_MS = 10_000

/**
 * Requests only ever call `record`, which is synchronous and cannot fail. A timer drains the queue with
 * batched INSERTs on the writer's own connections (never the request's transaction), keeps rows and backs
 * off while the database is unreachable, and drops (counted, logged) only past `bufferMax`.
 */
export class AuditWriter {
  private queue: AuditRow[] = []
  private timer: NodeJS.Timeout | null = null
  private flushing: Promise<void> | null = null
  private backoffMs = 0
  private nextAttemptAt = 0
  private lastWarnAt = 0
  private droppedSinceWarn = 0
  private closed = false
  private readonly batchSize: number

  constructor (private readonly db: Kysely<Database>, private readonly opts: AuditWriterOptions) {
    this.batchSize = opts.batchSize ?? 1000
    this.timer = setInterval(() => { void this.tick() }, opts.flushMs)
    this.timer.unref()
  }

  get depth (): number { return this.queue.length }

  record (row: AuditRow): void {
    if (this.queue.length >= this.opts.bufferMax) {
      this.opts.metrics.auditDropped.inc()
      this.droppedSinceWarn++
      this.warn('audit buffer full: dropping rows', { dropped: this.droppedSinceWarn, bufferMax: this.opts.bufferMax })
      return
    }
    this.queue.push(row)
    this.opts.metrics.auditDepth.set(this.queue.length)
  }

  private async tick (): Promise<void> {
    if (this.flushing !== null || this.queue.length === 0 || Date.now() < this.nextAttemptAt) return
    await this.flush().catch(() => { /* kept in the queue; flush logs and backs off */ })
  }

  /** Writes everything queued now; rejects (rows kept) if the database refuses. */
  async flush (): Promise<void> {
    if (this.flushing !== null) { await this.flushing; return }
    this.flushing = this.drain().finally(() => { this.flushing = null })
    await this.flushing
  }

  private async drain (): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.batchSize)
      try {
        await this.db.insertInto('mcp_access_log').values(batch).execute()
      } catch (err) {
        this.opts.metrics.auditFlushFailures.inc()
        this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs === 0 ? this.opts.flushMs : this.backoffMs * 2)
        this.nextAttemptAt = Date.now() + this.backoffMs
        this.warn('audit rows not written yet, will retry', { queued: this.queue.length, retryInMs: this.backoffMs, err: (err as Error).message })
        throw err
      }
      // Rows recorded while the INSERT ran were appended after the batch: remove exactly the batch.
      this.queue.splice(0, batch.length)
      this.opts.metrics.auditWritten.inc(batch.length)
      this.opts.metrics.auditDepth.set(this.queue.length)
      this.backoffMs = 0
      this.nextAttemptAt = 0
    }
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
    if (this.queue.length > 0) {
      this.opts.metrics.auditDropped.inc(this.queue.length)
      this.opts.log.error({ lost: this.queue.length }, 'audit rows could not be written before shutdown')
    }
  }

  private warn (msg: string, fields: Record<string, unknown>): void {
    const now = Date.now()
    if (now - this.lastWarnAt < WARN_EVERY_MS) return
    this.lastWarnAt = now
    this.droppedSinceWarn = 0
    this.opts.log.warn(fields, msg)
  }
}
