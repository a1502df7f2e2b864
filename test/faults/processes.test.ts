// Two real gateway processes (server.ts, as `npm start` runs it) on one Redis (the test's own redis-server) and one
// database. Replicas under sustained concurrent load — what test/chain/replicas.test.ts proves with one burst and one
// request at a time: several users' budgets each spent to exactly the limit across both; a token revoked or narrowed
// through A refused by both for every request sent after the change returned. Then SIGTERM to B under load: requests
// in flight finish (200, no reset), its audit buffer — held in memory all along (AUDIT_FLUSH_MS = 60 s) — is written
// before the exit, exit code 0. Finally every request either process answered has exactly one audit row.
import t from 'tap'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { createTestDatabase, eventually, clientRequestId } from '../helpers/db.js'
import { API, addUser, bearer } from '../helpers/chain.js'
import { sharedInfraboxKeys, signInfraboxSession } from '../helpers/infrabox.js'
import { figures, freePort, RedisServer, report, runLoad, send, spawnGateway, tally, TcpProxy, type GatewayProcess, type Sample } from '../helpers/faults.js'
import { scanDatabase, scanText } from '../helpers/secrets.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { budgetKey } from '../../core/budget.js'

const LIMIT = 40 // list_projects (the default bucket class)
const USERS = 5
const PER_USER = 3 * LIMIT

const redis = await RedisServer.start(t)
const database = await createTestDatabase(t)
await seedFixture(database.db)
const db = database.db
const { projects: P, jobs: J } = FIXTURE
const target = new URL(database.url)
const proxy = await TcpProxy.start(t, { host: target.hostname, port: Number(target.port === '' ? 5432 : target.port) })
const keys = sharedInfraboxKeys() // openssl's key files; sessions signed by node:crypto (test/helpers/infrabox.ts)
const common = {
  HOST: '127.0.0.1',
  REDIS_URL: redis.url,
  INFRABOX_RSA_PUBLIC_KEY_PATH: keys.pkcs1Path, // InfraBox's id_rsa.pub as PKCS#1
  MIGRATE_ON_START: 'false',
  LOG_LEVEL: 'info',
  MCP_RATE_LIMIT_DEFAULT_RPM: String(LIMIT),
  MCP_RATE_LIMIT_LOG_RPM: '1000000', // the revocation and shutdown loads run on get_job_log, never limited
  MCP_RATE_LIMIT_UNAUTH_RPM: '1000000', // the revocation load's 401s come from one address: not the per-address budget's test (SPEC §13.4)
  RATE_LIMIT_REDIS_TIMEOUT_MS: '2000' // an exact count must not fail open on a busy machine (fail-open: redis-load.test.ts)
}
const [A, B] = await Promise.all([
  spawnGateway(t, 'server.ts', { ...common, PORT: String(await freePort()), DATABASE_URL: database.url, AUDIT_FLUSH_MS: '20' }),
  // B reaches PostgreSQL through the proxy, so its requests can be slowed down for the shutdown; it writes its audit
  // rows only when it stops.
  spawnGateway(t, 'server.ts', { ...common, PORT: String(await freePort()), DATABASE_URL: proxy.urlFor(database.url), AUDIT_FLUSH_MS: '60000' })
]) as [GatewayProcess, GatewayProcess]
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
t.teardown(() => { agent.destroy() })
const all: Sample[] = []
const jwts: string[] = []
const tokens: string[] = []

async function userWithToken (body: object = {}): Promise<{ userId: string, jwt: string, token: string, tokenId: string }> {
  const userId = await addUser(db, [P.github, P.upload])
  const jwt = signInfraboxSession(keys.privatePath, userId)
  const made = await send(A.base, { method: 'POST', path: `${API}/tokens/`, headers: bearer(jwt), body: JSON.stringify({ name: 'processes', ...body }) })
  if (made.status !== 201) throw new Error(`token not created: ${made.status} ${made.body}`)
  const { token, token_id: tokenId } = JSON.parse(made.body) as { token: string, token_id: string }
  all.push(made)
  jwts.push(jwt)
  tokens.push(token)
  return { userId, jwt, token, tokenId }
}
const logPath = `${API}/projects/${P.github}/jobs/${J.compile}/log?tail=1`

