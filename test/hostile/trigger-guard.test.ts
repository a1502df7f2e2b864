// SPEC §13.10 and §13.11: trigger_build refuses environment names that steer InfraBox or the process (REST and MCP),
// fails closed while the limiter cannot answer, and a malformed URL in the configuration is never printed with its password.
import t from 'tap'
import { buildApp } from '../helpers/app.js'
import { API, assertError, bearer, createToken } from '../helpers/chain.js'
import { freePort, report } from '../helpers/faults.js'
import { post } from '../helpers/mcp.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { ConfigError, loadConfig } from '../../config.js'

const { projects: P, users: U } = FIXTURE
const FORBIDDEN = ['INFRABOX_JOB_ID', 'infrabox_root_url', 'LD_PRELOAD', 'ld_library_path', 'DYLD_INSERT_LIBRARIES', 'PATH', 'Path', 'NODE_OPTIONS', 'HTTP_PROXY', 'https_proxy', 'NO_PROXY', 'ALL_PROXY', 'GIT_SSH_COMMAND', 'GIT_CONFIG_PARAMETERS']

t.test('§13.10: forbidden env names are 422 MCP_ENV_FORBIDDEN over REST and an isError over MCP; others still build', async t => {
  const { app, database, session } = await buildApp(t, { limits: { trigger: 1000 }, seed: async ({ db }) => { await seedFixture(db) } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const endpoint = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}${API}`
  const made = await createToken(app, await session(U.demo), { name: 'trigger env', allow_trigger: true })
  const h = bearer(made.token)
  const builds = async (): Promise<number> => Number((await database.db.selectFrom('build').select(eb => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n)
  const before = await builds()
  for (const name of FORBIDDEN) {
    const res = await app.inject({ method: 'POST', url: `${API}/projects/${P.github}/trigger`, headers: h, payload: { branch: 'main', env: { OK_NAME: '1', [name]: 'x' } } })
    assertError(t, res, 422, 'MCP_ENV_FORBIDDEN', `REST env ${name}`)
    t.match(res.json().message, name, `${name}: named in the message`)
  }
  const idem = await app.inject({ method: 'POST', url: `${API}/projects/${P.github}/trigger`, headers: { ...h, 'idempotency-key': 'k1' }, payload: { branch: 'main', env: { LD_PRELOAD: '/tmp/x.so' } } })
  assertError(t, idem, 422, 'MCP_ENV_FORBIDDEN', 'with an Idempotency-Key')
  const mcp = await post(endpoint, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'trigger_build', arguments: { projectId: P.github, branch: 'main', env: { INFRABOX_GIT_URL: 'https://evil.example/repo.git' } } } }, { ...h, 'mcp-protocol-version': '2025-11-25' })
  const result = (mcp.messages[0] as { result?: { isError?: boolean, content?: Array<{ text?: string }> } } | undefined)?.result
  t.equal(result?.isError, true, 'MCP trigger_build with INFRABOX_GIT_URL: isError')
  t.match(result?.content?.[0]?.text ?? '', /MCP_ENV_FORBIDDEN/, 'MCP: the refusal names its code')
  t.equal(await builds(), before, 'no build was started by any of them')
  const fine = await app.inject({ method: 'POST', url: `${API}/projects/${P.github}/trigger`, headers: h, payload: { branch: 'main', env: { GREETING: 'hi', MY_PATH_PREFIX: '/x', PROXY_MODE: 'off', GITHUB_SHA_HINT: 'x' } } })
  t.equal(fine.statusCode, 201, 'ordinary names (even ones containing PATH, PROXY or GIT) build')
})

t.test('§13.10: trigger fails closed (503 + Retry-After) while the limiter cannot answer; reads fail open', async t => {
  const deadRedis = `redis://127.0.0.1:${await freePort()}` // nothing listens there
  const { app, session } = await buildApp(t, { env: { REDIS_URL: deadRedis }, seed: async ({ db }) => { await seedFixture(db) } })
  const made = await createToken(app, await session(U.demo), { name: 'closed', allow_trigger: true })
  const h = bearer(made.token)
  const read = await app.inject({ method: 'GET', url: `${API}/projects`, headers: h })
  t.equal(read.statusCode, 200, 'a read goes on (fail-open)')
  let refused = 0
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ method: 'POST', url: `${API}/projects/${P.github}/trigger`, headers: h, payload: { branch: 'main' } })
    assertError(t, res, 503, 'MCP_UNAVAILABLE', `trigger ${i + 1}`)
    t.match(String(res.headers['retry-after']), /^\d+$/, 'Retry-After in whole seconds')
    if (res.statusCode === 503) refused++
  }
  report(t, 'trigger while the limiter is down', { attempts: 3, refused503: refused })
})

t.test('§13.11: a malformed REDIS_URL or DATABASE_URL is reported without its password', async t => {
  const cases: Array<Record<string, string>> = [
    { REDIS_URL: 'redis//user:s3cretpw@redis.internal:6379' },
    { REDIS_URL: 'redis://:s3cretpw@redis internal:6379' },
    { DATABASE_URL: 'postgres://infrabox:s3cretpw@db host:5432/infrabox' },
    { DATABASE_URL: 'postgresql:/infrabox:s3cretpw@db.internal/infrabox' },
    { DATABASE_URL: 'postgres://infrabox:s3c/ret@pw@db.internal:notaport/infrabox' },
    { DATABASE_URL: 'mysql://root:s3cretpw@db.internal/x' }
  ]
  for (const env of cases) {
    let message = ''
    try { loadConfig(env) } catch (err) { if (err instanceof ConfigError) message = err.message }
    const [name] = Object.keys(env)
    t.match(message, new RegExp(`^invalid configuration: ${name ?? ''} `), `${JSON.stringify(env).replace(/s3c[^@]*/, '…')}: refused with one line naming the variable`)
    t.notMatch(message, /s3c/, 'the password is not in it')
    t.match(message, /\[redacted\]@/, 'the userinfo is marked redacted')
  }
})
