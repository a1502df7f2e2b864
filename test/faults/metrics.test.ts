// SPEC §1/§4 metrics, each shown to move exactly when it should: refusals by reason and requests by action/outcome,
// the limiter's fail-opens, the audit buffer's depth, rows written and rows dropped; and the audit overflow under a
// real outage: PostgreSQL cut (TCP proxy) while more requests arrive than AUDIT_BUFFER_MAX rows fit — dropped
// newest-first, counted in mcp_audit_rows_dropped_total and logged (the logged counts add up to the metric), the
// buffered rows all land once the cut heals. Never silent. (The fail-closed counter and failed flushes move under
// real faults too: redis-load.test.ts and pg-cut.test.ts.)
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../helpers/app.js'
import { createTestDatabase, eventually, clientRequestId } from '../helpers/db.js'
import { API, addUser, bearer, createToken, metric, metricIn } from '../helpers/chain.js'
import { freePort, LogCapture, report, TcpProxy } from '../helpers/faults.js'
import { scanDatabase, scanText } from '../helpers/secrets.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'

const LIMIT = 3
const BUFFER_MAX = 100 // the smallest AUDIT_BUFFER_MAX the configuration accepts
const SENT = 160
// AUDIT_FLUSH_MS of a minute: nothing is written unless the test flushes, so the buffer's depth is exact.
const { app, database, session } = await buildApp(t, {
  env: { AUDIT_FLUSH_MS: '60000', AUDIT_BUFFER_MAX: String(BUFFER_MAX) },
  limits: { default: LIMIT },
  seed: async ({ db }) => { await seedFixture(db) }
})
const db = database.db
const { projects: P } = FIXTURE
const userId = await addUser(db, [P.github])
const jwt = await session(userId)
const token = (await createToken(app, jwt, { name: 'metrics' })).token
await app.mcpGateway.audit.flush()

// ---- a second app whose PostgreSQL is behind a proxy, for the overflow under a real outage

const cutDatabase = await createTestDatabase(t)
const cutDb = cutDatabase.db
const target = new URL(cutDatabase.url)
const proxy = await TcpProxy.start(t, { host: target.hostname, port: Number(target.port === '' ? 5432 : target.port) })
const logs = new LogCapture()
const { app: cutApp } = await buildApp(t, {
  database: cutDatabase,
  env: { DATABASE_URL: proxy.urlFor(cutDatabase.url), AUDIT_BUFFER_MAX: String(BUFFER_MAX), LOG_LEVEL: 'warn', MIGRATE_ON_START: 'false' },
  // the overflow is made of 401s from one address: lift that address's budget of refusals (SPEC §13.4) above them
  limits: { unauth: 1_000_000 },
  logStream: logs
})
const count = async (): Promise<number> => Number((await cutDb.selectFrom('mcp_access_log').select(eb => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n)

const scrape = async (): Promise<string> => {
  const res = await app.inject('/metrics')
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
  return res.body
}
/** The change of every sample of `names` between two scrapes, keyed by `name{labels}`; zero changes left out. */
function delta (before: string, after: string, names: string[]): Record<string, number> {
  const samples = (text: string): Map<string, number> => {
    const out = new Map<string, number>()
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line)
      if (m !== null && names.includes(m[1] ?? '')) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]))
    }
    return out
  }
  const a = samples(before)
  const b = samples(after)
  const out: Record<string, number> = {}
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const d = (b.get(key) ?? 0) - (a.get(key) ?? 0)
    if (d !== 0) out[key] = d
  }
  return out
}
const REQUESTS = ['mcp_refusals_total', 'mcp_requests_total']