t.test(`${USERS} users' budgets under concurrent load on both processes: exactly ${LIMIT} each`, async t => {
  const users = await Promise.all(Array.from({ length: USERS }, async () => await userWithToken()))
  const samples = await runLoad({
    base: A.base, // each request names its process
    agent,
    concurrency: 24,
    durationMs: 30_000,
    maxRequests: USERS * PER_USER,
    next: i => ({ path: `${[A, B][i % 2]?.base}${API}/projects`, headers: bearer(users[Math.floor(i / 2) % USERS]?.token ?? ''), kind: `${i % 2 === 0 ? 'A' : 'B'}:u${Math.floor(i / 2) % USERS}` })
  })
  all.push(...samples)
  t.same(tally(samples), { 200: USERS * LIMIT, 429: USERS * (PER_USER - LIMIT) }, 'only 200 and 429, in exactly those numbers')
  const r = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  try {
    for (const [i, u] of users.entries()) {
      const mine = samples.filter(s => s.kind.endsWith(`:u${i}`))
      t.equal(mine.filter(s => s.status === 200).length, LIMIT, `user ${i}: exactly ${LIMIT} allowed of ${mine.length} sent to both processes`)
      t.equal(await r.llen(budgetKey('ib_mcp_rl', u.userId, 'list_projects')), LIMIT, `user ${i}: one window in Redis`)
    }
  } finally {
    r.disconnect()
  }
  const byProcess = { A: samples.filter(s => s.kind.startsWith('A:') && s.status === 200).length, B: samples.filter(s => s.kind.startsWith('B:') && s.status === 200).length }
  report(t, 'replicas-budget', { users: USERS, limit: LIMIT, sent: samples.length, statuses: tally(samples), allowed_by_process: byProcess })
})

/** Load on both processes with one token while `change` runs through A. */
async function underLoad (token: string, change: () => Promise<Sample>): Promise<{ samples: Sample[], changeStart: number, changeDone: number, change: Sample }> {
  let changeStart = 0
  let changeDone = 0
  let result: Sample | null = null
  const stop = new AbortController()
  let completed = 0
  /** until `n` more requests completed (bounded by 10 s), so there is load on both sides of the change */
  const requestsLater = async (n: number): Promise<void> => {
    const target = completed + n
    // eslint-disable-next-line no-unmodified-loop-condition -- `completed` rises as requests finish between the sleeps
    for (let i = 0; i < 500 && completed < target; i++) await sleep(20)
  }
  const driver = (async () => {
    await requestsLater(40)
    changeStart = Date.now()
    result = await change()
    changeDone = Date.now()
    await requestsLater(60)
    stop.abort()
  })()
  const samples = await runLoad({
    base: A.base,
    agent,
    concurrency: 12,
    durationMs: 30_000,
    maxRequests: 20_000,
    signal: stop.signal,
    onSample: () => { completed++ },
    next: i => ({ path: `${[A, B][i % 2]?.base}${logPath}`, headers: bearer(token), kind: i % 2 === 0 ? 'A' : 'B' })
  })
  await driver
  if (result === null) throw new Error('change did not run')
  all.push(...samples, result)
  return { samples, changeStart, changeDone, change: result }
}

