// Two gateway processes on one Redis and one database: one shared budget, revocation and PATCH seen by the other replica on its next request.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { createTestDatabase, eventually } from '../helpers/db.js'
import { tsxArgs } from '../helpers/coverage.js'
import { deleteKeys, TEST_REDIS_URL } from '../helpers/app.js'
import { API, addUser, bearer, redisClient, RELAXED_LIMITER } from '../helpers/chain.js'
import { sharedInfraboxKeys, signInfraboxSession } from '../helpers/infrabox.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { budgetKey } from '../../core/budget.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const script = fileURLToPath(new URL('../helpers/gateway-process.ts', import.meta.url))
const LIMIT = 10

const database = await createTestDatabase(t)
await seedFixture(database.db)
const db = database.db
const { projects: P } = FIXTURE
const keys = sharedInfraboxKeys() // openssl's key files; sessions signed by node:crypto (test/helpers/infrabox.ts)
const keyPrefix = `test_rl_replicas_${process.pid}_${randomBytes(4).toString('hex')}`
t.teardown(async () => { await deleteKeys(keyPrefix) })

interface Replica { name: string, base: string, child: ChildProcess }

async function startReplica (name: string): Promise<Replica> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    INFRABOX_RSA_PUBLIC_KEY_PATH: keys.pkcs1Path, // InfraBox's id_rsa.pub as PKCS#1
    TEST_LIMITER_KEY_PREFIX: keyPrefix,
    MIGRATE_ON_START: 'false',
    LOG_LEVEL: 'warn',
    AUDIT_FLUSH_MS: '20',
    MCP_RATE_LIMIT_DEFAULT_RPM: String(LIMIT),
    ...RELAXED_LIMITER,
    FASTIFY_AUTOLOAD_TYPESCRIPT: '1'
  }
  delete env.NODE_OPTIONS // tap's own loaders are not for the child
  const child = spawn(process.execPath, [...tsxArgs(), script], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stderr?.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  // Teardowns run last-in, first-out: the replicas stop (flushing their audit rows) before the database is dropped.
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
  })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 90 s:\n${output}`)), 90_000)
    let stdout = ''
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString()
      const m = /listening (\d+)/.exec(stdout)
      if (m !== null) { clearTimeout(timer); resolve(Number(m[1])) }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`${name} exited (${String(code)}):\n${output}`)) })
  })
  return { name, base: `http://127.0.0.1:${port}`, child }
}

const [A, B] = await Promise.all([startReplica('A'), startReplica('B')]) as [Replica, Replica]
t.not(A.child.pid, B.child.pid, 'two OS processes')

interface Reply { status: number, body: any }
async function request (r: Replica, method: string, path: string, headers: Record<string, string>, body?: object): Promise<Reply> {
  const res = await fetch(`${r.base}${path}`, {
    method,
    headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {})
  })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch { /* not JSON */ }
  return { status: res.status, body: parsed }
}

/** A user of its own (own buckets), its session, and a token made through replica `via`. */
async function userWithToken (via: Replica, tokenBody: object = {}): Promise<{ userId: string, jwt: string, token: string, tokenId: string }> {
  const userId = await addUser(db, [P.github, P.upload, P.gerrit])
  const jwt = signInfraboxSession(keys.privatePath, userId)
  const made = await request(via, 'POST', `${API}/tokens/`, bearer(jwt), { name: 'replica test', ...tokenBody })
  if (made.status !== 201) throw new Error(`token not created: ${made.status} ${JSON.stringify(made.body)}`)
  return { userId, jwt, token: made.body.token, tokenId: made.body.token_id }
}

t.test('both replicas are up on one Redis', async t => {
  for (const r of [A, B]) {
    const ready = await request(r, 'GET', '/readyz', {})
    t.match(ready, { status: 200, body: { database: 'ok', redis: 'ok' } }, `${r.name} ready`)
  }
})

