// One listening connection per process: PostgreSQL's LISTEN (or PGlite's listen) for InfraBox's job notifications, kept alive and re-established.
import pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'

/** InfraBox's channels (migrations 00001/00014/00024): `job_update` {type, job_id, state}, `console_update` {id, job_id}. */
export const JOB_UPDATE = 'job_update'
export const CONSOLE_UPDATE = 'console_update'

/** A live subscription: close() ends it (without reporting a loss); ping() proves the connection still answers. */
export interface ListenHandle {
  close: () => Promise<void>
  ping?: () => Promise<void>
}

/**
 * Opens a listening connection on `channels`: every notification goes to `onNotification`, and `onLost` is
 * called once if the connection dies. Resolves once LISTEN is in effect: a notification sent after that is seen.
 */
export type ListenConnector = (channels: readonly string[], onNotification: (channel: string, payload: string) => void, onLost: (err: Error) => void) => Promise<ListenHandle>

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`

/** A dedicated pg.Client (never one of the request pool's): LISTEN holds its connection for the process's life. */
export function pgListenConnector (connectionString: string, applicationName = 'infrabox-mcp-gateway-listen'): ListenConnector {
  return async (channels, onNotification, onLost) => {
    const client = new pg.Client({ connectionString, application_name: applicationName, keepAlive: true, connectionTimeoutMillis: 3000 })
    // A loss is reported only once LISTEN is in effect; a failure before that rejects the connect instead.
    let live = false
    const lost = (err: Error): void => {
      if (!live) return
      live = false
      onLost(err)
    }
    client.on('error', lost)
    client.on('end', () => { lost(new Error('the listening connection ended')) })
    client.on('notification', (msg) => { if (msg.payload !== undefined) onNotification(msg.channel, msg.payload) })
    try {
      await client.connect()
      for (const channel of channels) await client.query(`LISTEN ${quoteIdent(channel)}`)
    } catch (err) {
      await client.end().catch(() => {})
      throw err
    }
    live = true
    return {
      close: async () => {
        live = false
        await client.end().catch(() => {})
      },
      ping: async () => { await client.query('SELECT 1') }
    }
  }
}

/** What PGlite offers for LISTEN (structural, so production never loads PGlite's types). */
export interface PGliteListener {
  listen: (channel: string, callback: (payload: string) => void) => Promise<() => Promise<void>>
}

/** The embedded mode: PGlite delivers notifications in process; its "connection" cannot be lost. */
export function pgliteListenConnector (pglite: PGliteListener): ListenConnector {
  return async (channels, onNotification) => {
    const unsubscribes = await Promise.all(channels.map(async channel => await pglite.listen(channel, payload => { onNotification(channel, payload) })))
    return { close: async () => { for (const unsubscribe of unsubscribes) await unsubscribe().catch(() => {}) } }
  }
}

export interface NotifierOptions {
  log: FastifyBaseLogger
  /** first retry after a loss or a failed connect; doubles up to maxBackoffMs. Default 100 */
  minBackoffMs?: number
  /** default 5000 */
  maxBackoffMs?: number
  /** a listening connection that does not answer a ping within this many ms is replaced; default 5000 */
  pingTimeoutMs?: number
  /** how often the connection is pinged (a silently cut network never ends a TCP socket); default 30000, 0 = never */
  pingEveryMs?: number
}

type Handler = (payload: string) => void

/**
 * The process's one listener. It connects when first needed (the first waiter) and stays connected; a lost
 * connection is replaced after a backoff (with jitter), and every `onConnected` callback runs once LISTEN is in
 * effect again, so the waiters re-check what they may have missed while nobody was listening.
 */
export class Notifier {
  readonly #connector: ListenConnector
  readonly #channels: readonly string[]
  readonly #log: FastifyBaseLogger
  readonly #minBackoffMs: number
  readonly #maxBackoffMs: number
  readonly #pingTimeoutMs: number
  readonly #pingEveryMs: number
  readonly #handlers = new Map<string, Set<Handler>>()
  readonly #connected = new Set<() => void>()
  #handle: ListenHandle | null = null
  #connecting: Promise<void> | null = null
  #listening = false
  #closed = false
  #failures = 0
  #retry: NodeJS.Timeout | null = null
  #pinger: NodeJS.Timeout | null = null
  /** settles the callers of ready() when the next connection is made */
  #waiters = new Set<(ok: boolean) => void>()
  /** connections made so far (the tests and /metrics read it) */
  connections = 0

  constructor (connector: ListenConnector, channels: readonly string[], opts: NotifierOptions) {
    this.#connector = connector
    this.#channels = channels
    this.#log = opts.log
    this.#minBackoffMs = opts.minBackoffMs ?? 100
    this.#maxBackoffMs = opts.maxBackoffMs ?? 5000
    this.#pingTimeoutMs = opts.pingTimeoutMs ?? 5000
    this.#pingEveryMs = opts.pingEveryMs ?? 30_000
  }

  get listening (): boolean { return this.#listening }

  /** `fn` gets the payload of every notification on `channel`; returns the unsubscribe. */
  on (channel: string, fn: Handler): () => void {
    let set = this.#handlers.get(channel)
    if (set === undefined) {
      set = new Set()
      this.#handlers.set(channel, set)
    }
    set.add(fn)
    return () => { set.delete(fn) }
  }

  /** `fn` runs every time a listening connection has been (re-)established. */
  onConnected (fn: () => void): () => void {
    this.#connected.add(fn)
    return () => { this.#connected.delete(fn) }
  }

  /** Starts listening if nobody is; true once LISTEN is in effect, false when that did not happen within `ms`. */
  async ready (ms: number): Promise<boolean> {
    if (this.#closed) return false
    if (this.#listening) return true
    this.#start()
    return await new Promise<boolean>(resolve => {
      const done = (ok: boolean): void => {
        clearTimeout(timer)
        this.#waiters.delete(done)
        resolve(ok)
      }
      const timer = setTimeout(() => { done(false) }, ms)
      timer.unref()
      this.#waiters.add(done)
    })
  }

  #start (): void {
    if (this.#closed || this.#listening || this.#connecting !== null || this.#retry !== null) return
    this.#connecting = this.#connect().finally(() => { this.#connecting = null })
  }

  async #connect (): Promise<void> {
    const holder: { handle: ListenHandle | null } = { handle: null }
    let handle: ListenHandle
    try {
      handle = await this.#connector(this.#channels, (channel, payload) => { this.#deliver(channel, payload) }, (err) => { this.#lost(holder.handle, err) })
      holder.handle = handle
    } catch (err) {
      this.#failures++
      this.#log.warn({ err: err instanceof Error ? err.message : String(err), attempt: this.#failures }, 'could not open the listening connection for job notifications; retrying')
      this.#scheduleRetry()
      return
    }
    if (this.#closed) {
      await handle.close()
      return
    }
    this.#handle = handle
    this.#listening = true
    this.#failures = 0
    this.connections++
    if (this.connections > 1) this.#log.info('listening for job notifications again')
    this.#armPing()
    for (const done of [...this.#waiters]) done(true)
    for (const fn of [...this.#connected]) {
      try { fn() } catch (err) { this.#log.error({ err }, 'a job-notification subscriber failed on reconnect') }
    }
  }

  #lost (handle: ListenHandle | null, err: Error): void {
    if (handle === null || this.#handle !== handle || this.#closed) return
    this.#log.warn({ err: err.message }, 'the listening connection for job notifications was lost; re-establishing it')
    this.#handle = null
    this.#listening = false
    this.#disarmPing()
    void handle.close()
    this.#scheduleRetry()
  }

  #scheduleRetry (): void {
    if (this.#closed || this.#retry !== null) return
    // 100, 200, 400 … 5000 ms, each with up to a quarter more at random, so a fleet does not reconnect in lockstep.
    const base = Math.min(this.#maxBackoffMs, this.#minBackoffMs * 2 ** Math.max(0, this.#failures - 1))
    const delay = this.#failures === 0 ? Math.random() * this.#minBackoffMs : base + Math.random() * base / 4
    this.#retry = setTimeout(() => {
      this.#retry = null
      this.#start()
    }, delay)
    this.#retry.unref()
  }

  #armPing (): void {
    const handle = this.#handle
    if (this.#pingEveryMs <= 0 || handle?.ping === undefined) return
    const ping = handle.ping
    this.#pinger = setInterval(() => {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => { reject(new Error(`no answer to a ping within ${this.#pingTimeoutMs} ms`)) }, this.#pingTimeoutMs)
      })
      Promise.race([ping(), late]).then(() => { clearTimeout(timer) }, (err: unknown) => {
        clearTimeout(timer)
        this.#lost(handle, err instanceof Error ? err : new Error(String(err)))
      })
    }, this.#pingEveryMs)
    this.#pinger.unref()
  }

  #disarmPing (): void {
    if (this.#pinger !== null) clearInterval(this.#pinger)
    this.#pinger = null
  }

  #deliver (channel: string, payload: string): void {
    for (const fn of this.#handlers.get(channel) ?? []) {
      try { fn(payload) } catch (err) { this.#log.error({ err, channel }, 'a job-notification subscriber failed') }
    }
  }

  /** Ends the connection and any retry; ready() answers false from now on. */
  async close (): Promise<void> {
    this.#closed = true
    this.#listening = false
    if (this.#retry !== null) clearTimeout(this.#retry)
    this.#retry = null
    this.#disarmPing()
    for (const done of [...this.#waiters]) done(false)
    await this.#connecting
    const handle = this.#handle
    this.#handle = null
    await handle?.close()
  }
}
