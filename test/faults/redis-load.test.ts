// SPEC §4 fail-open under continuous HTTP load: the test's own redis-server is killed, frozen (SIGSTOP) and restarted
// while 8 clients keep requesting. No 5xx, every answer within RATE_LIMIT_REDIS_TIMEOUT_MS + a margin, /readyz
// degraded, one warning per 10 s at most, the fail-open counter equal to the requests let through, limits back after.
// A fail-closed route (test-only, in a scope of its own with the chain's real plugins) answers 503 + Retry-After.
// test/chain/redis-faults.test.ts proves the same one request at a time through inject; this file adds the load.
import t, { type Test } from 'tap'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { buildApp } from '../helpers/app.js'
import { API, addUser, bearer, createToken, metricIn } from '../helpers/chain.js'
import { figures, LogCapture, RedisServer, report, runLoad, send, tally, type Sample } from '../helpers/faults.js'
import { scanDatabase, scanText } from '../helpers/secrets.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import auditStep from '../../plugins/audit.js'
import mcpAuth from '../../plugins/mcp-auth.js'
import rateLimit from '../../plugins/rate-limit.js'
import { budgetKey } from '../../core/budget.js'
import { clientRequestId } from '../helpers/db.js'

const TIMEOUT_MS = 50 // RATE_LIMIT_REDIS_TIMEOUT_MS (the default)
const MARGIN_MS = 250 // on top of the request's own work, measured in the same run (healthy p99): for the p99
const WORST_MARGIN_MS = 750 // the same for the single worst answer (scheduling noise on a shared machine)
const SATURATED_P99_MS = 250 // healthy p99 above this: the machine is saturated and the worst answer is noise
const LOG_LIMIT = 5
const FAIL_OPEN_WARNING = 'rate limiter unavailable: failing open'
const FAIL_CLOSED_URL = `${API}/test-only/fail-closed`

/**
 * A route that opts into fail-closed, as a production route would (`config.mcp.failClosed`), mounted in a scope
 * of its own with the chain's real audit, auth and rate-limit plugins: no production route has to change for the test.
 */
async function failClosedScope (fastify: FastifyInstance): Promise<void> {
  await fastify.register(async scope => {
    scope.addHook('onRoute', route => { route.config = { ...route.config, mcp: { ...route.config?.mcp, chain: true } } })
    await scope.register(auditStep, { fallbackAction: 'fail_closed_probe' })
    await scope.register(mcpAuth)
    await scope.register(rateLimit)
    scope.get('/fail-closed', { config: { mcp: { action: 'fail_closed_probe', bucket: 'fail_closed_probe', rpm: 1_000_000, failClosed: true } } }, async () => ({ ok: true }))
  }, { prefix: `${API}/test-only` })
}

const redis = await RedisServer.start(t)
const logs = new LogCapture()
const { app, database, session, keyPrefix } = await buildApp(t, {
  env: { REDIS_URL: redis.url, RATE_LIMIT_REDIS_TIMEOUT_MS: String(TIMEOUT_MS), LOG_LEVEL: 'warn' },
  limits: { default: 1_000_000, log: LOG_LIMIT },
  seed: async ({ db }) => { await seedFixture(db) },
  logStream: logs,
  extend: failClosedScope
})
const db = database.db
const { projects: P, jobs: J } = FIXTURE
const userId = await addUser(db, [P.github])
const jwt = await session(userId)
const token = (await createToken(app, jwt, { name: 'redis load' })).token
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 })
t.teardown(() => { agent.destroy() })

const readyz = async (): Promise<{ status: number, redis: string, database: string }> => {
  const r = await send(base, { path: '/readyz' })
  const body = JSON.parse(r.body) as { redis: string, database: string }
  return { status: r.status, redis: body.redis, database: body.database }
}
const failClosed = async (): Promise<Sample> => await send(base, { path: FAIL_CLOSED_URL, headers: bearer(token), kind: 'fail_closed' }, { agent })
const metrics = async (): Promise<string> => (await send(base, { path: '/metrics' })).body

