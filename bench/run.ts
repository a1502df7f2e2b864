// `npm run bench` (SPEC §9): the gateway and its baselines side by side in one run, on a freshly seeded database.
//
// Servers run in child processes (node dist/bench/<server>.js), so the load generator (autocannon, in this
// process) never shares their event loop. Variants, each driven the same way (50 connections, pipelining 1,
// GET /api/v1/mcp/projects/:id/builds rotating over (token, project) pairs the token may read):
//   G  the gateway (app.ts): auth → rate limit → project access → handler → audit, limits never refusing
//   a  bare Fastify, the same listBuilds over a plain pg pool, no chain
//   b  (a) + @fastify/rate-limit with its Redis store (fixed window, high max)
//   c  bare Fastify returning a constant small JSON
//   d  (a) + the gateway's exact sliding window alone (RedisSlidingWindow) — isolates the limiter
// Runs alternate (G a b c d, G d c b a, b c d G a, a G d c b, …: rotated, every other round backwards); each is a
// warm-up then a measured run; medians are reported.
// Afterwards: mcp_access_log must hold exactly one row per request the gateway answered.
//
// Flags (or env BENCH_<NAME>): --scale 1  --revoked-tokens 0  --duration 6  --warmup 5  --rounds 4  --connections 50
//   --variants G,M,A,P,S,Q,a,b,c,d (e,f,b2 on request)  --log-level warn  --keep (keep the database)  --database-url URL --tokens-file F
//   --explain (print the EXPLAIN (ANALYZE) plans; they are always in the JSON)
//   --priority -10 (nice value for this process, the servers and the bench database's backends; needs root)
//   --quiet-wait 30 (before each run, wait up to N s for the machine to be idle; 0 = never)  --retries 2 (repeat
//   a run during which other processes used more than --quiet-cores 0.3 cores)
//   (reuse a database seeded with seed.js --keep)  --profile (V8 CPU profile of every variant's measured runs, as --cpu-prof
//   takes it; summary printed, .cpuprofile files under bench/results/)  --out FILE
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, setPriority, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { join, resolve } from 'node:path'
import autocannon, { type Result } from 'autocannon'
import { exportSPKI, generateKeyPair } from 'jose'
import pg from 'pg'
import { Redis } from 'ioredis'
import { DEFAULT_ADMIN_URL, seedBenchDatabase, type BenchToken, type SavedSeed, type SeedSizes } from './seed.js'
import type { ChildMessage, ParentMessage } from './serve.js'
import { diffProfiles, summarizeProfile, type ProfileDiff, type ProfileSummary } from './profile.js'
import { explainAll, type Plan } from './explain.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url))

// ------------------------------------------------------------------ options

