// The failure summary's digests of large failed logs, computed when InfraBox announces the failure (job_update), one at a time in the background, so an agent's first call finds them ready.
import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import { SUMMARY_ERRORS_DEFAULT, SUMMARY_TAIL_DEFAULT } from '../schemas/agent.js'
import { digestKept, digestLog, FAILED_STATES } from './failure-summary.js'
import { JOB_UPDATE, type Notifier } from './notifier.js'

/** What became of one announced failure. */
export type WarmOutcome =
  /** the digest (the summary's default arguments) is now kept in the process */
  | 'warmed'
  /** it already was */
  | 'kept'
  /** the log is smaller than the threshold (reading it on demand is fast), empty or deleted */
  | 'small'
  /** the log never reached job.console within the re-checks, or the job is gone */
  | 'gone'
  /** the queue was full */
  | 'dropped'
  /** reading it failed (logged; an agent's call reads it then) */
  | 'failed'

export interface DigestWarmerOptions {
  log: FastifyBaseLogger
  /** logs of at least this many bytes are digested ahead; 0 turns warming off */
  minBytes: number
  /** failures waiting (or waiting for their log to be moved into job.console) at most; more are dropped. Default 64 */
  queueMax?: number
  /**
   * InfraBox's scheduler sets the failed state first and moves the console rows into job.console afterwards, in a
   * transaction of its own (which announces nothing): while the log is still in rows, look again after these many
   * ms, one after the other. Default 250, 500, 1000, 2000, 4000, 8000 (about 16 s in all).
   */
  recheckMs?: readonly number[]
  /** told of every outcome (metrics, tests) */
  onOutcome?: (jobId: string, outcome: WarmOutcome) => void
  /** how long to wait for the listening connection at start before going on without it (it keeps trying). Default 5000 */
  listenWaitMs?: number
}

interface JobUpdate { job_id?: unknown, state?: unknown }

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The job id of a job_update payload announcing a failed state, else null. */
function failedJob (payload: string): string | null {
  let value: unknown
  try { value = JSON.parse(payload) } catch { return null }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
  const { job_id: jobId, state } = value as JobUpdate
  if (typeof jobId !== 'string' || !UUID_TEXT.test(jobId) || typeof state !== 'string' || !FAILED_STATES.has(state)) return null
  return jobId.toLowerCase()
}

/**
 * Listens (through the process's one listening connection) for InfraBox's `job_update` notifications; a job that
 * enters a failed state is queued, and one job at a time is digested with the failure summary's default arguments
 * (`digestLog`, which keeps the digest of an ended job's log in the process), when its job.console holds at least
 * `minBytes`. The work runs on one pooled connection at a time, never in a request; a request for the same log that
 * arrives meanwhile waits for this read instead of starting its own. Everything that goes wrong is logged and
 * dropped: an agent's call then reads the log itself, as without warming.
 */
export class DigestWarmer {
  readonly #db: Kysely<Database>
  readonly #log: FastifyBaseLogger
  readonly #minBytes: number
  readonly #queueMax: number
  readonly #recheckMs: readonly number[]
  readonly #onOutcome: ((jobId: string, outcome: WarmOutcome) => void) | undefined
  /** jobs to look at, with how many re-checks they had */
  readonly #queue: Array<{ jobId: string, attempt: number }> = []
  /** jobs queued, being read, or waiting for a re-check: each job once */
  readonly #pending = new Set<string>()
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #unsubscribe: () => void
  #running: Promise<void> | null = null
  #closed = false

  constructor (db: Kysely<Database>, notifier: Notifier, opts: DigestWarmerOptions) {
    this.#db = db
    this.#log = opts.log
    this.#minBytes = opts.minBytes
    this.#queueMax = opts.queueMax ?? 64
    this.#recheckMs = opts.recheckMs ?? [250, 500, 1000, 2000, 4000, 8000]
    this.#onOutcome = opts.onOutcome
    this.#unsubscribe = notifier.on(JOB_UPDATE, payload => {
      const jobId = failedJob(payload)
      if (jobId !== null) this.enqueue(jobId)
    })
    // failures are only heard while somebody listens: start now (the notifier keeps the connection up from then on)
    void notifier.ready(opts.listenWaitMs ?? 5000)
  }

  /** Jobs queued, being read or waiting for a re-check. */
  get pending (): number { return this.#pending.size }

  /** Queues a failed job (the notification handler's way in; also usable directly). */
  enqueue (jobId: string, attempt = 0): void {
    if (this.#closed) return
    if (attempt === 0) {
      if (this.#pending.has(jobId)) return
      if (this.#pending.size >= this.#queueMax) {
        this.#settle(jobId, 'dropped')
        return
      }
      this.#pending.add(jobId)
    }
    this.#queue.push({ jobId, attempt })
    this.#pump()
  }

  #settle (jobId: string, outcome: WarmOutcome): void {
    this.#pending.delete(jobId)
    try { this.#onOutcome?.(jobId, outcome) } catch (err) { this.#log.error({ err }, 'a digest warm-up listener failed') }
  }

  #pump (): void {
    if (this.#running !== null || this.#closed) return
    const next = this.#queue.shift()
    if (next === undefined) return
    this.#running = this.#warm(next.jobId, next.attempt).finally(() => {
      this.#running = null
      this.#pump()
    })
  }

  async #warm (jobId: string, attempt: number): Promise<void> {
    try {
      const row = await this.#db
        .selectFrom('job')
        .select(eb => [
          'job.project_id',
          eb('job.console', '=', 'deleted').as('deleted'),
          eb.fn<number | null>('octet_length', [eb.fn('nullif', ['job.console', eb.val('')])]).as('console_bytes')
        ])
        .where('job.id', '=', jobId)
        .executeTakeFirst()
      if (row === undefined) return this.#settle(jobId, 'gone')
      if (row.console_bytes === null) {
        // still in console rows: InfraBox moves them into job.console right after the state change
        const delay = this.#recheckMs[attempt]
        if (delay === undefined || this.#closed) return this.#settle(jobId, 'gone')
        const timer = setTimeout(() => {
          this.#timers.delete(timer)
          this.enqueue(jobId, attempt + 1)
        }, delay)
        timer.unref()
        this.#timers.add(timer)
        return
      }
      const bytes = Number(row.console_bytes)
      if (row.deleted === true || bytes < this.#minBytes) return this.#settle(jobId, 'small')
      if (digestKept(jobId, bytes, SUMMARY_TAIL_DEFAULT, SUMMARY_ERRORS_DEFAULT)) return this.#settle(jobId, 'kept')
      const started = performance.now()
      await digestLog(this.#db, row.project_id, jobId, SUMMARY_TAIL_DEFAULT, SUMMARY_ERRORS_DEFAULT)
      this.#log.debug({ jobId, bytes, ms: Math.round(performance.now() - started) }, 'digested a failed job\'s log ahead')
      this.#settle(jobId, 'warmed')
    } catch (err) {
      this.#log.warn({ jobId, err: err instanceof Error ? err.message : String(err) }, 'could not digest a failed job\'s log ahead; a summary reads it on demand')
      this.#settle(jobId, 'failed')
    }
  }

  /** Stops listening and re-checking; waits for the digest being read (one, bounded by its statement's deadline). */
  async close (): Promise<void> {
    this.#closed = true
    this.#unsubscribe()
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    this.#queue.length = 0
    await this.#running
  }
}
