// Fault injection for test/faults and test/hostile: a redis-server of our own, a TCP proxy in front of PostgreSQL,
// a bounded HTTP load loop with per-request latency, log capture and child gateway processes.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { tsxArgs } from './coverage.js'

interface Teardown { teardown: (fn: () => unknown) => void }

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** A TCP port nothing listens on right now (127.0.0.1). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address !== null ? address.port : 0) })
    })
  })
}

// ------------------------------------------------------------------ redis-server

/** `redis-server --port P --save "" --appendonly no` of the test's own: killed, frozen, restarted at will; killed in teardown. */
export class RedisServer {
  child: ChildProcess | null = null
  private constructor (readonly port: number) {}

  get url (): string { return `redis://127.0.0.1:${this.port}` }

  static async start (t: Teardown): Promise<RedisServer> {
    const server = new RedisServer(await freePort())
    t.teardown(async () => { await server.kill() })
    await server.start()
    return server
  }

  /** Starts (again) on the same port and waits until it answers PING. */
  async start (): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    this.child = child
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    const deadline = Date.now() + 10_000
    try {
      for (;;) {
        try {
          if (probe.status !== 'ready') await probe.connect()
          if (await probe.ping() === 'PONG') return
        } catch {
          if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not start`)
          await sleep(25)
        }
      }
    } finally {
      probe.disconnect()
    }
  }

  get running (): boolean { return this.child !== null && this.child.exitCode === null && this.child.signalCode === null }

  /** SIGKILL and wait for the exit (SIGCONT first, should it be frozen). */
  async kill (): Promise<void> {
    const child = this.child
    if (child === null || !this.running) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGCONT')
    child.kill('SIGKILL')
    await exited
  }

  freeze (): void { if (this.running) this.child?.kill('SIGSTOP') }
  thaw (): void { if (this.running) this.child?.kill('SIGCONT') }
}

// ------------------------------------------------------------------ TCP proxy

/**
 * - open: bytes pass (optionally each chunk delayed by `delayMs`)
 * - hold: new connections are accepted and never answered (a black hole)
 * - reset: new connections are accepted and reset at once (a refusal)
 * - swallow: client→server bytes pass, server→client bytes are dropped (the server acts, the client never hears)
 */
export type ProxyMode = 'open' | 'hold' | 'reset' | 'swallow'

/** A TCP proxy on 127.0.0.1 in front of `target` (e.g. PostgreSQL), closed in teardown. */
export class TcpProxy {
  mode: ProxyMode = 'open'
  delayMs = 0
  /** connections accepted so far */
  accepted = 0
  private readonly pairs = new Set<{ client: net.Socket, upstream: net.Socket | null }>()
  private constructor (private readonly server: net.Server, readonly port: number) {}

  static async start (t: Teardown, target: { host: string, port: number }): Promise<TcpProxy> {
    let proxy: TcpProxy | null = null
    const server = net.createServer(client => { proxy?.accept(client, target) })
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve) })
    const address = server.address()
    proxy = new TcpProxy(server, typeof address === 'object' && address !== null ? address.port : 0)
    const p = proxy
    t.teardown(async () => { await p.close() })
    return proxy
  }

  /** `url` with its host and port replaced by the proxy's. */
  urlFor (url: string): string {
    const u = new URL(url)
    u.hostname = '127.0.0.1'
    u.port = String(this.port)
    return u.toString()
  }

  private accept (client: net.Socket, target: { host: string, port: number }): void {
    this.accepted++
    client.on('error', () => {})
    if (this.mode === 'reset') { client.resetAndDestroy(); return }
    const pair: { client: net.Socket, upstream: net.Socket | null } = { client, upstream: null }
    this.pairs.add(pair)
    client.once('close', () => { pair.upstream?.destroy(); this.pairs.delete(pair) })
    if (this.mode === 'hold') return // accepted, never answered: the client's own timeouts must fire
    const upstream = net.connect(target.port, target.host)
    pair.upstream = upstream
    upstream.on('error', () => { client.destroy() })
    upstream.once('close', () => { client.destroy() })
    const forward = (from: net.Socket, to: net.Socket, toClient: boolean): void => {
      from.on('data', (chunk: Buffer) => {
        if (toClient && this.mode === 'swallow') return
        if (this.delayMs > 0) {
          from.pause()
          setTimeout(() => { if (!to.destroyed) to.write(chunk); from.resume() }, this.delayMs)
        } else if (!to.destroyed) {
          to.write(chunk)
        }
      })
    }
    forward(client, upstream, false)
    forward(upstream, client, true)
  }

  /** Destroys every connection (both sides) and treats new ones per `mode`. */
  cut (mode: Exclude<ProxyMode, 'open' | 'swallow'> = 'hold'): void {
    this.mode = mode
    this.destroyAll()
  }

  /** Lets bytes pass again; connections held during a cut are dropped (their clients gave up long ago). */
  heal (): void {
    if (this.mode === 'hold') this.destroyAll()
    this.mode = 'open'
  }

  destroyAll (): void {
    for (const pair of this.pairs) {
      pair.client.destroy()
      pair.upstream?.destroy()
    }
    this.pairs.clear()
  }

  get connections (): number { return this.pairs.size }

  async close (): Promise<void> {
    this.destroyAll()
    await new Promise<void>(resolve => { this.server.close(() => resolve()) })
  }
}

// ------------------------------------------------------------------ logs

export interface LogLine { level: number, time: number, msg?: string, [key: string]: unknown }

/** A pino destination that keeps every line: `buildApp(t, { logStream: capture, env: { LOG_LEVEL: 'info' } })`. */
export class LogCapture {
  readonly raw: string[] = []
  write (line: string): void { this.raw.push(line) }
  get text (): string { return this.raw.join('') }
  get lines (): LogLine[] {
    return this.text.split('\n').filter(l => l.trim() !== '').flatMap(l => {
      try { return [JSON.parse(l) as LogLine] } catch { return [{ level: 0, time: 0, msg: l }] }
    })
  }

  /** lines whose msg is exactly `msg` */
  withMsg (msg: string): LogLine[] { return this.lines.filter(l => l.msg === msg) }
}

// ------------------------------------------------------------------ load

export interface LoadRequest {
  method?: string
  path: string
  headers?: Record<string, string>
  body?: string
  /** what the test calls this kind of request (for per-kind figures) */
  kind?: string
}

export interface Sample {
  requestId: string
  kind: string
  /** HTTP status, or 0 when no response came (see error) */
  status: number
  /** error body code, when there is one */
  code: string | null
  ms: number
  startedAt: number
  endedAt: number
  /** transport error: ECONNRESET, ECONNREFUSED, TIMEOUT, ... */
  error: string | null
  headers: http.IncomingHttpHeaders
  body: string
}

export interface LoadOptions {
  base: string
  /** the next request to send (called once per request) */
  next: (i: number) => LoadRequest
  concurrency: number
  /** stop starting requests after this long, ms */
  durationMs: number
  /** and after this many (a bound on the total) */
  maxRequests?: number
  /** one request may take at most this long before it is recorded as a TIMEOUT (a hang) */
  timeoutMs?: number
  /** stops early when aborted */
  signal?: AbortSignal
  agent?: http.Agent
  /** prefix of the x-request-id of each request (default a random one) */
  idPrefix?: string
  /** told of every sample as it completes */
  onSample?: (sample: Sample) => void
}

/** One request over node:http, never throwing: transport errors are recorded in the sample. */
export async function send (base: string, req: LoadRequest, opts: { agent?: http.Agent, timeoutMs?: number, requestId?: string } = {}): Promise<Sample> {
  const requestId = opts.requestId ?? `r-${randomBytes(8).toString('hex')}`
  const started = performance.now()
  const startedAt = Date.now()
  const url = new URL(req.path, base)
  return await new Promise<Sample>(resolve => {
    let done = false
    const finish = (status: number, error: string | null, headers: http.IncomingHttpHeaders = {}, body = ''): void => {
      if (done) return
      done = true
      let code: string | null = null
      try {
        const parsed = JSON.parse(body) as { code?: unknown }
        if (typeof parsed.code === 'string') code = parsed.code
      } catch { /* not JSON */ }
      resolve({ requestId, kind: req.kind ?? req.path, status, code, ms: performance.now() - started, startedAt, endedAt: Date.now(), error, headers, body })
    }
    const r = http.request(url, {
      method: req.method ?? 'GET',
      headers: { 'x-request-id': requestId, ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}), ...req.headers },
      agent: opts.agent ?? false
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => finish(res.statusCode ?? 0, null, res.headers, Buffer.concat(chunks).toString('utf8')))
      res.on('error', (err: NodeJS.ErrnoException) => finish(0, err.code ?? err.message))
      res.on('aborted', () => finish(0, 'ABORTED'))
    })
    r.setTimeout(opts.timeoutMs ?? 15_000, () => { finish(0, 'TIMEOUT'); r.destroy() })
    r.on('error', (err: NodeJS.ErrnoException) => finish(0, err.code ?? err.message))
    r.end(req.body)
  })
}

/** `concurrency` workers sending back to back for `durationMs` (bounded by `maxRequests`); every sample kept. */
export async function runLoad (opts: LoadOptions): Promise<Sample[]> {
  const samples: Sample[] = []
  const until = Date.now() + opts.durationMs
  const max = opts.maxRequests ?? 100_000
  const prefix = opts.idPrefix ?? `l${randomBytes(3).toString('hex')}`
  let issued = 0
  const worker = async (): Promise<void> => {
    while (Date.now() < until && issued < max && opts.signal?.aborted !== true) {
      const i = issued++
      const sample = await send(opts.base, opts.next(i), { ...(opts.agent !== undefined ? { agent: opts.agent } : {}), timeoutMs: opts.timeoutMs ?? 15_000, requestId: `${prefix}-${i}` })
      samples.push(sample)
      opts.onSample?.(sample)
      // a refused connection comes back at once: do not spin a core on a server that is gone
      if (sample.status === 0) await sleep(20)
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency }, worker))
  return samples
}

export interface Figures { n: number, p50: number, p99: number, max: number }
export function figures (samples: readonly Sample[]): Figures {
  const ms = samples.map(s => s.ms).sort((a, b) => a - b)
  const at = (q: number): number => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0
  return { n: ms.length, p50: round(at(0.5)), p99: round(at(0.99)), max: round(ms.at(-1) ?? 0) }
}
const round = (x: number): number => Math.round(x * 10) / 10

/** `{ "200": 12, "503": 3, "ECONNRESET": 1 }` */
export function tally (samples: readonly Sample[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of samples) {
    const key = s.status === 0 ? (s.error ?? 'error') : String(s.status)
    out[key] = (out[key] ?? 0) + 1
  }
  return out
}

/** Prints a figure line into the TAP output (tap shows comments), so docs/reliability.md can quote real runs. */
export function report (t: { comment: (...args: unknown[]) => void }, what: string, data: unknown): void {
  t.comment(`FIGURES ${what}: ${JSON.stringify(data)}`)
}

// ------------------------------------------------------------------ gateway processes

export interface GatewayProcess {
  child: ChildProcess
  port: number
  base: string
  /** everything the process wrote to stdout and stderr so far */
  output: () => string
  /** resolves with the exit code (or the signal's name) */
  exited: Promise<number | string>
}

/**
 * Starts `node --import tsx <script>` (repo-relative) with `env` and waits until it listens. `ready` finds the
 * port in its output: server.ts logs "Server listening at http://127.0.0.1:<port>", test/helpers/gateway-process.ts
 * prints "listening <port>". SIGTERM then SIGKILL after 15 s in teardown.
 */
export async function spawnGateway (t: Teardown, script: string, env: NodeJS.ProcessEnv, opts: { startMs?: number } = {}): Promise<GatewayProcess> {
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, FASTIFY_AUTOLOAD_TYPESCRIPT: '1', ...env }
  delete fullEnv.NODE_OPTIONS // tap's own loaders are not for the child
  const child = spawn(process.execPath, [...tsxArgs(), script], { cwd: REPO_ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | string>(resolve => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
  })
  const deadline = Date.now() + (opts.startMs ?? 90_000)
  for (;;) {
    const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)|listening (\d+)/.exec(out)
    if (m !== null) {
      const port = Number(m[1] ?? m[2])
      return { child, port, base: `http://127.0.0.1:${port}`, output: () => out, exited }
    }
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${script} exited (${String(child.exitCode ?? child.signalCode)}) before listening:\n${out}`)
    if (Date.now() > deadline) throw new Error(`${script} did not listen in time:\n${out}`)
    await sleep(50)
  }
}