t.test('one budget across processes: concurrent requests at both, exactly the limit allowed', async t => {
  const u = await userWithToken(A)
  const replies = await Promise.all(Array.from({ length: 3 * LIMIT }, async (_, i) =>
    await request(i % 2 === 0 ? A : B, 'GET', `${API}/projects`, bearer(u.token))))
  const allowed = replies.filter(r => r.status === 200).length
  const refused = replies.filter(r => r.status === 429).length
  t.equal(allowed, LIMIT, `exactly ${LIMIT} allowed`)
  t.equal(refused, 2 * LIMIT, 'the rest refused')
  const redis = redisClient(t)
  t.equal(await redis.llen(budgetKey(keyPrefix, u.userId, 'list_projects')), LIMIT, 'one window in Redis')
  // Each process audits its own requests; all land in the one database.
  const landed = await eventually(async () => {
    const row = await db.selectFrom('mcp_access_log').select(eb => eb.fn.countAll<string>().as('n'))
      .where('user_id', '=', u.userId).where('action', '=', 'list_projects').executeTakeFirstOrThrow()
    return Number(row.n) === 3 * LIMIT
  })
  t.ok(landed, `${3 * LIMIT} audit rows from the two processes`)
})

t.test('a token revoked through A is refused by B on its very next request (B served it before)', async t => {
  for (let round = 0; round < 5; round++) {
    const u = await userWithToken(A)
    t.equal((await request(B, 'GET', `${API}/projects/${P.github}`, bearer(u.token))).status, 200, `round ${round}: B serves it`)
    t.equal((await request(B, 'GET', `${API}/projects/${P.github}`, bearer(u.token))).status, 200, `round ${round}: and again`)
    t.equal((await request(A, 'GET', `${API}/projects/${P.github}`, bearer(u.token))).status, 200, `round ${round}: A too`)
    const revoked = await request(A, 'DELETE', `${API}/tokens/${u.tokenId}`, bearer(u.jwt))
    t.equal(revoked.status, 200, `round ${round}: revoked through A`)
    const next = await request(B, 'GET', `${API}/projects/${P.github}`, bearer(u.token))
    t.equal(next.status, 401, `round ${round}: B refuses it on the next request`)
    t.equal(next.body.code, 'MCP_INVALID_TOKEN')
    t.equal((await request(A, 'GET', `${API}/projects/${P.github}`, bearer(u.token))).status, 401, `round ${round}: and A`)
  }
})

t.test('a PATCH narrowing the scope through A applies on B\'s next request; so does a trigger grant', async t => {
  const u = await userWithToken(A)
  const auth = bearer(u.token)
  for (let i = 0; i < 2; i++) t.equal((await request(B, 'GET', `${API}/projects/${P.upload}`, auth)).status, 200, 'B serves the upload project (scope {})')
  const patched = await request(A, 'PATCH', `${API}/tokens/${u.tokenId}`, bearer(u.jwt), { enabled_projects: { [P.github]: null } })
  t.equal(patched.status, 200, 'narrowed through A')
  const refused = await request(B, 'GET', `${API}/projects/${P.upload}`, auth)
  t.equal(refused.status, 403, 'B: out of scope now')
  t.equal(refused.body.code, 'MCP_PROJECT_FORBIDDEN')
  t.equal((await request(B, 'GET', `${API}/projects/${P.github}`, auth)).status, 200, 'B: still in scope')
  t.same((await request(B, 'GET', `${API}/projects`, auth)).body.items.map((p: { id: string }) => p.id), [P.github], 'B lists only the new scope')

  const denied = await request(B, 'POST', `${API}/projects/${P.github}/trigger`, auth, { branch: 'main' })
  t.equal(denied.body.code, 'MCP_TRIGGER_FORBIDDEN', 'B: no trigger right yet')
  t.equal((await request(A, 'POST', `${API}/tokens/${u.tokenId}/trigger`, bearer(u.jwt), {})).status, 200, 'granted through A')
  t.equal((await request(B, 'POST', `${API}/projects/${P.github}/trigger`, auth, { branch: 'main' })).status, 201, 'B: the next trigger passes')
})
