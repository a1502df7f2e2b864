// SPEC §8: the gateway and its guard registered into a host Fastify app with its own routes and auth.
import t from 'tap'
import Fastify, { type FastifyError } from 'fastify'
import { randomUUID } from 'node:crypto'
import { mcpGateway, mcpTokenGuard, createRedisClient } from '../../index.js'
import { createTestDatabase, eventually } from '../helpers/db.js'
import { deleteKeys, TEST_REDIS_URL } from '../helpers/app.js'
import { seedFixture, FIXTURE } from '../../db/seed.js'

process.env.FASTIFY_AUTOLOAD_TYPESCRIPT = '1'

const database = await createTestDatabase(t)
await seedFixture(database.db)
const redis = createRedisClient(TEST_REDIS_URL)
const prefix = `test_host_${process.pid}_${randomUUID().slice(0, 8)}`

// The host: its own session scheme (a header), its own error format, its own routes.
const host = Fastify({ logger: false })
host.setErrorHandler((err: FastifyError, _req, reply) => { void reply.code(err.statusCode ?? 500).send({ hostError: err.message }) })
const hostUser = (headers: Record<string, string | string[] | undefined>): string | null => {
  const v = headers['x-host-user']
  return typeof v === 'string' ? v : null
}
host.get('/api/v1/projects', async (request, reply) => {
  if (hostUser(request.headers) === null) return await reply.code(401).send({ hostError: 'log in' })
  return { host: 'projects' }
})
host.get('/health', async () => ({ host: 'ok' }))

await host.register(mcpTokenGuard)
await host.register(mcpGateway, {
  prefix: '/api/v1/mcp',
  db: database.db,
  redis,
  authenticateSession: async (request) => {
    const id = hostUser(request.headers)
    return id === null ? null : { id }
  },
  limits: { default: 100 },
  limiterKeyPrefix: prefix
})
await host.ready()
t.teardown(async () => {
  await host.close()
  await deleteKeys(prefix)
  redis.disconnect()
})

const asDemo = { 'x-host-user': FIXTURE.users.demo }

t.test('the host keeps its routes and its auth', async t => {
  t.same((await host.inject({ method: 'GET', url: '/health' })).json(), { host: 'ok' })
  t.equal((await host.inject({ method: 'GET', url: '/api/v1/projects' })).statusCode, 401)
  t.same((await host.inject({ method: 'GET', url: '/api/v1/projects', headers: asDemo })).json(), { host: 'projects' })
})

let token = ''
t.test('token administration through the host\'s authenticateSession, dashboard trailing slash', async t => {
  const created = await host.inject({ method: 'POST', url: '/api/v1/mcp/tokens/', headers: asDemo, payload: { name: 'host agent' } })
  t.equal(created.statusCode, 201)
  token = created.json().token
  t.equal((await host.inject({ method: 'GET', url: '/api/v1/mcp/tokens/', headers: asDemo })).json().length, 1)
  t.equal((await host.inject({ method: 'GET', url: '/api/v1/mcp/tokens' })).statusCode, 401)
})

t.test('the chain serves MCP tokens under the prefix', async t => {
  const res = await host.inject({ method: 'GET', url: '/api/v1/mcp/projects', headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200)
  t.ok(res.json().items.length > 0)
  t.equal(res.headers['x-ratelimit-limit'], '100')
  const refused = await host.inject({ method: 'GET', url: `/api/v1/mcp/projects/${FIXTURE.projects.public}`, headers: { authorization: `Bearer ${token}` } })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'MCP_PROJECT_FORBIDDEN', 'gateway errors keep the gateway format inside its prefix')
})

t.test('the guard refuses MCP tokens on the host\'s routes, audited', async t => {
  for (const headers of [{ authorization: `Bearer ${token}` }, { authorization: `token ${token}`, ...asDemo }, { cookie: `token=${token}` }]) {
    const res = await host.inject({ method: 'GET', url: '/api/v1/projects', headers })
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'MCP_FORBIDDEN_PATH')
  }
  t.equal((await host.inject({ method: 'GET', url: '/health', headers: { authorization: `Bearer ${token}` } })).statusCode, 403)
  t.equal((await host.inject({ method: 'GET', url: '/api/v1/mcp/tokens', headers: { authorization: `Bearer ${token}` } })).statusCode, 403)
  const forbidden = database.db.selectFrom('mcp_access_log').select(['action', 'path', 'token_id']).where('action', '=', 'forbidden_path')
  t.ok(await eventually(async () => (await forbidden.execute()).length === 5), 'five audit rows, written off the request path')
  const rows = await forbidden.execute()
  t.ok(rows.every(r => r.token_id === token.slice(7, 23)))
})
