// SPEC §4 fail-open over HTTP: a redis-server of our own is killed, frozen and restarted under the app; requests keep answering fast, limits come back.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { buildApp } from '../helpers/app.js'
import { API, addUser, assertError, bearer, createToken, header, metric, revokeToken, type Answer } from '../helpers/chain.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { budgetKey } from '../../core/budget.js'
import { REDIS_SOCKET_TIMEOUT_MS } from '../../core/limiter.js'
import { within } from '../helpers/timing.js'

const TIMEOUT_MS = 50 // RATE_LIMIT_REDIS_TIMEOUT_MS (the default)
// What an answer must never wait for while Redis is away: the Redis client's own give-up (its socket timeout, 1 s,
// when the server is frozen; an offline queue, up to minutes, when it is dead). Everything below that is the
// limiter's deadline, the request's own work and a loaded host's stalls, which a 2-core machine may stretch far
// beyond the deadline. That the deadline path itself was taken is checked by event below (the fail-open counter,
// answers that waited the deadline out), not by a stopwatch.
const BOUND_MS = Math.min(within(TIMEOUT_MS), REDIS_SOCKET_TIMEOUT_MS)

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address !== null ? address.port : 0) })
    })
  })
}

const port = await freePort()
const redisUrl = `redis://127.0.0.1:${port}`
let server: ChildProcess | null = null