const argv = process.argv.slice(2)
function opt (name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`)
  if (i >= 0 && argv[i + 1] !== undefined) return argv[i + 1] as string
  return process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? fallback
}
const flag = (name: string): boolean => argv.includes(`--${name}`) || process.env[`BENCH_${name.toUpperCase()}`] === '1'
function num (name: string, fallback: number, min = Number.MIN_VALUE): number {
  const v = Number(opt(name, String(fallback)))
  if (!Number.isFinite(v) || v < min) throw new Error(`--${name} must be ${min === Number.MIN_VALUE ? 'a positive number' : `a number ≥ ${min}`}`)
  return v
}

const options = {
  scale: num('scale', 1),
  /** revoked tokens added to mcp_token (not used by the load): the auth lookup's growth with the token table */
  revokedTokens: Math.floor(num('revoked-tokens', 0, 0)),
  durationS: num('duration', 6),
  // 5 s: with 2 s (about 1 000 gateway requests) the gateway's CPU per request still fell round by round; with 5 s it is level from the first
  warmupS: num('warmup', 5),
  rounds: num('rounds', 4),
  connections: num('connections', 50),
  variants: opt('variants', 'G,M,A,P,S,Q,a,b,c,d').split(',').map(s => s.trim()).filter(s => s !== ''),
  logLevel: opt('log-level', 'warn'),
  keep: flag('keep'),
  profile: flag('profile'),
  /** print the EXPLAIN (ANALYZE) plans of the benchmarked statements (always written to the JSON) */
  explain: flag('explain'),
  databaseUrl: opt('database-url', ''),
  tokensFile: opt('tokens-file', ''),
  redisUrl: opt('redis-url', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'),
  adminUrl: DEFAULT_ADMIN_URL,
  out: opt('out', ''),
  /** before each run, wait (at most this many seconds) until the machine is idle: other work skews the ratios */
  quietWaitS: Number(opt('quiet-wait', '30')),
  /** busy cores below which the machine counts as idle */
  quietCores: Number(opt('quiet-cores', '0.3')),
  /** a run during which other work used more than quietCores is repeated, at most this many times */
  retries: Number(opt('retries', '2')),
  /**
   * Scheduling priority (nice value, e.g. -10) for this process, the servers and the PostgreSQL backends of the
   * bench database, so that other work on a shared machine disturbs the runs less. Needs CAP_SYS_NICE for < 0;
   * silently left as is when refused. Redis is shared and left alone. Default: unchanged.
   */
  priority: opt('priority', '') === '' ? null : Number(opt('priority', '')),
  /**
   * more gateway builds to run beside G or M (before/after an optimisation): id=path/to/dist/bench/gateway-server.js,…;
   * an id starting with G gets G's REST load and is paired with G, one starting with M gets M's MCP load and is paired with M
   */
  compare: opt('compare', '').split(',').map(s => s.trim()).filter(s => s !== '').map(s => {
    const [id, path] = s.split('=')
    if (id === undefined || path === undefined || !/^[GM]\w+$/.test(id)) throw new Error('--compare takes Gname=path/to/gateway-server.js or Mname=…,…')
    return { id, path, twin: id.startsWith('M') ? 'M' : 'G' }
  })
}

// ------------------------------------------------------------------ variants

type Load = 'rest' | 'mcp' | 'summary' | 'search'

interface VariantSpec {
  id: string
  label: string
  script: string
  env: Record<string, string>
  /**
   * what the load asks: the builds list over REST (default) or as MCP tools/call list_builds; or an agent tool over
   * REST: the failure summary of the project's newest failed build (summary) or a search of its logs (search)
   */
  load?: Load
}

const runTag = randomBytes(3).toString('hex')
const VARIANTS: Record<string, Omit<VariantSpec, 'id'>> = {
  G: { label: 'gateway (full chain)', script: 'gateway-server.js', env: { BENCH_LIMITER_PREFIX: `bench_rl_${runTag}` } },
  // the same list asked as an MCP tools/call of list_builds (POST /api/v1/mcp, JSON-RPC), through the same chain
  M: { label: 'gateway, MCP tools/call list_builds', script: 'gateway-server.js', env: { BENCH_LIMITER_PREFIX: `bench_rm_${runTag}` }, load: 'mcp' },
  // the floors: bare Fastify without a logger, listBuilds (A) and a hand-written statement sent with pg (P)
  A: { label: 'bare Fastify (logger off) + listBuilds', script: 'bare-server.js', env: { BENCH_VARIANT: 'query', BENCH_LOGGER: 'off' } },
  P: { label: 'bare Fastify (logger off) + plain query', script: 'bare-server.js', env: { BENCH_VARIANT: 'plain', BENCH_LOGGER: 'off' } },
  // the agent tools through the same chain (SPEC §11): they answer more than a list, so they are reported, not held to a ratio
  S: { label: 'gateway, failure summary (latest_failed)', script: 'gateway-server.js', env: { BENCH_LIMITER_PREFIX: `bench_rs_${runTag}` }, load: 'summary' },
  Q: { label: 'gateway, log search of a failed build', script: 'gateway-server.js', env: { BENCH_LIMITER_PREFIX: `bench_rq_${runTag}` }, load: 'search' },
  a: { label: 'bare Fastify + same query', script: 'bare-server.js', env: { BENCH_VARIANT: 'query' } },
  b: { label: 'a + @fastify/rate-limit (Redis)', script: 'bare-server.js', env: { BENCH_VARIANT: 'rate-limit', BENCH_LIMITER_PREFIX: `bench_frl_${runTag}` } },
  // (b) with the gateway's Redis client (createRedisClient): the two stores compared alone; not in the default run
  b2: { label: 'b, with the gateway\'s Redis client', script: 'bare-server.js', env: { BENCH_VARIANT: 'rate-limit', BENCH_RL_CLIENT: 'gateway', BENCH_LIMITER_PREFIX: `bench_frl2_${runTag}` } },
  c: { label: 'bare Fastify, constant JSON', script: 'bare-server.js', env: { BENCH_VARIANT: 'constant' } },
  d: { label: 'a + our sliding window (Redis)', script: 'bare-server.js', env: { BENCH_VARIANT: 'limiter', BENCH_LIMITER_PREFIX: `bench_dl_${runTag}` } },
  // the two limiters in front of (c), where they are most of the work: not in the default run
  e: { label: 'c + @fastify/rate-limit (Redis)', script: 'bare-server.js', env: { BENCH_VARIANT: 'constant-rate-limit', BENCH_LIMITER_PREFIX: `bench_cfrl_${runTag}` } },
  f: { label: 'c + our sliding window (Redis)', script: 'bare-server.js', env: { BENCH_VARIANT: 'constant-limiter', BENCH_LIMITER_PREFIX: `bench_cdl_${runTag}` } }
}

// ------------------------------------------------------------------ child processes

class Server {
  private child: ChildProcess | null = null
  port = 0
  private waiting: Array<(m: ChildMessage) => void> = []

  constructor (readonly spec: VariantSpec, private readonly env: Record<string, string>, private readonly execArgv: string[]) {}

  async start (): Promise<void> {
    const child = fork(resolve(here, this.spec.script), [], {
      env: { ...process.env, ...this.env, ...this.spec.env },
      execArgv: this.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    this.child = child
    child.on('message', (m: ChildMessage) => {
      const w = this.waiting.shift()
      if (w !== undefined) w(m)
    })
    const ready = await new Promise<ChildMessage>((resolve, reject) => {
      this.waiting.push(resolve)
      child.once('exit', (code) => { reject(new Error(`${this.spec.id} (${this.spec.label}) exited with ${code} before listening`)) })
    })
    if (ready.type !== 'ready') throw new Error(`${this.spec.id}: unexpected first message ${ready.type}`)
    this.port = ready.port
  }

  get pid (): number { return this.child?.pid ?? 0 }

  private async ask (msg: ParentMessage): Promise<ChildMessage> {
    const child = this.child
    if (child === null) throw new Error('not started')
    return await new Promise<ChildMessage>((resolve) => {
      this.waiting.push(resolve)
      child.send(msg)
    })
  }

  async stats (): Promise<Extract<ChildMessage, { type: 'stats' }>> {
    const m = await this.ask({ type: 'stats' })
    if (m.type !== 'stats') throw new Error(`${this.spec.id}: expected stats, got ${m.type}`)
    return m
  }

  async profile (msg: ParentMessage): Promise<void> {
    const m = await this.ask(msg)
    if (m.type !== 'profile') throw new Error(`${this.spec.id}: expected profile, got ${m.type}`)
  }

  async stop (): Promise<void> {
    const child = this.child
    if (child === null || child.exitCode !== null) return
    const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
    child.send({ type: 'close' } satisfies ParentMessage)
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 20_000)
    await exited
    clearTimeout(timer)
  }
}

// ------------------------------------------------------------------ load

interface Pair {
  path: string
  projectId: string
  authorization: string
  /** the project's newest failed build with logs (for the agent-tool variants), when it has one */
  failedBuildId?: string
}

/** The GET a REST-shaped load sends for a pair, or null when the pair has nothing to ask (no failed build). */
function restPath (p: Pair, load: Load): string | null {
  if (load === 'rest') return p.path
  if (p.failedBuildId === undefined) return null
  const build = `/api/v1/mcp/projects/${p.projectId}/builds`
  return load === 'summary' ? `${build}/latest_failed/failures` : `${build}/${p.failedBuildId}/log-search?q=error%7CERR!&context=1`
}

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' }

function shuffled<T> (items: T[], seed: number): T[] {
  const out = [...items]
  let s = seed
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff
    const j = s % (i + 1)
    const tmp = out[i] as T
    out[i] = out[j] as T
    out[j] = tmp
  }
  return out
}

async function cannon (port: number, seconds: number, all: Pair[], load: Load = 'rest'): Promise<Result> {
  let next = 0
  const pairs = load === 'mcp' ? all : all.flatMap(p => { const path = restPath(p, load); return path === null ? [] : [{ ...p, path }] })
  return await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: options.connections,
    pipelining: 1,
    duration: seconds,
    requests: [load !== 'mcp'
      ? {
          method: 'GET',
          setupRequest: (req) => {
            const p = pairs[next++ % pairs.length] as Pair
            req.path = p.path
            req.headers = { ...req.headers, authorization: p.authorization }
            return req
          }
        }
      : {
          method: 'POST',
          setupRequest: (req) => {
            const i = next++
            const p = pairs[i % pairs.length] as Pair
            req.path = '/api/v1/mcp'
            req.headers = { ...req.headers, ...MCP_HEADERS, authorization: p.authorization }
            req.body = JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'list_builds', arguments: { projectId: p.projectId } } })
            return req
          }
        }]
  })
}

/** Busy CPU ms of the whole machine (all processes: servers, PostgreSQL, Redis, this load generator, anything else). */
async function machineBusyMs (): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? ''
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  const total = f.reduce((a, b) => a + b, 0)
  const idle = (f[3] ?? 0) + (f[4] ?? 0)
  return (total - idle) * 10 // USER_HZ = 100
}

/** utime + stime of a process in ms (0 when it is gone). */
async function processCpuMs (pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) * 10
  } catch {
    return 0
  }
}

/** Pids of the processes whose command name is `name` (e.g. redis-server). */
async function pidsNamed (name: string): Promise<number[]> {
  const out: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if ((await readFile(`/proc/${entry}/comm`, 'utf8')).trim() === name) out.push(Number(entry))
    } catch { /* gone */ }
  }
  return out
}

interface CpuSnapshot { machine: number, loadgen: number, postgres: Map<number, number>, redis: Map<number, number> }

/** CPU ms by party: the PostgreSQL backends serving the bench database, Redis, this process (autocannon). */
async function cpuSnapshot (pgPids: number[], redisPids: number[]): Promise<CpuSnapshot> {
  const each = async (pids: number[]): Promise<Map<number, number>> => new Map(await Promise.all(pids.map(async pid => [pid, await processCpuMs(pid)] as [number, number])))
  const self = process.cpuUsage()
  return { machine: await machineBusyMs(), loadgen: (self.user + self.system) / 1000, postgres: await each(pgPids), redis: await each(redisPids) }
}

/** CPU ms the processes used between two snapshots (a process gone by the second one is left out: it was idle). */
function spent (before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0
  for (const [pid, end] of after) {
    const start = before.get(pid)
    if (end > 0) ms += end - (start ?? 0)
  }
  return ms
}

/** Applies --priority to the given processes (best effort). */
function prioritize (pids: number[]): void {
  if (options.priority === null) return
  for (const pid of pids) {
    try { setPriority(pid, options.priority) } catch { /* not permitted, or gone */ }
  }
}

/** Waits until the machine has been (nearly) idle for half a second, at most quietWaitS; returns the seconds waited. */
async function waitForQuiet (): Promise<number> {
  const started = Date.now()
  for (;;) {
    const a = await machineBusyMs()
    await new Promise(resolve => setTimeout(resolve, 500))
    const cores = (await machineBusyMs() - a) / 500
    const waited = (Date.now() - started) / 1000
    if (cores <= options.quietCores || waited >= options.quietWaitS) {
      if (waited > 1.5) console.log(`  (waited ${waited.toFixed(0)} s for other work on the machine to stop; ${cores.toFixed(2)} cores busy)`)
      return waited
    }
  }
}

/** The PostgreSQL backends of the bench database: the audit writer's and the auth lookups' (by application_name), and all of them. */
async function backendPids (db: pg.Client, database: string): Promise<{ all: number[], audit: number[], auth: number[] }> {
  const { rows } = await db.query<{ pid: number, app: string }>('SELECT pid, application_name AS app FROM pg_stat_activity WHERE datname = $1', [database])
  return {
    all: rows.map(r => r.pid),
    audit: rows.filter(r => r.app.endsWith('-audit')).map(r => r.pid),
    auth: rows.filter(r => r.app.endsWith('-auth')).map(r => r.pid)
  }
}

// ------------------------------------------------------------------ one run

interface RunRecord {
  variant: string
  round: number
  reqPerSec: number
  latencyP50: number
  latencyP99: number
  latencyP999: number
  latencyMean: number
  /** responses autocannon received in the measured run */
  responses: number
  non2xx: number
  errors: number
  timeouts: number
  /** server CPU (user+system) per answered request, µs */
  serverCpuUsPerReq: number
  /** server CPU as a share of one core during the measured run */
  serverCpuCores: number
  /** whole-machine busy CPU per answered request, µs */
  machineCpuUsPerReq: number
  /** CPU of the PostgreSQL backends connected to the bench database, per answered request, µs */
  postgresCpuUsPerReq: number
  /** of which the audit writer's connections (INSERTs into mcp_access_log) */
  postgresAuditCpuUsPerReq: number
  /** of which the auth lookups' connections */
  postgresAuthCpuUsPerReq: number
  redisCpuUsPerReq: number
  /** this process (autocannon) */
  loadgenCpuUsPerReq: number
  /** server + PostgreSQL + Redis + autocannon: what one request costs across the processes serving it (robust to other load) */
  stackCpuUsPerReq: number
  /** CPU used by anything else on the machine during the measured run, in cores (noise indicator) */
  otherCores: number
  /** limiter calls that failed open (Redis slower than RATE_LIMIT_REDIS_TIMEOUT_MS), warm-up + measured */
  failOpen: number
  /** the variant's own counters over the measured run (the gateway: authLookups / authStatements) */
  counters: Record<string, number>
  serverRssMb: number
  audit?: AuditCheck
}

interface AuditCheck {
  /** rows added to mcp_access_log during this variant's warm-up + measured run */
  rows: number
  /** requests the gateway process finished (its own onResponse count), warm-up + measured */
  answered: number
  /** responses autocannon received, warm-up + measured */
  clientResponses: number
  /** requests autocannon sent, warm-up + measured (sent − received = in flight when autocannon stopped) */
  clientSent: number
  ok: boolean
  flushMs: number
}

async function countAuditRows (db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM mcp_access_log')
  return rows[0]?.n ?? 0
}

interface RunContext { database: string, redisPids: number[], profileDir: string | null }

async function runOnce (server: Server, round: number, pairs: Pair[], db: pg.Client, ctx: RunContext): Promise<RunRecord> {
  const id = server.spec.id
  const isGateway = server.spec.script === 'gateway-server.js'
  const load = server.spec.load ?? 'rest'
  if (options.quietWaitS > 0) await waitForQuiet()
  const rowsBefore = isGateway ? await countAuditRows(db) : 0
  const s0 = await server.stats()
  const warm = await cannon(server.port, options.warmupS, pairs, load)
  const s1 = await server.stats()
  prioritize((await backendPids(db, ctx.database)).all)
  const profileFile = ctx.profileDir !== null ? join(ctx.profileDir, `${id}-round${round}.cpuprofile`) : null
  if (profileFile !== null) await server.profile({ type: 'profile-start' })
  const b1 = await backendPids(db, ctx.database)
  const c1 = await cpuSnapshot(b1.all, ctx.redisPids)
  const measured = await cannon(server.port, options.durationS, pairs, load)
  // backends opened during the run count from zero
  const b2 = await backendPids(db, ctx.database)
  const c2 = await cpuSnapshot(b2.all, ctx.redisPids)
  const auditPids = new Set([...b1.audit, ...b2.audit])
  const authPids = new Set([...b1.auth, ...b2.auth])
  const only = (m: Map<number, number>, pids = auditPids): Map<number, number> => new Map([...m].filter(([pid]) => pids.has(pid)))
  if (profileFile !== null) await server.profile({ type: 'profile-stop', file: profileFile })
  const s2 = await server.stats()

  const answeredMeasured = s2.answered - s1.answered
  const cpuUs = (s2.cpuUserUs + s2.cpuSystemUs) - (s1.cpuUserUs + s1.cpuSystemUs)
  const record: RunRecord = {
    variant: id,
    round,
    reqPerSec: measured.requests.total / measured.duration,
    latencyP50: measured.latency.p50,
    latencyP99: measured.latency.p99,
    latencyP999: measured.latency.p99_9 ?? NaN,
    latencyMean: measured.latency.average,
    responses: measured.requests.total,
    non2xx: measured.non2xx + warm.non2xx,
    errors: measured.errors + warm.errors,
    timeouts: measured.timeouts + warm.timeouts,
    serverCpuUsPerReq: cpuUs / Math.max(1, answeredMeasured),
    serverCpuCores: cpuUs / 1e6 / measured.duration,
    machineCpuUsPerReq: (c2.machine - c1.machine) * 1000 / Math.max(1, answeredMeasured),
    postgresCpuUsPerReq: spent(c1.postgres, c2.postgres) * 1000 / Math.max(1, answeredMeasured),
    postgresAuditCpuUsPerReq: spent(only(c1.postgres), only(c2.postgres)) * 1000 / Math.max(1, answeredMeasured),
    postgresAuthCpuUsPerReq: spent(only(c1.postgres, authPids), only(c2.postgres, authPids)) * 1000 / Math.max(1, answeredMeasured),
    redisCpuUsPerReq: spent(c1.redis, c2.redis) * 1000 / Math.max(1, answeredMeasured),
    loadgenCpuUsPerReq: (c2.loadgen - c1.loadgen) * 1000 / Math.max(1, answeredMeasured),
    stackCpuUsPerReq: (cpuUs + (spent(c1.postgres, c2.postgres) + spent(c1.redis, c2.redis) + (c2.loadgen - c1.loadgen)) * 1000) / Math.max(1, answeredMeasured),
    // everything else on the machine (other users' work, the kernel's share not charged to a process): noise, in cores
    otherCores: ((c2.machine - c1.machine) - spent(c1.postgres, c2.postgres) - spent(c1.redis, c2.redis) - (c2.loadgen - c1.loadgen) - cpuUs / 1000) / 1000 / measured.duration,
    failOpen: (s2.counters.failOpen ?? 0) - (s0.counters.failOpen ?? 0),
    counters: Object.fromEntries(Object.keys(s2.counters).map(k => [k, (s2.counters[k] ?? 0) - (s1.counters[k] ?? 0)])),
    serverRssMb: s2.rssBytes / 2 ** 20
  }

  if (isGateway) {
    // Every request the process answered must leave exactly one row. The writer flushes every AUDIT_FLUSH_MS
    // (100): poll until the rows match, or until nothing has moved for 2 s (then it is a real mismatch).
    const answered = s2.answered - s0.answered
    const started = Date.now()
    let rows = 0
    let last = -1
    let stableSince = Date.now()
    for (;;) {
      rows = await countAuditRows(db) - rowsBefore
      if (rows === answered) break
      if (rows !== last) { last = rows; stableSince = Date.now() }
      if (Date.now() - stableSince > 2000 || Date.now() - started > 30_000) break
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    const clientResponses = warm.requests.total + measured.requests.total
    const clientSent = warm.requests.sent + measured.requests.sent
    record.audit = {
      rows,
      answered,
      clientResponses,
      clientSent,
      // REST: exact, one row per answered request, and what autocannon saw lies between received and sent.
      // MCP: a tool call whose client hung up when the load stopped is audited (status 499) without an answer
      // going out, so the rows lie between the answered requests and the requests sent.
      ok: load === 'mcp'
        ? rows >= answered && rows <= clientSent && answered >= clientResponses
        : rows === answered && answered >= clientResponses && answered <= clientSent,
      flushMs: Date.now() - started
    }
  }
  return record
}

// ------------------------------------------------------------------ report

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

interface Summary {
  variant: string
  label: string
  runs: number
  reqPerSec: number
  latencyP50: number
  latencyP99: number
  ratioToA: number | null
  p99RatioToA: number | null
  ratioToB: number | null
  non2xx: number
  errors: number
  serverCpuUsPerReq: number
  serverCpuCores: number
  machineCpuUsPerReq: number
  postgresCpuUsPerReq: number
  postgresAuditCpuUsPerReq: number
  /** of which the auth lookups' connections */
  postgresAuthCpuUsPerReq: number
  redisCpuUsPerReq: number
  loadgenCpuUsPerReq: number
  stackCpuUsPerReq: number
  /** stack CPU of (a) / this variant's: the throughput ratio a CPU-bound quiet machine would show */
  stackRatioToA: number | null
  otherCores: number
  failOpen: number
}

function summarize (records: RunRecord[], ids: string[]): Summary[] {
  const by = (id: string): RunRecord[] => records.filter(r => r.variant === id)
  const rps = (id: string): number | null => by(id).length === 0 ? null : median(by(id).map(r => r.reqPerSec))
  const p99 = (id: string): number | null => by(id).length === 0 ? null : median(by(id).map(r => r.latencyP99))
  const a = rps('a')
  const b = rps('b')
  const aP99 = p99('a')
  return ids.map(id => {
    const rs = by(id)
    const mine = median(rs.map(r => r.reqPerSec))
    const myP99 = median(rs.map(r => r.latencyP99))
    return {
      variant: id,
      label: VARIANTS[id]?.label ?? id,
      runs: rs.length,
      reqPerSec: mine,
      latencyP50: median(rs.map(r => r.latencyP50)),
      latencyP99: myP99,
      ratioToA: a === null ? null : mine / a,
      p99RatioToA: aP99 === null ? null : myP99 / aP99,
      ratioToB: b === null ? null : mine / b,
      non2xx: rs.reduce((n, r) => n + r.non2xx, 0),
      errors: rs.reduce((n, r) => n + r.errors + r.timeouts, 0),
      serverCpuUsPerReq: median(rs.map(r => r.serverCpuUsPerReq)),
      serverCpuCores: median(rs.map(r => r.serverCpuCores)),
      machineCpuUsPerReq: median(rs.map(r => r.machineCpuUsPerReq)),
      postgresCpuUsPerReq: median(rs.map(r => r.postgresCpuUsPerReq)),
      postgresAuditCpuUsPerReq: median(rs.map(r => r.postgresAuditCpuUsPerReq)),
      postgresAuthCpuUsPerReq: median(rs.map(r => r.postgresAuthCpuUsPerReq)),
      redisCpuUsPerReq: median(rs.map(r => r.redisCpuUsPerReq)),
      loadgenCpuUsPerReq: median(rs.map(r => r.loadgenCpuUsPerReq)),
      stackCpuUsPerReq: median(rs.map(r => r.stackCpuUsPerReq)),
      stackRatioToA: by('a').length === 0 ? null : median(by('a').map(r => r.stackCpuUsPerReq)) / median(rs.map(r => r.stackCpuUsPerReq)),
      otherCores: median(rs.map(r => r.otherCores)),
      failOpen: rs.reduce((n, r) => n + r.failOpen, 0)
    }
  })
}

function cpuTable (rows: Summary[]): string {
  const head = ['', 'server', 'PostgreSQL', '(audit)', '(auth)', 'Redis', 'autocannon', 'stack', 'stack (a)/x', 'machine', 'other load (cores)', 'fail-open']
  const body = rows.map(r => [r.variant, fmt(r.serverCpuUsPerReq, 0), fmt(r.postgresCpuUsPerReq, 0), fmt(r.postgresAuditCpuUsPerReq, 0), fmt(r.postgresAuthCpuUsPerReq, 0), fmt(r.redisCpuUsPerReq, 0), fmt(r.loadgenCpuUsPerReq, 0), fmt(r.stackCpuUsPerReq, 0), fmt(r.stackRatioToA), fmt(r.machineCpuUsPerReq, 0), fmt(r.otherCores), String(r.failOpen)])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map(b => (b[i] ?? '').length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)).join(' | ') + ' |'
  return [line(head), '|' + widths.map((w, i) => i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':').join('|') + '|', ...body.map(line)].join('\n')
}

const fmt = (n: number | null, digits = 2): string => n === null || Number.isNaN(n) ? '—' : n.toFixed(digits)

function table (rows: Summary[]): string {
  const head = ['', 'variant', 'req/s', 'p50 ms', 'p99 ms', '×(a)', 'p99 ×(a)', '×(b)', 'non-2xx', 'errors', 'CPU µs/req', 'server cores', 'machine µs/req']
  const body = rows.map(r => [
    r.variant, r.label, fmt(r.reqPerSec, 0), fmt(r.latencyP50, 0), fmt(r.latencyP99, 0), fmt(r.ratioToA), fmt(r.p99RatioToA),
    fmt(r.ratioToB), String(r.non2xx), String(r.errors), fmt(r.serverCpuUsPerReq, 0), fmt(r.serverCpuCores), fmt(r.machineCpuUsPerReq, 0)
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map(b => (b[i] ?? '').length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => i <= 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)).join(' | ') + ' |'
  return [line(head), '|' + widths.map((w, i) => i <= 1 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':').join('|') + '|', ...body.map(line)].join('\n')
}

// ------------------------------------------------------------------ main

async function seededDatabase (): Promise<{ url: string, name: string, scale: number, sizes: SeedSizes, counts: Record<string, number>, tokens: BenchToken[], pairs: Array<{ token: number, projectId: string }>, seedMs: number, drop: () => Promise<void> }> {
  if (options.databaseUrl !== '') {
    if (options.tokensFile === '') throw new Error('--database-url needs --tokens-file (written by seed.js --keep)')
    const saved = JSON.parse(await readFile(options.tokensFile, 'utf8')) as SavedSeed
    const index = new Map(saved.tokens.map((t, i) => [t.userId, i]))
    const c = new pg.Client({ connectionString: options.databaseUrl })
    await c.connect()
    const { rows } = await c.query<{ user_id: string, project_id: string }>('SELECT user_id, project_id FROM collaborator ORDER BY user_id, project_id')
    const counts: Record<string, number> = {}
    for (const table of ['project', 'user', 'collaborator', 'build', 'job', 'commit', 'mcp_token']) {
      const r = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}"`)
      counts[table] = r.rows[0]?.n ?? 0
    }
    await c.end()
    const pairs = rows.flatMap(r => { const i = index.get(r.user_id); return i === undefined ? [] : [{ token: i, projectId: r.project_id }] })
    return { url: options.databaseUrl, name: saved.name, scale: saved.scale, sizes: saved.sizes, counts, tokens: saved.tokens, pairs, seedMs: 0, drop: async () => {} }
  }
  return await seedBenchDatabase({ scale: options.scale, revokedTokens: options.revokedTokens, adminUrl: options.adminUrl, log: line => { console.log(line) } })
}

