// Operations surface (SPEC §1): health, readiness, metrics, OpenAPI, body limit, trailing slashes, log redaction.
import t from 'tap'
import { once } from 'node:events'
import { buildApp } from './helpers/app.js'
import { seedFixture, FIXTURE } from '../db/seed.js'

const { app, session } = await buildApp(t, { seed: async ({ db }) => { await seedFixture(db) } })
const sessionJwt = await session(FIXTURE.users.demo)

t.test('healthz and readyz', async t => {
  t.same((await app.inject('/healthz')).json(), { status: 'ok' })
  // The Redis client connects in the background (nothing waits for it at start): /readyz reports what it sees now,
  // 'degraded' until the client's 'ready' event, 'ok' after it. Wait for the event, not for a guessed time.
  const redis = app.mcpGateway.redis
  if (redis === null) throw new Error('the test app has a Redis client')
  if (redis.status !== 'ready') await once(redis, 'ready')
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.match(ready.json(), { status: 'ready', database: 'ok', redis: 'ok' })
})

t.test('metrics in Prometheus format with the contract\'s names', async t => {
  await app.inject({ method: 'GET', url: '/api/v1/mcp/projects' }) // a 401, counted
  await app.mcpGateway.audit.flush()
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/plain/)
  for (const name of ['mcp_requests_total', 'mcp_ratelimit_fail_open_total', 'mcp_audit_buffer_depth', 'mcp_audit_rows_written_total', 'mcp_audit_rows_dropped_total', 'mcp_refusals_total']) {
    t.match(res.body, new RegExp(`^# TYPE ${name} `, 'm'), name)
  }
  t.match(res.body, /mcp_requests_total\{action="list_projects",outcome="unauthorized",via="rest"\} 1/)
})

t.test('OpenAPI document of every route, no token needed', async t => {
  const res = await app.inject('/api/v1/mcp/openapi.json')
  t.equal(res.statusCode, 200)
  const doc = res.json() as { openapi: string, paths: Record<string, Record<string, { operationId?: string }>> }
  t.match(doc.openapi, /^3\./)
  const ops = Object.values(doc.paths).flatMap(p => Object.values(p).map(o => o.operationId)).filter(Boolean)
  for (const name of ['list_projects', 'get_project', 'list_builds', 'get_build', 'list_jobs', 'get_job', 'list_test_runs', 'get_job_log', 'list_artifacts', 'get_artifact', 'trigger_build']) {
    t.ok(ops.includes(name), `${name} documented`)
  }
  t.ok(Object.keys(doc.paths).some(p => p.startsWith('/api/v1/mcp/tokens')), 'token routes documented')
})

t.test('bodies over 1 MiB are 413 JSON', async t => {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/mcp/tokens',
    headers: { authorization: `Bearer ${sessionJwt}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ name: 'x'.repeat(1024 * 1024 + 10) })
  })
  t.equal(res.statusCode, 413)
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'])
})

t.test('every route answers with or without a trailing slash', async t => {
  for (const url of ['/api/v1/mcp/tokens', '/api/v1/mcp/tokens/']) {
    t.equal((await app.inject({ url, headers: { authorization: `Bearer ${sessionJwt}` } })).statusCode, 200, url)
  }
  const token = (await app.inject({ method: 'POST', url: '/api/v1/mcp/tokens/', headers: { authorization: `Bearer ${sessionJwt}` }, payload: { name: 'slash' } })).json().token as string
  for (const url of [`/api/v1/mcp/projects/${FIXTURE.projects.github}/builds`, `/api/v1/mcp/projects/${FIXTURE.projects.github}/builds/`]) {
    t.equal((await app.inject({ url, headers: { authorization: `Bearer ${token}` } })).statusCode, 200, url)
  }
})

t.test('unknown routes are JSON 404s', async t => {
  const res = await app.inject('/nope')
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'MCP_NOT_FOUND')
})