t.test('revoked through A under load: every request sent after the DELETE returned is 401, on both', async t => {
  const u = await userWithToken()
  const { samples, changeStart, changeDone, change } = await underLoad(u.token, async () =>
    await send(A.base, { method: 'DELETE', path: `${API}/tokens/${u.tokenId}`, headers: bearer(u.jwt) }))
  t.equal(change.status, 200, 'revoked')
  const before = samples.filter(s => s.endedAt < changeStart)
  const after = samples.filter(s => s.startedAt > changeDone)
  t.ok(before.length >= 20 && after.length >= 20, `load on both sides of the change (${before.length} before, ${after.length} after)`)
  t.ok(before.every(s => s.status === 200), 'served before')
  for (const side of ['A', 'B']) {
    const mine = after.filter(s => s.kind === side)
    t.ok(mine.length > 0 && mine.every(s => s.status === 401 && s.code === 'MCP_INVALID_TOKEN'), `${side}: all ${mine.length} requests after the revocation refused 401`)
  }
  t.same(samples.filter(s => s.status !== 200 && s.status !== 401).map(s => s.status), [], 'nothing but 200 and 401')
  report(t, 'replicas-revoke', { requests: samples.length, statuses: tally(samples), change_ms: changeDone - changeStart })
})

t.test('narrowed through A under load: every request sent after the PATCH returned is 403, on both', async t => {
  const u = await userWithToken()
  const { samples, changeStart, changeDone, change } = await underLoad(u.token, async () =>
    await send(A.base, { method: 'PATCH', path: `${API}/tokens/${u.tokenId}`, headers: bearer(u.jwt), body: JSON.stringify({ enabled_projects: { [P.upload]: null } }) }))
  t.equal(change.status, 200, 'narrowed to the upload project')
  t.ok(samples.filter(s => s.endedAt < changeStart).every(s => s.status === 200), 'served before')
  const after = samples.filter(s => s.startedAt > changeDone)
  for (const side of ['A', 'B']) {
    const mine = after.filter(s => s.kind === side)
    t.ok(mine.length > 0 && mine.every(s => s.status === 403 && s.code === 'MCP_PROJECT_FORBIDDEN'), `${side}: all ${mine.length} requests after the PATCH refused 403`)
  }
  report(t, 'replicas-narrow', { requests: samples.length, statuses: tally(samples), change_ms: changeDone - changeStart })
})

