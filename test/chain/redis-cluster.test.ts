// SPEC §4 on a real Redis Cluster (three masters of the test's own, test/helpers/redis-cluster.ts), not a plain client
// flagged as one: the limiter through createRedisClusterClient with users' buckets on every node; two gateway
// processes started with REDIS_CLUSTER=true sharing each user's budget exactly; then one master killed — the
// budgets on its slots fail open (every request answered, counted), the budgets on the other two still hold.
import t from 'tap'
import { once } from 'node:events'
import { randomUUID } from 'node:crypto'
import { budgetKey } from '../../core/budget.js'
import { createRedisClusterClient, RedisSlidingWindow } from '../../core/limiter.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { API, bearer, metricIn } from '../helpers/chain.js'
import { createTestDatabase } from '../helpers/db.js'
import { send, spawnGateway, tally, type GatewayProcess, type Sample } from '../helpers/faults.js'
import { sharedInfraboxKeys, signInfraboxSession } from '../helpers/infrabox.js'
import { RedisClusterServer } from '../helpers/redis-cluster.js'

const PREFIX = 'ib_mcp_rl' // the gateway's own: the cluster is this test's alone
const LIMIT = 4
const cluster = await RedisClusterServer.start(t)
const database = await createTestDatabase(t)
await seedFixture(database.db)
const db = database.db
const { projects: P } = FIXTURE

/** A user id whose list_projects bucket lives on node `node`. */
async function userOn (node: number): Promise<string> {
  for (;;) {
    const id = randomUUID()
    if (await cluster.nodeOf(budgetKey(PREFIX, id, 'list_projects')) === node) return id
  }
}

async function addUserOn (node: number): Promise<string> {
  const id = await userOn(node)
  await db.insertInto('user').values({ id, username: `cluster-${id.slice(0, 8)}` }).execute()
  await db.insertInto('collaborator').values({ user_id: id, project_id: P.github, role: 'Developer' }).execute()
  return id
}

const keys = sharedInfraboxKeys()
const common = {
  DATABASE_URL: database.url,
  REDIS_URL: cluster.urls,
  REDIS_CLUSTER: 'true',
  INFRABOX_RSA_PUBLIC_KEY_PATH: keys.spkiPath,
  MIGRATE_ON_START: 'false',
  LOG_LEVEL: 'warn',
  AUDIT_FLUSH_MS: '20',
  MCP_RATE_LIMIT_DEFAULT_RPM: String(LIMIT),
  // exact counts must not fail open on a busy machine; the dead node's hits fail well within it (measured below)
  RATE_LIMIT_REDIS_TIMEOUT_MS: '2000'
}
// started with the file, before any subtest: tap ends a file whose queued subtests are done while it still awaits
const [A, B] = await Promise.all([
  spawnGateway(t, 'test/helpers/gateway-process.ts', common),
  spawnGateway(t, 'test/helpers/gateway-process.ts', common)
]) as [GatewayProcess, GatewayProcess]

t.test('the limiter on the cluster client: exact budgets on every node, keys where their slot says', async t => {
  const client = createRedisClusterClient(cluster.urls)
  t.teardown(() => { client.disconnect() })
  if (client.status !== 'ready') await once(client, 'ready')
  t.equal(client.isCluster, true, 'an ioredis Cluster')
  const store = new RedisSlidingWindow(client, { timeoutMs: 2000 })
  for (const node of [0, 1, 2]) {
    const users = [await userOn(node), await userOn(node)]
    for (const user of users) {
      const key = budgetKey(PREFIX, user, 'list_projects')
      // all in one turn of the event loop: on a cluster each hit is its own call, routed by its key
      const decisions = await Promise.all(Array.from({ length: LIMIT + 3 }, async () => await store.hit(key, LIMIT, 60_000)))
      t.equal(decisions.filter(d => d.allowed).length, LIMIT, `node ${node}: exactly ${LIMIT} of ${LIMIT + 3} allowed`)
      const direct = cluster.node(node)
      try {
        t.equal(await direct.llen(key), LIMIT, `node ${node}: the window is a list on the node that owns its slot`)
      } finally {
        direct.disconnect()
      }
    }
    // one user's buckets share a slot through the hash tag: one peek call reads them all
    const readings = await store.peek(['list_projects', 'get_job_log', 'trigger_build'].map(b => ({ key: budgetKey(PREFIX, users[0] ?? '', b), limit: LIMIT, windowMs: 60_000 })))
    t.same(readings.map(r => r.remaining), [0, LIMIT, LIMIT], `node ${node}: peek over three buckets of one user`)
  }
})