/** A fresh user spends its get_job_log budget: LOG_LIMIT answers with RateLimit headers, then a 429. */
async function limitsApply (t: Test, what: string): Promise<Sample[]> {
  const u = await addUser(db, [P.github])
  const tok = (await createToken(app, await session(u), { name: what })).token
  const url = `${API}/projects/${P.github}/jobs/${J.compile}/log?tail=1`
  const out: Sample[] = []
  // the client reconnects in the background (retry up to ~1 s): wait until the limiter answers
  for (let i = 0; i < 60; i++) {
    const probe = await send(base, { path: `${API}/projects`, headers: bearer(tok), kind: 'reconnect_probe' }, { agent })
    out.push(probe)
    if (probe.headers.ratelimit !== undefined) break
    await sleep(50)
  }
  // Until the 429: a hit the limiter decided carries RateLimit headers; one that missed the deadline on a starved
  // machine would be a header-less fail-open (allowed, not counted), so exactly LOG_LIMIT decided hits must pass.
  for (let i = 0; i < 3 * LOG_LIMIT; i++) {
    const r = await send(base, { path: url, headers: bearer(tok), kind: 'limit_check' }, { agent })
    out.push(r)
    if (r.status !== 200) break
  }
  const checks = out.filter(s => s.kind === 'limit_check')
  const last = checks.at(-1)
  t.equal(last?.status, 429, `${what}: the budget runs out`)
  t.equal(last?.code, 'MCP_RATE_LIMITED')
  t.match(last?.headers['retry-after'], /^\d+$/, `${what}: Retry-After on the 429`)
  // A hit that missed the deadline may still be executed by Redis when it answers late (core/limiter.ts): the
  // exact invariant is the window, which holds exactly the limit, and no more than the limit was decided allowed.
  const decided = checks.filter(s => s.status === 200 && s.headers.ratelimit !== undefined).length
  const headerless = checks.filter(s => s.status === 200 && s.headers.ratelimit === undefined).length
  t.ok(decided <= LOG_LIMIT && decided + headerless >= LOG_LIMIT, `${what}: ${decided} allowed by the limiter (+${headerless} late fail-opens) before the 429`)
  const r = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  try {
    t.equal(await r.llen(budgetKey(keyPrefix, u, 'get_job_log')), LOG_LIMIT, `${what}: the window in Redis holds exactly ${LOG_LIMIT}`)
  } finally {
    r.disconnect()
  }
  return out
}

t.test('healthy before the faults', async t => {
  for (let i = 0; i < 100 && (await readyz()).redis !== 'ok'; i++) await sleep(50)
  t.match(await readyz(), { status: 200, redis: 'ok', database: 'ok' })
  // (a starved event loop can miss the 50 ms deadline even with Redis up; that is a fail-closed 503 too)
  let closed = await failClosed()
  for (let i = 0; i < 20 && closed.status !== 200; i++) closed = await failClosed()
  t.equal(closed.status, 200, 'the fail-closed route passes while Redis answers')
  t.equal(closed.headers['ratelimit-policy'], '"fail_closed_probe";q=1000000;w=60')
})