t.test('SIGTERM to B under load: in-flight requests finish, the audit buffer is flushed, exit 0', async t => {
  const u = await userWithToken()
  proxy.delayMs = 60 // every chunk between B and PostgreSQL waits: each request spends a few hundred ms in flight
  const earlierB = all.filter(s => s.kind.startsWith('B')).map(s => s.requestId)
  const countB = async (): Promise<number> => (await db.selectFrom('mcp_access_log').select('id')
    .where(eb => eb.or([eb(clientRequestId, 'in', earlierB), eb(clientRequestId, 'like', 'bstop-%')])).execute()).length
  let sigtermAt = 0
  let bRowsBeforeSignal = -1
  let exitedAt = 0
  const stop = new AbortController()
  const signal = (async () => {
    await sleep(1500)
    bRowsBeforeSignal = await countB()
    sigtermAt = Date.now()
    B.child.kill('SIGTERM')
    // the requests in flight stay slow for a while after the signal, then PostgreSQL is fast again for the flush
    await sleep(300)
    proxy.delayMs = 0
    const code = await B.exited
    exitedAt = Date.now()
    await sleep(300) // requests keep coming a little after the exit: refused, never half-answered
    stop.abort()
    return code
  })()
  const samples = await runLoad({
    base: B.base,
    agent,
    concurrency: 24,
    durationMs: 30_000,
    maxRequests: 20_000,
    timeoutMs: 20_000,
    signal: stop.signal,
    idPrefix: 'bstop',
    next: () => ({ path: logPath, headers: bearer(u.token), kind: 'B:shutdown' })
  })
  const code = await signal
  all.push(...samples)
  t.equal(code, 0, `exit code 0 (${exitedAt - sigtermAt} ms after SIGTERM)`)
  t.match(B.output(), /shutting down: finishing requests, flushing the audit log/, 'the shutdown was logged')

  const inFlight = samples.filter(s => s.startedAt < sigtermAt && s.endedAt > sigtermAt)
  const beforeSignal = samples.filter(s => s.startedAt < sigtermAt)
  const afterSignal = samples.filter(s => s.startedAt >= sigtermAt)
  t.ok(inFlight.length >= 10, `requests in flight when SIGTERM landed: ${inFlight.length}`)
  t.same(beforeSignal.filter(s => s.status !== 200).map(s => `${s.status || s.error} ${s.body.slice(0, 100)}`), [], 'every request sent before the signal answered 200, those in flight included: no reset')
  // After the signal: a request on a connection still open is served (app.ts sets return503OnClosing false, so no
  // Fastify 503 without a code); a new connection is refused, or an idle one closed before the request was read.
  const late = tally(afterSignal)
  t.same(afterSignal.filter(s => !(s.status === 200 || s.error === 'ECONNREFUSED' || s.error === 'ECONNRESET' || s.error === 'socket hang up')).map(s => `${s.status} ${s.error}`), [],
    `after the signal only answers (200) or refused connections (${JSON.stringify(late)})`)

  const answered = samples.filter(s => s.status === 200)
  const refused = samples.filter(s => s.status !== 200)
  const rows = await db.selectFrom('mcp_access_log').select([clientRequestId.as('request_id'), 'accessed_at']).where(clientRequestId, 'in', samples.map(s => s.requestId)).execute()
  const ids = new Set(rows.map(r => r.request_id))
  t.equal(rows.length, answered.length, `rows == requests answered (${answered.length})`)
  t.same(answered.filter(s => !ids.has(s.requestId)).map(s => s.requestId), [], 'each answered request has its row')
  t.same(refused.filter(s => ids.has(s.requestId)).map(s => `${s.status} ${s.error}`), [], 'no refused request was accepted (none has a row)')
  // B held every row of its life in memory (AUDIT_FLUSH_MS 60 s): none was written before the signal, all after.
  const bAnswered = all.filter(s => s.kind.startsWith('B') && s.status !== 0).length // this test's samples included
  t.equal(bRowsBeforeSignal, 0, 'none of B\'s rows was in the table before the signal')
  t.equal(await countB(), bAnswered, `all ${bAnswered} of B's rows are there after its exit: the shutdown flushed them`)
  const fig = figures(inFlight)
  report(t, 'shutdown', { requests: samples.length, in_flight_at_sigterm: inFlight.length, in_flight_max_ms: fig.max, after_signal: late, exit_ms: exitedAt - sigtermAt, exit_code: code, audit_rows: rows.length, answered: answered.length, rows_lost: answered.filter(s => !ids.has(s.requestId)).length })
})

t.test('every request either process answered has exactly one audit row, with its status', async t => {
  const answered = all.filter(s => s.status !== 0)
  const ids = answered.map(s => s.requestId)
  const rowsFor = async () => await db.selectFrom('mcp_access_log').select([clientRequestId.as('request_id'), 'status_code']).where(clientRequestId, 'in', ids).execute()
  t.ok(await eventually(async () => (await rowsFor()).length >= ids.length, 10_000), 'all landed')
  const rows = await rowsFor()
  t.equal(rows.length, ids.length, `${rows.length} rows for ${ids.length} answered requests`)
  const status = new Map(rows.map(r => [r.request_id, r.status_code]))
  t.same(answered.filter(s => status.get(s.requestId) !== s.status).map(s => s.requestId), [], 'each with its status')
})

t.test('no plaintext token or session in any table, log line or error body', async t => {
  const scan = await scanDatabase(db, [...jwts, ...tokens])
  t.same(scan.leaks, [], `${scan.columns} text columns of ${scan.tables} tables scanned`)
  t.same([...scanText('A', A.output(), jwts), ...scanText('B', B.output(), jwts)], [], 'neither process logged one')
  t.same(all.filter(s => !s.body.includes('"token":"ib_mcp_')).flatMap(s => scanText(s.requestId, s.body, jwts)), [], `none in ${all.length} response bodies (the 201s that mint a token aside)`)
  t.ok(tokens.length > 0)
})
