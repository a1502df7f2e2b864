// wait_for_build's engine: waiters hold no connection and poll nothing; InfraBox's job notifications wake one shared check per build.
import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import { getBuild } from '../db/builds.js'
import { SCHEMA_47_COLUMNS, type InfraboxColumns } from '../db/infrabox-version.js'
import type { Database } from '../db/schema.js'
import type { BuildDetail } from '../schemas/data.js'
import { GatewayError } from '../lib/errors.js'
import { JOB_UPDATE, type Notifier } from './notifier.js'

export interface WaitOutcome {
  /** false: the timeout passed (or the server is closing) while the build was still running */
  finished: boolean
  elapsedMs: number
  /** the build as last checked */
  build: BuildDetail
}

/** Job states that keep a build running (SPEC §5); a notification of one of these cannot finish a build. */
const ACTIVE = new Set(['queued', 'scheduled', 'running'])

interface Waiter {
  readonly started: number
  readonly resolve: (outcome: WaitOutcome) => void
  readonly reject: (err: unknown) => void
  timer: NodeJS.Timeout | null
  done: boolean
}

/** Everyone waiting for one build, and the one check they share. */
interface Watch {
  readonly key: string
  readonly projectId: string
  readonly buildId: string
  readonly waiters: Set<Waiter>
  /** the build's jobs at the last check: a notification about one of them concerns this build */
  jobIds: Set<string>
  last: BuildDetail | null
  checking: boolean
  /** something happened while a check ran (its snapshot may predate it): check once more when it ends */
  again: boolean
}

export interface BuildWaitersOptions {
  log: FastifyBaseLogger
  /** without a notifier (a host that gave no way to LISTEN): one process-wide re-check of every watched build this often. Default 1000 */
  pollMs?: number
  /** how long a waiter waits for the listening connection before its first check (it re-checks when the connection comes). Default 2000 */
  listenWaitMs?: number
  /** the InfraBox columns found at start (default: schema 47's) */
  infrabox?: InfraboxColumns
}

interface JobUpdate { job_id?: unknown, state?: unknown }

const isJobUpdate = (value: unknown): value is JobUpdate => typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * Waiters of the process. A waiter costs a timer and a place in a set: no connection, no loop. The notifier's
 * one listening connection delivers InfraBox's `job_update` notifications; one naming a job of a watched build
 * in a state that is not queued/scheduled/running starts one check of that build for all its waiters (checks
 * of one build never overlap: one that is asked for during another runs right after it). Each check re-reads
 * the build's jobs, so jobs created later (Create Jobs expanding the matrix, restarts) are recognised from then
 * on; a job created after the last check cannot be the build's last active one, since a check sees every job
 * committed before it. When the listening connection comes back after a loss, every watched build is checked,
 * so a notification missed meanwhile delays nobody past the reconnect.
 */
export class BuildWaiters {
  readonly #db: Kysely<Database>
  readonly #columns: InfraboxColumns
  readonly #notifier: Notifier | null
  readonly #log: FastifyBaseLogger
  readonly #listenWaitMs: number
  readonly #watches = new Map<string, Watch>()
  /** job id → watch key, for the jobs of watched builds */
  readonly #jobs = new Map<string, string>()
  readonly #unsubscribe: Array<() => void> = []
  #poller: NodeJS.Timeout | null = null
  readonly #pollMs: number
  #closing = false
  /** checks run so far (one per build per wake-up, whatever the number of waiters) */
  checks = 0

  constructor (db: Kysely<Database>, notifier: Notifier | null, opts: BuildWaitersOptions) {
    this.#db = db
    this.#columns = opts.infrabox ?? SCHEMA_47_COLUMNS
    this.#notifier = notifier
    this.#log = opts.log
    this.#pollMs = opts.pollMs ?? 1000
    this.#listenWaitMs = opts.listenWaitMs ?? 2000
    if (notifier !== null) {
      this.#unsubscribe.push(notifier.on(JOB_UPDATE, payload => { this.#notified(payload) }))
      this.#unsubscribe.push(notifier.onConnected(() => { for (const watch of this.#watches.values()) this.#check(watch) }))
    }
  }