t.test('each refusal moves its reason and its action/outcome pair by exactly one', async t => {
  const h = bearer(token)
  const cases: Array<[string, () => Promise<number>, Record<string, number>]> = [
    ['401', async () => (await app.inject({ url: `${API}/projects`, headers: { authorization: 'Bearer nope' } })).statusCode,
      { 'mcp_refusals_total{reason="unauthorized"}': 1, 'mcp_requests_total{action="list_projects",outcome="unauthorized",via="rest"}': 1 }],
    ['403', async () => (await app.inject({ url: `${API}/projects/${P.public}`, headers: h })).statusCode,
      { 'mcp_refusals_total{reason="forbidden"}': 1, 'mcp_requests_total{action="get_project",outcome="forbidden",via="rest"}': 1 }],
    ['404', async () => (await app.inject({ url: `${API}/projects/00000000-0000-4000-8000-00000000beef`, headers: h })).statusCode,
      { 'mcp_refusals_total{reason="not_found"}': 1, 'mcp_requests_total{action="get_project",outcome="not_found",via="rest"}': 1 }],
    ['400', async () => (await app.inject({ url: `${API}/projects/${P.github}/builds?limit=0`, headers: h })).statusCode,
      { 'mcp_refusals_total{reason="bad_request"}': 1, 'mcp_requests_total{action="list_builds",outcome="bad_request",via="rest"}': 1 }],
    ['200', async () => (await app.inject({ url: `${API}/projects/${P.github}/builds?limit=1`, headers: h })).statusCode,
      { 'mcp_requests_total{action="list_builds",outcome="success",via="rest"}': 1 }],
    ['403 outside the namespace', async () => (await app.inject({ url: '/healthz', headers: h })).statusCode,
      { 'mcp_refusals_total{reason="forbidden"}': 1, 'mcp_requests_total{action="forbidden_path",outcome="forbidden",via="rest"}': 1 }]
  ]
  for (const [status, run, expected] of cases) {
    const before = await scrape()
    t.equal(String(await run()), status.split(' ')[0], `a ${status}`)
    t.same(delta(before, await scrape(), REQUESTS), expected, `${status}: exactly these moved`)
  }
  // 429: spend the list_projects budget (LIMIT) first
  for (let i = 0; i < LIMIT; i++) await app.inject({ url: `${API}/projects`, headers: h })
  const before = await scrape()
  t.equal((await app.inject({ url: `${API}/projects`, headers: h })).statusCode, 429)
  t.same(delta(before, await scrape(), REQUESTS), { 'mcp_refusals_total{reason="rate_limited"}': 1, 'mcp_requests_total{action="list_projects",outcome="rate_limited",via="rest"}': 1 }, '429: exactly these moved')
})

t.test('audit buffer depth, rows written, rows dropped', async t => {
  await app.mcpGateway.audit.flush()
  const m0 = await scrape()
  t.equal(metricIn(m0, 'mcp_audit_buffer_depth'), 0, 'empty after a flush')
  for (let i = 0; i < 7; i++) await app.inject({ url: `${API}/projects`, headers: { authorization: 'Bearer x' } })
  const m1 = await scrape()
  t.equal(metricIn(m1, 'mcp_audit_buffer_depth'), 7, 'depth counts the rows waiting')
  t.equal(metricIn(m1, 'mcp_audit_rows_written_total') - metricIn(m0, 'mcp_audit_rows_written_total'), 0, 'nothing written yet')
  await app.mcpGateway.audit.flush()
  const m2 = await scrape()
  t.equal(metricIn(m2, 'mcp_audit_buffer_depth'), 0, 'depth back to 0')
  t.equal(metricIn(m2, 'mcp_audit_rows_written_total') - metricIn(m1, 'mcp_audit_rows_written_total'), 7, 'written rose by 7')

  for (let i = 0; i < BUFFER_MAX + 5; i++) await app.inject({ url: `${API}/projects`, headers: { authorization: 'Bearer x' } })
  const m3 = await scrape()
  t.equal(metricIn(m3, 'mcp_audit_buffer_depth'), BUFFER_MAX, 'depth stops at AUDIT_BUFFER_MAX')
  t.equal(metricIn(m3, 'mcp_audit_rows_dropped_total') - metricIn(m2, 'mcp_audit_rows_dropped_total'), 5, 'the 5 past it dropped and counted')
  await app.mcpGateway.audit.flush()
  const m4 = await scrape()
  t.equal(metricIn(m4, 'mcp_audit_rows_written_total') - metricIn(m3, 'mcp_audit_rows_written_total'), BUFFER_MAX, `written rose by ${BUFFER_MAX}`)
  t.equal(metricIn(m4, 'mcp_audit_buffer_depth'), 0)
})