interface User { node: number, id: string, token: string }
async function userWithToken (node: number): Promise<User> {
  const id = await addUserOn(node)
  const made = await send(A.base, { method: 'POST', path: `${API}/tokens/`, headers: bearer(signInfraboxSession(keys.privatePath, id)), body: JSON.stringify({ name: 'cluster' }) })
  if (made.status !== 201) throw new Error(`token not created: ${made.status} ${made.body}`)
  return { node, id, token: (JSON.parse(made.body) as { token: string }).token }
}

/** `n` requests of each user at once, alternating between the two processes. */
async function spend (users: readonly User[], n: number): Promise<Map<User, Sample[]>> {
  const out = new Map<User, Sample[]>()
  await Promise.all(users.map(async u => {
    out.set(u, await Promise.all(Array.from({ length: n }, async (_v, i) =>
      await send([A, B][i % 2]?.base ?? '', { method: 'GET', path: `${API}/projects`, headers: bearer(u.token) }))))
  }))
  return out
}

const failOpen = async (g: GatewayProcess): Promise<number> =>
  metricIn((await send(g.base, { method: 'GET', path: '/metrics' })).body, 'mcp_ratelimit_fail_open_total')

t.test('two gateway processes with REDIS_CLUSTER=true share every user\'s budget exactly', async t => {
  for (const g of [A, B]) {
    const ready = JSON.parse((await send(g.base, { method: 'GET', path: '/readyz' })).body) as { redis: string }
    for (let i = 0; i < 100 && ready.redis !== 'ok'; i++) {
      await new Promise(resolve => setTimeout(resolve, 50))
      Object.assign(ready, JSON.parse((await send(g.base, { method: 'GET', path: '/readyz' })).body))
    }
    t.equal(ready.redis, 'ok', '/readyz: the cluster limiter is ok')
  }
  const users = await Promise.all([0, 0, 1, 1, 2, 2].map(async node => await userWithToken(node)))
  const answers = await spend(users, 3 * LIMIT)
  for (const u of users) {
    const mine = answers.get(u) ?? []
    t.same(tally(mine), { 200: LIMIT, 429: 2 * LIMIT }, `user on node ${u.node}: ${LIMIT} allowed of ${mine.length} sent to both processes`)
    const direct = cluster.node(u.node)
    try {
      t.equal(await direct.llen(budgetKey(PREFIX, u.id, 'list_projects')), LIMIT, `node ${u.node}: one window for both processes`)
    } finally {
      direct.disconnect()
    }
  }
  const me = JSON.parse((await send(B.base, { method: 'GET', path: `${API}/me`, headers: bearer(users[0]?.token ?? '') })).body) as { buckets: Record<string, { remaining: number | null }> }
  t.equal(me.buckets.list_projects?.remaining, 0, 'GET /me reads the spent budget from the cluster (peek)')
  t.equal(await failOpen(A) + await failOpen(B), 0, 'nothing failed open')
})

t.test('one master killed: its budgets fail open, the other masters\' budgets still hold', async t => {
  const DEAD = 1
  const users = await Promise.all([0, 1, 1, 2].map(async node => await userWithToken(node)))
  const openBefore = await failOpen(A) + await failOpen(B)
  await cluster.kill(DEAD)
  await cluster.failureAgreed(DEAD) // the other masters flag it failed and keep serving their own slots
  t.pass(`node ${DEAD} killed and flagged failed by the others`)
  const answers = await spend(users, LIMIT + 3)
  let failedOpen = 0
  for (const u of users) {
    const mine = answers.get(u) ?? []
    if (u.node === DEAD) {
      t.same(tally(mine), { 200: LIMIT + 3 }, `user on the dead node: all ${LIMIT + 3} answered (fail-open)`)
      t.ok(mine.every(s => s.headers.ratelimit === undefined), 'no RateLimit headers from a limiter that could not decide')
      failedOpen += mine.length
    } else {
      t.same(tally(mine), { 200: LIMIT, 429: 3 }, `user on live node ${u.node}: still exactly ${LIMIT} allowed`)
    }
  }
  t.equal(await failOpen(A) + await failOpen(B) - openBefore, failedOpen, 'mcp_ratelimit_fail_open_total rose by one per request on the dead node')
  const slowest = Math.max(...users.filter(u => u.node === DEAD).flatMap(u => (answers.get(u) ?? []).map(s => s.ms)))
  t.comment(`slowest fail-open answer on the dead node: ${slowest.toFixed(0)} ms (deadline ${common.RATE_LIMIT_REDIS_TIMEOUT_MS} ms)`)
})