  /** Builds being waited for, and their waiters. */
  get size (): { builds: number, waiters: number } {
    let waiters = 0
    for (const watch of this.#watches.values()) waiters += watch.waiters.size
    return { builds: this.#watches.size, waiters }
  }

  /**
   * Resolves when the build is no longer running, or after `timeoutMs` (finished: false), or at once with
   * finished: false when the server closes. Rejects with the first check's error (404 for a build that is not
   * in the project, 503 when the database is unreachable).
   */
  async wait (projectId: string, buildId: string, timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome> {
    const started = performance.now()
    // LISTEN first, then the first check: a change committed after the check is then certain to be notified.
    if (this.#notifier !== null && !this.#closing) await this.#notifier.ready(this.#listenWaitMs)
    const key = `${projectId.toLowerCase()}:${buildId.toLowerCase()}`
    let watch = this.#watches.get(key)
    if (watch === undefined) {
      watch = { key, projectId: projectId.toLowerCase(), buildId: buildId.toLowerCase(), waiters: new Set(), jobIds: new Set(), last: null, checking: false, again: false }
      this.#watches.set(key, watch)
    }
    const current = watch
    return await new Promise<WaitOutcome>((resolve, reject) => {
      const waiter: Waiter = { started, resolve, reject, timer: null, done: false }
      current.waiters.add(waiter)
      waiter.timer = setTimeout(() => { this.#settle(current, waiter, false) }, Math.max(0, timeoutMs - (performance.now() - started)))
      waiter.timer.unref()
      signal?.addEventListener('abort', () => { this.#settle(current, waiter, false) }, { once: true })
      this.#ensurePoller()
      // Each new waiter asks for a fresh check (it may come long after the last one); it joins one in flight.
      this.#check(current)
    })
  }

  #notified (payload: string): void {
    let update: unknown
    try { update = JSON.parse(payload) } catch { return }
    if (!isJobUpdate(update) || typeof update.job_id !== 'string') return
    if (typeof update.state === 'string' && ACTIVE.has(update.state)) return
    const key = this.#jobs.get(update.job_id.toLowerCase())
    const watch = key === undefined ? undefined : this.#watches.get(key)
    if (watch !== undefined) this.#check(watch)
  }

  #check (watch: Watch): void {
    if (watch.checking) {
      watch.again = true
      return
    }
    watch.checking = true
    watch.again = false
    this.checks++
    getBuild(this.#db, watch.projectId, watch.buildId, this.#columns).then(build => {
      watch.checking = false
      this.#observe(watch, build)
    }, (err: unknown) => {
      watch.checking = false
      this.#failed(watch, err)
    })
  }

  #observe (watch: Watch, build: BuildDetail): void {
    for (const id of watch.jobIds) this.#jobs.delete(id)
    watch.jobIds = new Set(build.jobs.map(job => job.id.toLowerCase()))
    for (const id of watch.jobIds) this.#jobs.set(id, watch.key)
    watch.last = build
    if (watch.waiters.size === 0) {
      this.#forget(watch)
      return
    }
    if (build.status !== 'running') {
      for (const waiter of watch.waiters) this.#settle(watch, waiter, true)
      return
    }
    if (this.#closing) {
      for (const waiter of watch.waiters) this.#settle(watch, waiter, false)
      return
    }
    if (watch.again && watch.waiters.size > 0) this.#check(watch)
  }

  /** A failed check: waiters that have an answer keep waiting (the next wake-up re-checks); the others get the error. */
  #failed (watch: Watch, err: unknown): void {
    if (watch.waiters.size === 0) {
      this.#forget(watch)
      return
    }
    if (!(err instanceof GatewayError)) this.#log.warn({ err: err instanceof Error ? err.message : String(err), build: watch.buildId }, 'a build check failed')
    if (watch.last === null || err instanceof GatewayError) {
      for (const waiter of watch.waiters) {
        this.#finish(watch, waiter)
        waiter.reject(err)
      }
      return
    }
    if (this.#closing) for (const waiter of watch.waiters) this.#settle(watch, waiter, false)
    else if (watch.again && watch.waiters.size > 0) this.#check(watch)
  }

  /** Answers one waiter from the watch's last check (the first check is awaited when there is none yet). */
  #settle (watch: Watch, waiter: Waiter, finished: boolean): void {
    if (waiter.done) return
    const build = watch.last
    if (build === null) {
      // No answer yet (the first check is in flight): the check's end settles everyone, closing or finished.
      if (!finished) {
        if (waiter.timer !== null) clearTimeout(waiter.timer)
        waiter.timer = null
        if (!this.#closing) {
          waiter.timer = setTimeout(() => { this.#settle(watch, waiter, false) }, 50)
          waiter.timer.unref()
        }
      }
      return
    }
    this.#finish(watch, waiter)
    waiter.resolve({ finished: finished && build.status !== 'running', elapsedMs: performance.now() - waiter.started, build })
  }

  #finish (watch: Watch, waiter: Waiter): void {
    waiter.done = true
    if (waiter.timer !== null) clearTimeout(waiter.timer)
    waiter.timer = null
    watch.waiters.delete(waiter)
    if (watch.waiters.size === 0 && !watch.checking) this.#forget(watch)
    if (this.#watches.size === 0 && this.#poller !== null) {
      clearInterval(this.#poller)
      this.#poller = null
    }
  }

  #forget (watch: Watch): void {
    if (this.#watches.get(watch.key) !== watch) return
    this.#watches.delete(watch.key)
    for (const id of watch.jobIds) if (this.#jobs.get(id) === watch.key) this.#jobs.delete(id)
  }

  /** Only without a notifier: one timer for the whole process, running while anyone waits. */
  #ensurePoller (): void {
    if (this.#notifier !== null || this.#poller !== null) return
    this.#poller = setInterval(() => { for (const watch of this.#watches.values()) this.#check(watch) }, this.#pollMs)
    this.#poller.unref()
  }

  /** Server closing: every waiter answers now (finished: false unless its build just finished); new waits answer at once. */
  closing (): void {
    this.#closing = true
    for (const watch of [...this.#watches.values()]) {
      for (const waiter of [...watch.waiters]) this.#settle(watch, waiter, false)
    }
  }

  close (): void {
    this.closing()
    for (const unsubscribe of this.#unsubscribe) unsubscribe()
    if (this.#poller !== null) clearInterval(this.#poller)
    this.#poller = null
  }
}