async function startRedis (): Promise<void> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  server = child
  const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  probe.on('error', () => {})
  const deadline = Date.now() + 10_000
  try {
    for (;;) {
      try {
        if (probe.status !== 'ready') await probe.connect()
        if (await probe.ping() === 'PONG') return
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`)
        await sleep(50)
      }
    }
  } finally {
    probe.disconnect()
  }
}

function signal (sig: NodeJS.Signals): void {
  if (server?.pid !== undefined && server.exitCode === null) server.kill(sig)
}

async function killRedis (): Promise<void> {
  const child = server
  if (child === null || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

// Registered before the app, so it runs after the app has closed (teardowns run last-in, first-out).
t.teardown(killRedis)
await startRedis()

const LIMIT = 3
const { app, database, keyPrefix, session } = await buildApp(t, {
  env: { REDIS_URL: redisUrl, RATE_LIMIT_REDIS_TIMEOUT_MS: String(TIMEOUT_MS) },
  limits: { default: LIMIT },
  seed: async ({ db }) => { await seedFixture(db) }
})
const db = database.db
const userId = await addUser(db, [FIXTURE.projects.github])
const jwt = await session(userId)
const token = (await createToken(app, jwt)).token
const projectsUrl = `${API}/projects`

const readyz = async (): Promise<{ code: number, status: string, redis: string, database: string }> => {
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  return { code: res.statusCode, ...res.json() }
}

/** A request and how long it took. */
async function timed (url = projectsUrl, auth = token): Promise<Answer & { ms: number }> {
  const started = performance.now()
  const res = await app.inject({ method: 'GET', url, headers: bearer(auth) })
  return Object.assign(res, { ms: performance.now() - started })
}

/** Requests back to back for `ms`: every one must answer 200 within the bound, failing open. */
async function failsOpenFor (t: Test, ms: number, what: string): Promise<number[]> {
  const until = Date.now() + ms
  const times: number[] = []
  while (Date.now() < until) {
    const res = await timed()
    times.push(res.ms)
    if (res.statusCode !== 200) t.fail(`${what}: ${res.statusCode} ${res.body}`)
    if (header(res, 'ratelimit') !== '') t.fail(`${what}: a limiter that did not answer sent RateLimit headers`)
  }
  times.sort((a, b) => a - b)
  const max = times.at(-1) ?? 0
  t.ok(times.length >= 5, `${what}: ${times.length} requests`)
  t.ok(max < BOUND_MS, `${what}: every answer within ${BOUND_MS} ms (p50 ${times[Math.floor(times.length / 2)]?.toFixed(1)} ms, max ${max.toFixed(1)} ms)`)
  return times
}

/** Polls until the limiter answers again (RateLimit headers back), then spends the budget to a 429. */
async function limitsReturn (t: Test, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  let res = await timed()
  while (header(res, 'ratelimit') === '' && Date.now() < deadline) {
    t.ok(res.statusCode === 200 && res.ms < BOUND_MS, `${what}: still answering fast while reconnecting (${res.ms.toFixed(1)} ms)`)
    await sleep(100)
    res = await timed()
  }
  t.not(header(res, 'ratelimit'), '', `${what}: the limiter answers again`)
  for (let i = 0; i < LIMIT + 1 && res.statusCode === 200; i++) res = await timed()
  assertError(t, res, 429, 'MCP_RATE_LIMITED', `${what}: limits apply again`)
  t.match(header(res, 'retry-after'), /^\d+$/)
  const probe = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  try {
    t.equal(await probe.llen(budgetKey(keyPrefix, userId, 'list_projects')), LIMIT, `${what}: the window is on the restarted Redis`)
  } finally {
    probe.disconnect()
  }
}

// The app connects in the background: wait until its limiter is live.
for (let i = 0; i < 100 && (await readyz()).redis !== 'ok'; i++) await sleep(50)

t.test('healthy: limits apply', async t => {
  t.equal((await readyz()).redis, 'ok')
  for (let i = 0; i < LIMIT; i++) t.equal((await timed()).statusCode, 200)
  assertError(t, await timed(), 429, 'MCP_RATE_LIMITED')
})

t.test('Redis killed: requests answer 200 within the timeout, fail-open counted, /readyz degraded; revocation still applies', async t => {
  const revocable = await createToken(app, jwt, { name: 'revoked while redis is down' })
  t.equal((await timed(projectsUrl, revocable.token)).statusCode, 429, 'the user\'s budget is spent while Redis lives')
  const openBefore = await metric(app, 'mcp_ratelimit_fail_open_total')
  await killRedis()
  // Straight after the kill, while ioredis notices and starts reconnecting, and on through its retries.
  const n = (await failsOpenFor(t, 2500, 'Redis dead')).length
  t.equal(await metric(app, 'mcp_ratelimit_fail_open_total') - openBefore, n, 'mcp_ratelimit_fail_open_total rose by one per request')
  const ready = await readyz()
  t.same(ready, { ...ready, code: 200, status: 'ready', redis: 'degraded', database: 'ok' }, '/readyz: ready, Redis degraded')

  // No invalidation can travel now, so no replica may trust a cache: a revocation applies at once.
  t.equal((await timed(projectsUrl, revocable.token)).statusCode, 200)
  await revokeToken(app, jwt, revocable.token_id)
  assertError(t, await timed(projectsUrl, revocable.token), 401, 'MCP_INVALID_TOKEN', 'revoked while Redis is down')
})

t.test('Redis restarted: limits apply again', async t => {
  await startRedis()
  await limitsReturn(t, 'after restart')
})

t.test('Redis frozen (SIGSTOP): the timeout path answers just as fast; SIGCONT: limits apply again', async t => {
  const openBefore = await metric(app, 'mcp_ratelimit_fail_open_total')
  signal('SIGSTOP')
  try {
    // Longer than ioredis' socketTimeout (1 s), so the frozen socket is also dropped and reconnected meanwhile.
    const times = await failsOpenFor(t, 2500, 'Redis frozen')
    const waited = times.filter(ms => ms >= TIMEOUT_MS - 5).length
    t.ok(waited > 0, `the deadline path was taken: ${waited} of ${times.length} answers waited out the ${TIMEOUT_MS} ms timeout`)
    t.equal(await metric(app, 'mcp_ratelimit_fail_open_total') - openBefore, times.length, 'counted')
    t.equal((await readyz()).redis, 'degraded')
  } finally {
    signal('SIGCONT')
  }
  // Redis kept its data while frozen: the window of the previous test is still full, or has been refilled.
  const probe = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  await probe.del(budgetKey(keyPrefix, userId, 'list_projects'))
  probe.disconnect()
  await limitsReturn(t, 'after SIGCONT')
})

// Token state is read live on every request, so no Redis message has to reach a replica for a revocation to apply.
t.test('Redis frozen: a token revoked through one replica is refused by another that served it before', async t => {
  const other = await buildApp(t, { database, env: { REDIS_URL: redisUrl, RATE_LIMIT_REDIS_TIMEOUT_MS: String(TIMEOUT_MS) }, limits: { default: 1000 } })
  const made = await createToken(app, jwt, { name: 'revoked while redis is frozen' })
  const url = `${API}/projects/${FIXTURE.projects.github}`
  for (let i = 0; i < 2; i++) t.equal((await other.app.inject({ url, headers: bearer(made.token) })).statusCode, 200, 'the other replica serves it')
  signal('SIGSTOP')
  try {
    await revokeToken(app, jwt, made.token_id)
    const next = await other.app.inject({ url, headers: bearer(made.token) })
    t.equal(next.statusCode, 401, 'the other replica refuses it on the next request')
  } finally {
    signal('SIGCONT')
  }
})
