// SPEC §8: the gateway as a guest in a realistic host gateway. The host registers @fastify/postgres, @fastify/redis,
// @fastify/rate-limit (once `global: true`, once `global: false`), @fastify/cookie and its own auth, then the guard and
// `mcpGateway` with only a `prefix`: the gateway takes the host's pool and Redis client, its routes keep its own
// per-user limits (the host's limiter never counts or refuses them), and the host's routes keep working.
import t, { type Test } from 'tap'
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import fastifyPostgres from '@fastify/postgres'
import fastifyRedis from '@fastify/redis'
import fastifyRateLimit from '@fastify/rate-limit'
import fastifyCookie from '@fastify/cookie'
import { randomUUID } from 'node:crypto'
import { exportSPKI, generateKeyPair } from 'jose'
import { mcpGateway, mcpTokenGuard, signSession } from '../../index.js'
import { createTestDatabase, eventually } from '../helpers/db.js'
import { deleteKeys, TEST_REDIS_URL } from '../helpers/app.js'
import { seedFixture, FIXTURE } from '../../db/seed.js'

process.env.FASTIFY_AUTOLOAD_TYPESCRIPT = '1'

const database = await createTestDatabase(t)
await seedFixture(database.db)

// InfraBox's session key, as a host running beside InfraBox has it in its environment; the gateway reads it there.
const pair = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })
process.env.SESSION_JWT_PUBLIC_KEY = await exportSPKI(pair.publicKey)
for (const k of ['MCP_RATE_LIMIT_DEFAULT_RPM', 'PUBLIC_BASE_URL']) Reflect.deleteProperty(process.env, k)

const HOST_MAX = 5 // the host's own per-address limit, far below the gateway's 30 per user and bucket
const GATEWAY_RPM = 30 // MCP_RATE_LIMIT_DEFAULT_RPM's default

/** A user of this test alone: the gateway's limiter keys (default prefix) hold the user id, so no other test shares them. */
async function newUser (): Promise<string> {
  const id = randomUUID()
  await database.db.insertInto('user').values({ id, username: `host-${id.slice(0, 8)}`, name: 'Host User', email: `${id}@host.local` }).execute()
  await database.db.insertInto('collaborator').values([
    { user_id: id, project_id: FIXTURE.projects.github, role: 'Owner' },
    { user_id: id, project_id: FIXTURE.projects.upload, role: 'Developer' }
  ]).execute()
  t.teardown(async () => { await deleteKeys(`ib_mcp_rl:{${id}}`) })
  return id
}

/** The host: its plugins, its own cookie session and error format, its routes; then the guard and the gateway. */
async function buildHost (t: Test, global: boolean): Promise<FastifyInstance> {
  const host = Fastify({ logger: false })
  await host.register(fastifyPostgres, { connectionString: database.url, max: 4 })
  await host.register(fastifyRedis, { url: TEST_REDIS_URL })
  await host.register(fastifyRateLimit, { global, max: HOST_MAX, timeWindow: '1 minute' })
  await host.register(fastifyCookie)
  host.setErrorHandler((err: FastifyError, _req, reply) => { void reply.code(err.statusCode ?? 500).send({ hostError: err.message }) })

  await host.register(async function hostRoutes (scope) {
    // the host's own auth: its session cookie, parsed by @fastify/cookie, on its own routes
    scope.addHook('onRequest', async (request, reply) => {
      if (request.url === '/health') return
      if (request.cookies.host_session !== 'valid') await reply.code(401).send({ hostError: 'log in' })
    })
    // a route of the host, limited by its limiter (under global: false only because it asks to be)
    scope.get('/api/v1/projects', { config: { rateLimit: { max: HOST_MAX, timeWindow: '1 minute' } } }, async () => ({ host: 'projects' }))
    scope.get('/health', async () => ({ host: 'ok' }))
  })

  // every route the gateway adds carries @fastify/rate-limit's opt-out (a route without it would be the host's to limit)
  const gatewayRoutes: Array<{ route: string, optOut: unknown }> = []
  host.addHook('onRoute', (route) => {
    if (route.url.startsWith('/api/v1/mcp')) gatewayRoutes.push({ route: `${String(route.method)} ${route.url}`, optOut: Reflect.get(route.config ?? {}, 'rateLimit') })
  })
  await host.register(mcpTokenGuard)
  await host.register(mcpGateway, { prefix: '/api/v1/mcp' })
  await host.ready()
  t.ok(gatewayRoutes.length > 20, `${gatewayRoutes.length} gateway routes`)
  t.same(gatewayRoutes.filter(r => r.optOut !== false), [], 'each with config.rateLimit: false')
  t.teardown(async () => { await host.close() })
  return host
}

const hostHeaders = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']