t.test('kill, restart, freeze, thaw, kill, restart under load', async t => {
  const before = await metrics()
  const extra: Sample[] = [] // chain requests made beside the load (they count too)
  const closedDuringFaults: Sample[] = []
  const ready: Array<{ phase: string, redis: string, status: number, database: string }> = []
  const phases: Array<{ name: string, from: number, to: number }> = []
  const phase = async (name: string, ms: number, start: () => void | Promise<void>, end: () => void | Promise<void>): Promise<void> => {
    const from = Date.now()
    await start()
    await sleep(300)
    ready.push({ phase: name, ...(await readyz()) })
    closedDuringFaults.push(await failClosed())
    await sleep(Math.max(0, from + ms - Date.now()))
    phases.push({ name, from, to: Date.now() })
    await end()
  }
  const faults = (async () => {
    await sleep(1000)
    await phase('killed', 3000, async () => { await redis.kill() }, async () => { await redis.start() })
    extra.push(...await limitsApply(t, 'after the restart'))
    await phase('frozen', 3000, () => { redis.freeze() }, () => { redis.thaw() })
    extra.push(...await limitsApply(t, 'after SIGCONT'))
    // a second outage more than 10 s after the first warning: it must warn again, once
    await phase('killed again', 2500, async () => { await redis.kill() }, async () => { await redis.start() })
    extra.push(...await limitsApply(t, 'after the second restart'))
  })()
  const samples = await runLoad({
    base,
    agent,
    concurrency: 8,
    durationMs: 60_000,
    maxRequests: 50_000,
    timeoutMs: 5000,
    next: () => ({ path: `${API}/projects`, headers: bearer(token), kind: 'load' }),
    signal: AbortSignal.any([faultsDone(faults)])
  })
  await faults
  const after = await metrics()

  // ---- the load
  t.same(samples.filter(s => s.status === 0).map(s => s.error), [], 'no transport error')
  t.same(samples.filter(s => s.status !== 200).map(s => `${s.status} ${s.body.slice(0, 120)}`), [], 'every load request answered 200: no 5xx, no 429')
  const open = samples.filter(s => s.headers.ratelimit === undefined)
  const limited = samples.filter(s => s.headers.ratelimit !== undefined)
  const openFig = figures(open)
  const healthyFig = figures(limited)
  // A limiter outage may add at most its timeout. Measured against the request's own work in this run while Redis
  // answered (healthy p99): p99 within timeout + 250 ms of it (a limiter that waited on a dead or frozen socket
  // would move every answer, so the p99); the single worst answer within timeout + 750 ms of it, which on an idle
  // machine (~50 + 750 + ~60 ms) is still below ioredis' 1 s socket timeout: no answer waited for a reconnect.
  const bound = TIMEOUT_MS + MARGIN_MS + healthyFig.p99
  const worst = TIMEOUT_MS + WORST_MARGIN_MS + healthyFig.p99
  t.ok(open.length >= 50, `requests failed open: ${open.length} of ${samples.length}`)
  t.ok(openFig.p99 < bound, `fail-open p99 ${openFig.p99} ms within ${TIMEOUT_MS} + ${MARGIN_MS} + healthy p99 ${healthyFig.p99} = ${Math.round(bound)} ms (p50 ${openFig.p50} ms)`)
  // The single worst answer is scheduling noise on a saturated machine (healthy p99 over 250 ms: other test files
  // and builds competing for two cores); then it is reported, not asserted. The p99 above is asserted always.
  if (healthyFig.p99 <= SATURATED_P99_MS) {
    t.ok(figures(samples).max < worst, `every answer within ${TIMEOUT_MS} + ${WORST_MARGIN_MS} + healthy p99 = ${Math.round(worst)} ms (max ${figures(samples).max} ms)`)
  } else {
    t.comment(`machine saturated (healthy p99 ${healthyFig.p99} ms): worst answer ${figures(samples).max} ms reported, not asserted`)
  }
  for (const p of phases) {
    const inside = samples.filter(s => s.startedAt >= p.from + 100 && s.endedAt <= p.to)
    t.ok(inside.length > 0 && inside.every(s => s.headers.ratelimit === undefined), `${p.name}: all ${inside.length} requests inside failed open`)
    const fig = figures(inside)
    report(t, `redis-${p.name.replace(/ /g, '-')}`, { ms: p.to - p.from, requests: inside.length, p50: fig.p50, p99: fig.p99, max: fig.max })
  }
  const frozen = samples.filter(s => phases.some(p => p.name === 'frozen' && s.startedAt >= p.from + 100 && s.endedAt <= p.to))
  t.ok(frozen.some(s => s.ms >= TIMEOUT_MS - 5), `frozen: the deadline path was taken (${frozen.filter(s => s.ms >= TIMEOUT_MS - 5).length} answers waited out the ${TIMEOUT_MS} ms timeout)`)

  // ---- the fail-open counter counts exactly the requests let through without the limiter
  const chain = [...samples, ...extra].filter(s => s.status === 200 || s.status === 429)
  const letThrough = chain.filter(s => s.headers.ratelimit === undefined).length
  t.equal(metricIn(after, 'mcp_ratelimit_fail_open_total') - metricIn(before, 'mcp_ratelimit_fail_open_total'), letThrough, `mcp_ratelimit_fail_open_total rose by the ${letThrough} requests let through`)

  // ---- /readyz during each fault
  for (const r of ready) t.same(r, { phase: r.phase, status: 200, redis: 'degraded', database: 'ok' }, `/readyz during "${r.phase}": ready, redis degraded`)

  // ---- fail-closed route during each fault: 503 + Retry-After, audited, counted
  for (const c of closedDuringFaults) {
    t.equal(c.status, 503, `fail-closed route refuses while Redis is away (${Math.round(c.ms)} ms)`)
    t.equal(c.code, 'MCP_UNAVAILABLE')
    t.equal(c.headers['retry-after'], '1', 'Retry-After: 1')
    t.ok(c.ms < worst || healthyFig.p99 > SATURATED_P99_MS, `as fast as a fail-open (${Math.round(c.ms)} ms)`)
  }
  t.equal(metricIn(after, 'mcp_ratelimit_fail_closed_total') - metricIn(before, 'mcp_ratelimit_fail_closed_total'), closedDuringFaults.length, 'mcp_ratelimit_fail_closed_total counts them')
  await app.mcpGateway.audit.flush()
  const rows = await db.selectFrom('mcp_access_log').select([clientRequestId.as('request_id'), 'status_code', 'action']).where(clientRequestId, 'in', closedDuringFaults.map(c => c.requestId)).execute()
  t.same(rows.map(r => [r.action, r.status_code]), closedDuringFaults.map(() => ['fail_closed_probe', 503]), 'each refusal audited')

  // ---- the warning: logged, at most once per 10 s
  const warnings = logs.withMsg(FAIL_OPEN_WARNING).map(l => l.time)
  t.ok(warnings.length >= 1, `the fail-open warning was logged (${warnings.length} times over ${Math.round(((phases.at(-1)?.to ?? 0) - (phases[0]?.from ?? 0)) / 1000)} s of faults)`)
  // (a log line's time is read a moment after the clock the 10 s are measured on: a gap may read 1 ms short)
  t.ok(warnings.every((at, i) => i === 0 || at - (warnings[i - 1] ?? 0) >= 10_000 - 2), `at most once per 10 s (gaps ${warnings.slice(1).map((at, i) => at - (warnings[i] ?? 0)).join(', ')} ms)`)
  // k warnings 10 s apart need (k - 1) × 10 s; a hit that fails open as the last phase ends may warn just after it
  const span = Math.max(phases.at(-1)?.to ?? 0, warnings.at(-1) ?? 0) - (phases[0]?.from ?? 0)
  t.ok(warnings.length <= Math.floor(span / 10_000) + 1, `no more warnings than 10 s periods (${warnings.length} over ${span} ms)`)

  report(t, 'redis-load', {
    requests: samples.length,
    statuses: tally(samples),
    fail_open: open.length,
    fail_open_p99_ms: openFig.p99,
    fail_open_max_ms: openFig.max,
    healthy_p50_ms: healthyFig.p50,
    healthy_p99_ms: healthyFig.p99,
    overall_max_ms: figures(samples).max,
    warnings: warnings.length,
    fail_closed_503: closedDuringFaults.length
  })
})

t.test('no plaintext token or session in any table, log line or error body', async t => {
  const scan = await scanDatabase(db, [jwt])
  t.same(scan.leaks, [], `${scan.columns} text columns of ${scan.tables} tables scanned`)
  t.same(scanText('logs', logs.text, [jwt]), [], `${logs.raw.length} log lines scanned`)
})

/** An AbortSignal that fires when the fault script is done (the load runs exactly as long as the faults). */
function faultsDone (p: Promise<unknown>): AbortSignal {
  const c = new AbortController()
  void p.finally(() => { c.abort() })
  return c.signal
}
