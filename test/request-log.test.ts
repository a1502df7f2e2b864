// The service's request log: one line per request at info, none for routes logged at warn, tokens never in it.
import t from 'tap'
import { FIXTURE, seedFixture } from '../db/seed.js'
import { buildApp } from './helpers/app.js'
import { API, bearer, createToken } from './helpers/chain.js'

const lines: Array<Record<string, unknown>> = []
const logStream = { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } }
const { app, session } = await buildApp(t, { env: { LOG_LEVEL: 'info' }, seed: async ({ db }) => { await seedFixture(db) }, logStream })
const { token } = await createToken(app, await session(FIXTURE.users.demo))

t.test('each request is one line when its answer is sent', async t => {
  lines.length = 0
  const ok = await app.inject({ method: 'GET', url: `${API}/projects/${FIXTURE.projects.github}/builds?limit=2`, headers: bearer(token) })
  t.equal(ok.statusCode, 200)
  const refused = await app.inject({ method: 'GET', url: `${API}/projects?token=${token}`, headers: bearer('ib_mcp_not-a-real-token') })
  t.equal(refused.statusCode, 401)
  const health = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(health.statusCode, 200)

  const requests = lines.filter(l => l.req !== undefined || l.res !== undefined)
  t.equal(requests.length, 2, 'one line for each gateway request, none for /healthz (logged at warn)')
  t.same(requests.map(l => l.msg), ['request completed', 'request completed'])
  t.same(requests.map(l => (l.res as { statusCode: number }).statusCode), [200, 401])
  t.match(requests[0], { req: { method: 'GET', url: `${API}/projects/${FIXTURE.projects.github}/builds?limit=2` }, responseTime: Number })
  const text = JSON.stringify(lines)
  t.notOk(text.includes(token), 'the token is in no line (header redacted, URL masked)')
  t.notOk(text.includes('incoming request'), 'no second line per request')
})