for (const global of [true, false]) {
  t.test(`host with @fastify/rate-limit global: ${global}`, async t => {
    const host = await buildHost(t, global)
    const userId = await newUser()
    const session = await signSession(pair.privateKey, userId)

    t.test('the host keeps its routes, its auth and its limiter', async t => {
      t.same((await host.inject({ method: 'GET', url: '/health' })).json(), { host: 'ok' })
      t.equal((await host.inject({ method: 'GET', url: '/api/v1/projects' })).statusCode, 401)
      const cookies = { host_session: 'valid' }
      // (the 401 above did not count: the host's auth hook is the scope's, its limiter the route's, which runs after)
      for (let i = 1; i <= HOST_MAX; i++) {
        const res = await host.inject({ method: 'GET', url: '/api/v1/projects', cookies })
        t.same(res.json(), { host: 'projects' })
        t.equal(res.headers['x-ratelimit-limit'], String(HOST_MAX), 'the host limiter\'s headers on the host\'s route')
      }
      const refused = await host.inject({ method: 'GET', url: '/api/v1/projects', cookies })
      t.equal(refused.statusCode, 429, 'the host limiter refuses the host\'s route past its max')
    })

    let token = ''
    t.test('token administration: the InfraBox session (key from the environment) over the host\'s pool, the cookie parsed by the host too', async t => {
      const created = await host.inject({ method: 'POST', url: '/api/v1/mcp/tokens/', headers: { authorization: `Bearer ${session}` }, payload: { name: 'host agent' } })
      t.equal(created.statusCode, 201)
      token = created.json().token
      for (let i = 0; i < HOST_MAX + 2; i++) {
        const list = await host.inject({ method: 'GET', url: '/api/v1/mcp/tokens/', cookies: { token: session } })
        t.equal(list.statusCode, 200, `token list ${i + 1}: not limited by the host`)
        t.equal(list.json().length, 1)
        for (const h of hostHeaders) t.notOk(h in list.headers, `no ${h} on a gateway route the gateway does not limit`)
      }
      t.equal((await host.inject({ method: 'GET', url: '/api/v1/mcp/tokens' })).statusCode, 401)
      for (let i = 0; i < HOST_MAX + 2; i++) {
        const doc = await host.inject({ method: 'GET', url: '/api/v1/mcp/openapi.json' })
        t.equal(doc.statusCode, 200)
        t.notOk('x-ratelimit-limit' in doc.headers)
      }
    })

    t.test('the chain: the gateway\'s own per-user limit in the host\'s Redis; the host limiter never counts or refuses', async t => {
      const auth = { authorization: `Bearer ${token}` }
      for (let i = 1; i <= GATEWAY_RPM; i++) {
        const res = await host.inject({ method: 'GET', url: '/api/v1/mcp/projects', headers: auth })
        t.equal(res.statusCode, 200, `call ${i} served`)
        t.equal(res.headers['x-ratelimit-limit'], String(GATEWAY_RPM), 'the gateway\'s limit in the headers, not the host\'s')
        t.equal(res.headers['x-ratelimit-remaining'], String(GATEWAY_RPM - i))
      }
      const refused = await host.inject({ method: 'GET', url: '/api/v1/mcp/projects', headers: auth })
      t.equal(refused.statusCode, 429, `call ${GATEWAY_RPM + 1} refused`)
      t.equal(refused.json().code, 'MCP_RATE_LIMITED', 'by the gateway (its error body and code), not by the host plugin')
      t.ok(refused.headers['retry-after'] !== undefined)
      // the window lives in the host's Redis (fastify.redis), under the gateway's key of this user's bucket
      const hits = await host.redis.llen(`ib_mcp_rl:{${userId}}:list_projects`)
      t.equal(hits, GATEWAY_RPM, 'the gateway\'s window in the host\'s Redis holds the served calls')
      // another bucket of the same user is untouched by the spent one, and the chain's other checks go on
      const builds = await host.inject({ method: 'GET', url: `/api/v1/mcp/projects/${FIXTURE.projects.github}/builds`, headers: auth })
      t.equal(builds.statusCode, 200)
      const other = await host.inject({ method: 'GET', url: `/api/v1/mcp/projects/${FIXTURE.projects.public}/builds`, headers: auth })
      t.equal(other.statusCode, 403)
      t.equal(other.json().code, 'MCP_PROJECT_FORBIDDEN', 'gateway errors keep the gateway format inside its prefix')
    })

    t.test('the guard refuses MCP tokens on the host\'s routes, audited through the host\'s pool', async t => {
      for (const headers of [{ authorization: `Bearer ${token}` }, { cookie: `token=${token}; host_session=valid` }]) {
        const res = await host.inject({ method: 'GET', url: '/health', headers })
        t.equal(res.statusCode, 403)
        t.equal(res.json().code, 'MCP_FORBIDDEN_PATH')
      }
      const forbidden = database.db.selectFrom('mcp_access_log').select('token_id').where('action', '=', 'forbidden_path').where('token_id', '=', token.slice(7, 23))
      t.ok(await eventually(async () => (await forbidden.execute()).length === 2), 'two audit rows, written off the request path')
    })
  })
}