t.test('limiter fail-opens: one per request let through while Redis is unreachable', async t => {
  // A second app on the same database whose REDIS_URL points at a port nothing listens on.
  const dead = await buildApp(t, { database, env: { REDIS_URL: `redis://127.0.0.1:${await freePort()}`, MIGRATE_ON_START: 'false' }, limits: { default: LIMIT } })
  const before = await dead.app.inject('/metrics')
  const n = LIMIT + 4 // more than the limit: all pass, none counted by a limiter
  for (let i = 0; i < n; i++) t.equal((await dead.app.inject({ url: `${API}/projects`, headers: bearer(token) })).statusCode, 200)
  const after = await dead.app.inject('/metrics')
  t.equal(metricIn(after.body, 'mcp_ratelimit_fail_open_total') - metricIn(before.body, 'mcp_ratelimit_fail_open_total'), n, `mcp_ratelimit_fail_open_total rose by ${n}`)
  t.equal(metricIn(after.body, 'mcp_ratelimit_fail_closed_total'), 0, 'no fail-closed route was hit')
  t.match((await dead.app.inject('/readyz')).json(), { status: 'ready', redis: 'degraded' })
})

t.test('overflow past AUDIT_BUFFER_MAX while PostgreSQL is cut: counted, logged, the rest lands', async t => {
  const droppedBefore = await metric(cutApp, 'mcp_audit_rows_dropped_total')
  const writtenBefore = await metric(cutApp, 'mcp_audit_rows_written_total')
  proxy.cut('reset')
  const ids: string[] = []
  for (let i = 0; i < SENT; i++) {
    // A malformed token: 401 before any database work, so the requests answer at once while the writer cannot write.
    const requestId = `ovf-${i}-${randomUUID().slice(0, 8)}`
    const res = await cutApp.inject({ url: `${API}/projects`, headers: { authorization: 'Bearer ib_mcp_nope', 'x-request-id': requestId } })
    t.equal(res.statusCode, 401)
    ids.push(requestId)
    if (i === 20) await sleep(150) // let the writer fail a flush or two meanwhile
  }
  t.equal(await metric(cutApp, 'mcp_audit_buffer_depth'), BUFFER_MAX, `mcp_audit_buffer_depth = ${BUFFER_MAX}: full`)
  t.equal(await metric(cutApp, 'mcp_audit_rows_dropped_total') - droppedBefore, SENT - BUFFER_MAX, `mcp_audit_rows_dropped_total rose by ${SENT - BUFFER_MAX}`)
  const full = logs.withMsg('audit buffer full: dropping rows')
  t.equal(full.length, 1, 'the overflow was logged at once (and not once per row)')
  t.match(full[0], { level: 40, bufferMax: BUFFER_MAX, dropped: 1 })

  proxy.heal()
  t.ok(await eventually(async () => cutApp.mcpGateway.audit.depth === 0 && await count() >= BUFFER_MAX, 15_000), 'the buffer drained after the heal')
  const rows = await cutDb.selectFrom('mcp_access_log').select(clientRequestId.as('request_id')).execute()
  t.equal(rows.length, BUFFER_MAX, `exactly ${BUFFER_MAX} rows`)
  t.same(rows.map(r => r.request_id).sort(), ids.slice(0, BUFFER_MAX).sort(), 'the oldest rows were kept, the newest dropped')
  t.equal(await metric(cutApp, 'mcp_audit_rows_written_total') - writtenBefore, BUFFER_MAX, 'mcp_audit_rows_written_total rose by the rows written')
  t.equal(await metric(cutApp, 'mcp_audit_buffer_depth'), 0, 'mcp_audit_buffer_depth back to 0')
  const drained = logs.withMsg('audit buffer drained; rows were dropped while it was full')
  t.equal(drained.length, 1, 'the drops not yet reported were logged once the buffer drained')
  const logged = [...full, ...drained].reduce((n, l) => n + Number(l.dropped), 0)
  t.equal(logged, SENT - BUFFER_MAX, `the logged counts add up to the metric (${logged})`)
  t.ok(logs.withMsg('audit rows not written yet, will retry').length >= 1, 'the failed flushes were logged')
  report(t, 'audit-overflow', { buffer_max: BUFFER_MAX, sent: SENT, written: rows.length, dropped_counted: SENT - BUFFER_MAX, dropped_logged: logged, lost_uncounted: SENT - rows.length - logged })
})

t.test('no plaintext token or session in any table or log line', async t => {
  for (const [name, d] of [['metrics', db], ['cut', cutDb]] as const) {
    const scan = await scanDatabase(d, [jwt, token])
    t.same(scan.leaks, [], `${name}: ${scan.columns} text columns of ${scan.tables} tables scanned`)
  }
  t.same(scanText('logs', logs.text), [], `${logs.raw.length} log lines scanned`)
})