/** Each project's newest failed build whose failed jobs have logs (bench/seed.ts gives them one): the agent tools' subject. */
async function failedBuilds (url: string): Promise<Map<string, string>> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const { rows } = await c.query<{ project_id: string, build_id: string }>(
      "SELECT DISTINCT ON (project_id) project_id, build_id FROM job WHERE state IN ('failure', 'error') AND console IS NOT NULL ORDER BY project_id, created_at DESC")
    return new Map(rows.map(r => [r.project_id, r.build_id]))
  } finally {
    await c.end()
  }
}

async function deleteRedisKeys (prefixes: string[]): Promise<void> {
  const r = new Redis(options.redisUrl, { maxRetriesPerRequest: 1 })
  try {
    for (const prefix of prefixes) {
      let cursor = '0'
      do {
        const [nextCursor, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        cursor = nextCursor
        if (keys.length > 0) await r.del(...keys)
      } while (cursor !== '0')
    }
  } finally {
    r.disconnect()
  }
}

async function main (): Promise<void> {
  for (const c of options.compare) {
    VARIANTS[c.id] = { label: `${c.twin === 'M' ? 'MCP' : 'gateway'} @ ${c.id}`, script: c.path, env: { BENCH_LIMITER_PREFIX: `bench_rl_${c.id}_${runTag}` }, ...(c.twin === 'M' ? { load: 'mcp' as const } : {}) }
    if (!options.variants.includes(c.id)) options.variants.splice(options.variants.indexOf(c.twin) + 1, 0, c.id)
  }
  const unknown = options.variants.filter(v => VARIANTS[v] === undefined)
  if (unknown.length > 0) throw new Error(`unknown variants ${unknown.join(', ')} (known: ${Object.keys(VARIANTS).join(', ')})`)
  const startedAt = new Date()
  console.log(`InfraBox MCP Gateway benchmark — ${options.rounds} rounds × [${options.variants.join(' ')}], ${options.warmupS} s warm-up + ${options.durationS} s measured each, ${options.connections} connections, scale ${options.scale}`)
  console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`)

  const seeded = await seededDatabase()
  const failedOf = await failedBuilds(seeded.url)
  const pairs: Pair[] = shuffled(seeded.pairs, 7).map(p => ({
    path: `/api/v1/mcp/projects/${p.projectId}/builds`,
    projectId: p.projectId,
    ...(failedOf.has(p.projectId) ? { failedBuildId: failedOf.get(p.projectId) } : {}),
    authorization: `Bearer ${(seeded.tokens[p.token] as BenchToken).token}`
  }))
  console.log(`load: ${pairs.length} (token, project) pairs over ${new Set(seeded.pairs.map(p => p.token)).size} tokens and ${new Set(seeded.pairs.map(p => p.projectId)).size} projects`)

  const { publicKey } = await generateKeyPair('RS256', { modulusLength: 2048 })
  const env = {
    DATABASE_URL: seeded.url,
    REDIS_URL: options.redisUrl,
    SESSION_JWT_PUBLIC_KEY: await exportSPKI(publicKey),
    LOG_LEVEL: options.logLevel,
    MIGRATE_ON_START: 'false'
  }
  const profileDir = join(resultsDir, `profile-${startedAt.toISOString().replace(/[:.]/g, '-')}`)
  if (options.profile) await mkdir(profileDir, { recursive: true })

  const servers = options.variants.map(id => new Server({ id, ...(VARIANTS[id] as Omit<VariantSpec, 'id'>) }, env, []))
  const db = new pg.Client({ connectionString: seeded.url })
  await db.connect()
  const records: RunRecord[] = []
  /** runs repeated because the machine was busy with other work (kept for the record, not in the medians) */
  const discarded: RunRecord[] = []
  let failed = false
  try {
    for (const s of servers) await s.start()
    prioritize([process.pid, ...servers.map(s => s.pid)])
    const ctx: RunContext = { database: seeded.name, redisPids: await pidsNamed('redis-server'), profileDir: options.profile ? profileDir : null }
    console.log(`servers: ${servers.map(s => `${s.spec.id}=pid ${s.pid} :${s.port}`).join(', ')}`)
    for (let round = 1; round <= options.rounds; round++) {
      // Each round starts one variant later, and every other round runs backwards, so no variant always
      // comes first, last or right after the same neighbour (e.g. the constant route's burst of 50k req/s).
      const rotated = servers.map((_s, i) => servers[(i + round - 1) % servers.length] as Server)
      for (const s of round % 2 === 0 ? rotated.reverse() : rotated) {
        let r = await runOnce(s, round, pairs, db, ctx)
        for (let attempt = 1; attempt <= options.retries && r.otherCores > options.quietCores; attempt++) {
          console.log(`  (round ${round} ${r.variant} discarded: other work used ${r.otherCores.toFixed(2)} cores during it; again)`)
          discarded.push(r)
          r = await runOnce(s, round, pairs, db, ctx)
        }
        records.push(r)
        const audit = r.audit === undefined ? '' : `  audit rows ${r.audit.rows} / answered ${r.audit.answered} (autocannon: ${r.audit.clientResponses} received, ${r.audit.clientSent} sent) ${r.audit.ok ? 'OK' : 'MISMATCH'}`
        console.log(`round ${round} ${r.variant}: ${r.reqPerSec.toFixed(0)} req/s, p50 ${r.latencyP50} ms, p99 ${r.latencyP99} ms, non-2xx ${r.non2xx}, fail-open ${r.failOpen}, CPU µs/req: stack ${r.stackCpuUsPerReq.toFixed(0)} = server ${r.serverCpuUsPerReq.toFixed(0)} pg ${r.postgresCpuUsPerReq.toFixed(0)}${r.postgresAuditCpuUsPerReq > 0 ? ` (audit ${r.postgresAuditCpuUsPerReq.toFixed(0)}, auth ${r.postgresAuthCpuUsPerReq.toFixed(0)})` : ''} redis ${r.redisCpuUsPerReq.toFixed(0)} loadgen ${r.loadgenCpuUsPerReq.toFixed(0)} machine ${r.machineCpuUsPerReq.toFixed(0)}; other load ${r.otherCores.toFixed(2)} cores${r.counters.authStatements !== undefined ? `; ${((r.counters.authLookups ?? 0) / Math.max(1, r.counters.authStatements)).toFixed(1)} requests per auth query` : ''}${r.counters.limiterCalls !== undefined ? `; ${((r.counters.limiterHits ?? 0) / Math.max(1, r.counters.limiterCalls)).toFixed(1)} hits per Redis call` : ''}${audit}`)
      }
    }
  } finally {
    await Promise.all(servers.map(async s => { await s.stop() }))
    await db.end()
  }

  const summary = summarize(records, options.variants)
  console.log('')
  console.log(`medians of ${options.rounds} rounds (latency in ms; CPU µs per answered request):`)
  console.log(table(summary))
  console.log('')
  console.log('CPU per answered request by process, µs (medians; stack = server + PostgreSQL + Redis + autocannon; machine = all busy CPU / requests, incl. the kernel and other work):')
  console.log(cpuTable(summary))

  // The same ratios round by round (each pair measured seconds apart): their spread shows how much to trust the medians.
  const paired = (x: string, y: string): number[] => {
    const out: number[] = []
    for (let round = 1; round <= options.rounds; round++) {
      const rx = records.find(r => r.variant === x && r.round === round)
      const ry = records.find(r => r.variant === y && r.round === round)
      if (rx !== undefined && ry !== undefined) out.push(rx.reqPerSec / ry.reqPerSec)
    }
    return out
  }
  const pairs2: Record<string, number[]> = {}
  for (const [x, y] of [['G', 'A'], ['A', 'P'], ['M', 'G'], ['G', 'P'], ['G', 'a'], ['d', 'b'], ['f', 'e'], ...options.compare.flatMap(c => [[c.id, 'a'], [c.id, c.twin]] as Array<[string, string]>)] as Array<[string, string]>) {
    const p = paired(x, y)
    if (p.length > 0) {
      pairs2[`${x}/${y}`] = p
      console.log(`round-by-round req/s ${x}/(${y}): ${p.map(v => v.toFixed(2)).join(' ')} (median ${median(p).toFixed(2)})`)
    }
  }

  const audits = [...records, ...discarded].flatMap(r => r.audit === undefined ? [] : [r.audit])
  const auditTotals = audits.reduce((acc, a) => ({ rows: acc.rows + a.rows, answered: acc.answered + a.answered, clientResponses: acc.clientResponses + a.clientResponses, clientSent: acc.clientSent + a.clientSent }), { rows: 0, answered: 0, clientResponses: 0, clientSent: 0 })
  const auditOk = audits.every(a => a.ok)
  if (audits.length > 0) {
    console.log('')
    console.log(`audit: ${auditTotals.rows} mcp_access_log rows for ${auditTotals.answered} requests the gateway answered (autocannon received ${auditTotals.clientResponses}, sent ${auditTotals.clientSent}; the difference is requests in flight when each run stopped) — ${auditOk ? 'exactly one row per request' : 'MISMATCH'}`)
  }

  const get = (id: string): Summary | undefined => summary.find(s => s.variant === id)
  const targets: Array<{ name: string, value: number | null, goal: string, met: boolean | null }> = []
  const G = get('G')
  const b = get('b')
  const d = get('d')
  const ratio = (x: Summary | undefined, y: Summary | undefined, goal: number, name: string, p99 = false): void => {
    if (x === undefined || y === undefined) return
    const value = p99 ? x.latencyP99 / y.latencyP99 : x.reqPerSec / y.reqPerSec
    targets.push({ name, value, goal: `${p99 ? '≤' : '≥'} ${goal.toFixed(2)}`, met: p99 ? value <= goal : value >= goal })
  }
  // issue 17's targets: each step of the stack against the one below it, and the whole against the floor
  ratio(G, get('A'), 0.85, 'gateway (G) ×(A) bare Fastify, logger off, same listBuilds')
  ratio(get('A'), get('P'), 0.90, 'listBuilds (A) ×(P) the plain hand-written query')
  ratio(get('M'), G, 0.85, 'MCP tools/call list_builds (M) ×(G) its REST twin')
  ratio(G, get('P'), 0.65, 'gateway (G) ×(P) the plain bare server')
  ratio(G, get('P'), 1.5, 'gateway p99 ×(P) p99', true)
  if (G !== undefined && G.ratioToA !== null) targets.push({ name: 'chain req/s ×(a)', value: G.ratioToA, goal: '≥ 0.80', met: G.ratioToA >= 0.8 })
  if (G !== undefined && G.p99RatioToA !== null) targets.push({ name: 'chain p99 ×(a)', value: G.p99RatioToA, goal: '≤ 1.5', met: G.p99RatioToA <= 1.5 })
  if (d !== undefined && b !== undefined) targets.push({ name: 'limiter alone (d) ×(b)', value: d.reqPerSec / b.reqPerSec, goal: '≥ 1.0', met: d.reqPerSec / b.reqPerSec >= 1.0 })
  const e = get('e')
  const f = get('f')
  if (e !== undefined && f !== undefined) targets.push({ name: 'limiter alone on the constant route (f) ×(e)', value: f.reqPerSec / e.reqPerSec, goal: '≥ 1.0', met: f.reqPerSec / e.reqPerSec >= 1.0 })
  if (G !== undefined) targets.push({ name: 'gateway non-2xx', value: G.non2xx + G.errors, goal: '= 0', met: G.non2xx + G.errors === 0 })
  // each run's rows against what it answered (REST: exactly one per answer; MCP: between the answered and the sent)
  if (audits.length > 0) targets.push({ name: 'runs whose audit rows do not account for their requests', value: audits.filter(a => !a.ok).length, goal: '= 0', met: auditOk })
  console.log('')
  for (const t of targets) console.log(`${t.met === true ? 'met    ' : 'NOT MET'}  ${t.name}: ${fmt(t.value)} (target ${t.goal})`)

  let profile: ProfileSummary | null = null
  const profileDiffs: ProfileDiff[] = []
  if (options.profile) {
    // the last round's profiles: the most warmed-up
    const last = options.rounds
    const fileOf = (id: string): string => join(profileDir, `${id}-round${last}.cpuprofile`)
    const have = new Set((await readdir(profileDir)).map(f => f.replace(/-round\d+\.cpuprofile$/, '')))
    if (have.has('G')) {
      profile = await summarizeProfile(fileOf('G'))
      console.log('')
      console.log(`gateway CPU profile of a measured run (${fileOf('G')}; the profiler itself slows the gateway, so that run's numbers are not comparable):`)
      console.log(profile.text)
    }
    // Where one variant spends more than its baseline: self time per answered request, function by function.
    for (const [x, y] of [['G', 'A'], ['M', 'G'], ['A', 'P'], ['G', 'a'], ['d', 'b'], ['f', 'e']] as Array<[string, string]>) {
      const rx = records.find(r => r.variant === x && r.round === last)
      const ry = records.find(r => r.variant === y && r.round === last)
      if (!have.has(x) || !have.has(y) || rx === undefined || ry === undefined) continue
      const diff = await diffProfiles(x, fileOf(x), rx.responses, y, fileOf(y), ry.responses)
      profileDiffs.push(diff)
      console.log('')
      console.log(diff.text)
    }
  }

  // the plans of the statements just measured, on this dataset (after the runs: caches warm, audit table grown)
  const plans: Plan[] = await explainAll(seeded.url).catch((err: unknown) => { console.log(`EXPLAIN failed: ${String(err)}`); return [] })
  if (options.explain) for (const p of plans) console.log(`\n### ${p.title}\n\n${p.plan}`)

  await mkdir(resultsDir, { recursive: true })
  const out = options.out !== '' ? options.out : join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  await writeFile(out, JSON.stringify({
    startedAt: startedAt.toISOString(),
    machine: { cores: availableParallelism(), cpu: cpus()[0]?.model, memGiB: totalmem() / 2 ** 30, node: process.version },
    options: { ...options, adminUrl: undefined },
    dataset: { database: seeded.name, scale: seeded.scale, sizes: seeded.sizes, counts: seeded.counts, pairs: pairs.length, seedMs: seeded.seedMs },
    summary,
    targets,
    audit: { ...auditTotals, ok: auditOk, perRun: audits },
    pairedRatios: pairs2,
    runs: records,
    discarded,
    plans,
    profile,
    profileDiffs
  }, null, 2))
  console.log('')
  console.log(`results: ${out}`)

  await deleteRedisKeys(Object.values(VARIANTS).flatMap(v => v.env.BENCH_LIMITER_PREFIX ?? []))
  if (options.databaseUrl === '') {
    if (options.keep) {
      const file = join(resultsDir, `seed-${seeded.name}.json`)
      const saved: SavedSeed = { url: seeded.url, name: seeded.name, scale: seeded.scale, sizes: seeded.sizes, tokens: seeded.tokens }
      await writeFile(file, JSON.stringify(saved, null, 2))
      console.log(`kept database ${seeded.url}; rerun on it with --database-url ${seeded.url} --tokens-file ${file}`)
    } else await seeded.drop()
  }
  if (!auditOk || (G !== undefined && G.non2xx + G.errors > 0)) failed = true
  process.exitCode = failed ? 1 : 0
}

main().catch((err: unknown) => { console.error(err); process.exit(1) })
