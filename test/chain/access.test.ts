// SPEC §4 "project access" and "trigger access" over HTTP: scope, per-project expiry, live collaborator rights (defect 1), 404 vs 403.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../helpers/app.js'
import { API, addUser, assertError, bearer, createToken, insertPythonToken, RELAXED_LIMITER, type Answer } from '../helpers/chain.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'

const { app, database, session } = await buildApp(t, {
  limits: { default: 1000, log: 1000, artifact: 1000, trigger: 1000 },
  env: { ...RELAXED_LIMITER },
  seed: async ({ db }) => { await seedFixture(db) }
})
const db = database.db
const { projects: P, jobs: J, builds: B } = FIXTURE
const demoSession = await session(FIXTURE.users.demo)

const get = async (url: string, token: string): Promise<Answer> => await app.inject({ method: 'GET', url: `${API}${url}`, headers: bearer(token) })
const trigger = async (projectId: string, token: string, body: object = { branch: 'main' }): Promise<Answer> =>
  await app.inject({ method: 'POST', url: `${API}/projects/${projectId}/trigger`, headers: bearer(token), payload: body })

/** One request of every project route, for a project and a job/build of it. */
const projectRoutes = (projectId: string, jobId: string, buildId: string): string[] => [
  `/projects/${projectId}`,
  `/projects/${projectId}/builds`,
  `/projects/${projectId}/builds/${buildId}`,
  `/projects/${projectId}/builds/${buildId}/jobs`,
  `/projects/${projectId}/jobs/${jobId}`,
  `/projects/${projectId}/jobs/${jobId}/testruns`,
  `/projects/${projectId}/jobs/${jobId}/log`,
  `/projects/${projectId}/jobs/${jobId}/artifacts`,
  `/projects/${projectId}/jobs/${jobId}/artifacts/download?filename=public.txt`
]
const listed = async (token: string): Promise<string[]> => ((await get('/projects?limit=100', token)).json().items as Array<{ id: string }>).map(p => p.id)

t.test('out of the token\'s scope: 403 MCP_PROJECT_FORBIDDEN on every project route and on trigger', async t => {
  const scoped = await createToken(app, demoSession, { enabled_projects: { [P.github]: null }, allow_trigger: true })
  t.equal((await get(`/projects/${P.github}`, scoped.token)).statusCode, 200, 'in scope')
  for (const url of projectRoutes(P.upload, J.uploadRun, B.upload1)) {
    assertError(t, await get(url, scoped.token), 403, 'MCP_PROJECT_FORBIDDEN', url)
  }
  assertError(t, await trigger(P.upload, scoped.token, {}), 403, 'MCP_PROJECT_FORBIDDEN', 'trigger out of scope (even with allow_trigger)')
  t.same(await listed(scoped.token), [P.github], 'list_projects shows only the scope')
  // Scope keys are stored lower-case; an upper-case id in the URL is the same project.
  t.equal((await get(`/projects/${P.github.toUpperCase()}`, scoped.token)).statusCode, 200, 'upper-case id in scope')
})

t.test('a project whose own expiry has passed is out of scope', async t => {
  const soon = new Date(Date.now() + 2500).toISOString() // room for a busy machine to create and use it first
  const token = await createToken(app, demoSession, { enabled_projects: { [P.github]: soon, [P.gerrit]: null } })
  t.equal((await get(`/projects/${P.github}`, token.token)).statusCode, 200, 'before its expiry')
  t.same((await listed(token.token)).sort(), [P.gerrit, P.github].sort())
  await sleep(Math.max(0, Date.parse(soon) - Date.now()) + 100)
  assertError(t, await get(`/projects/${P.github}`, token.token), 403, 'MCP_PROJECT_FORBIDDEN', 'after its expiry')
  assertError(t, await get(`/projects/${P.github}/builds`, token.token), 403, 'MCP_PROJECT_FORBIDDEN', 'builds after its expiry')
  t.equal((await get(`/projects/${P.gerrit}`, token.token)).statusCode, 200, 'the other project is unaffected')
  t.same(await listed(token.token), [P.gerrit], 'list_projects drops it too')
})

t.test('defect 1: a token never reaches a PUBLIC project its owner does not collaborate on', async t => {
  const all = await createToken(app, demoSession, { name: 'scope {}' })
  for (const url of projectRoutes(P.public, J.publicRun, B.public1)) {
    assertError(t, await get(url, all.token), 403, 'MCP_PROJECT_FORBIDDEN', `scope {}: ${url}`)
  }
  t.notOk((await listed(all.token)).includes(P.public), 'not listed')
  // A scope naming it cannot be created (the owner does not collaborate on it)...
  const refused = await app.inject({ method: 'POST', url: `${API}/tokens`, headers: bearer(demoSession), payload: { name: 'x', enabled_projects: { [P.public]: null } } })
  assertError(t, refused, 403, 'MCP_PROJECT_FORBIDDEN', 'creating a token scoped to it')
  // ...and one the Python layer stored without checking is still held to the owner's live rights.
  const legacy = await insertPythonToken(db, FIXTURE.users.demo, { enabledProjects: { [P.public]: null }, allowTrigger: true })
  for (const url of projectRoutes(P.public, J.publicRun, B.public1)) {
    assertError(t, await get(url, legacy), 403, 'MCP_PROJECT_FORBIDDEN', `python-layer scope naming it: ${url}`)
  }
  assertError(t, await trigger(P.public, legacy), 403, 'MCP_PROJECT_FORBIDDEN', 'trigger of it')
  t.same(await listed(legacy), [], 'list_projects: nothing')
})

t.test('rights are live: a collaborator removed after the token was made is refused on the next request', async t => {
  const user = await addUser(db, [P.github, P.gerrit])
  const jwt = await session(user)
  const token = await createToken(app, jwt, { enabled_projects: { [P.github]: null, [P.gerrit]: null }, allow_trigger: true })
  t.equal((await get(`/projects/${P.github}/builds`, token.token)).statusCode, 200, 'collaborator: allowed')
  t.equal((await get(`/projects/${P.github}/jobs/${J.compile}/log`, token.token)).statusCode, 200)
  await db.deleteFrom('collaborator').where('user_id', '=', user).where('project_id', '=', P.github).execute()
  for (const url of projectRoutes(P.github, J.compile, B.b1)) {
    assertError(t, await get(url, token.token), 403, 'MCP_PROJECT_FORBIDDEN', `removed: ${url}`)
  }
  assertError(t, await trigger(P.github, token.token), 403, 'MCP_PROJECT_FORBIDDEN', 'removed: trigger')
  t.same(await listed(token.token), [P.gerrit], 'list_projects follows')
  t.equal((await get(`/projects/${P.gerrit}`, token.token)).statusCode, 200, 'still a collaborator of the other')
  // Made a collaborator again: allowed again, at once.
  await db.insertInto('collaborator').values({ user_id: user, project_id: P.github }).execute()
  t.equal((await get(`/projects/${P.github}`, token.token)).statusCode, 200, 'rights restored')
})

t.test('in scope but no such project: 404; out of scope: 403 without saying whether it exists', async t => {
  const all = await createToken(app, demoSession, { name: 'scope {} for 404' })
  const missing = randomUUID()
  for (const url of projectRoutes(missing, randomUUID(), randomUUID())) {
    assertError(t, await get(url, all.token), 404, 'MCP_NOT_FOUND', `scope {}: ${url}`)
  }
  const scoped = await createToken(app, demoSession, { enabled_projects: { [P.github]: null } })
  assertError(t, await get(`/projects/${missing}`, scoped.token), 403, 'MCP_PROJECT_FORBIDDEN', 'a nonexistent project outside the scope')
  // In scope and existing, but the build/job belongs to another project: 404 for the object.
  assertError(t, await get(`/projects/${P.github}/builds/${B.public1}`, all.token), 404, 'MCP_NOT_FOUND', 'a build of another project')
  assertError(t, await get(`/projects/${P.github}/jobs/${J.publicRun}/log`, all.token), 404, 'MCP_NOT_FOUND', 'a job of another project')
})

t.test('trigger access: 403 MCP_TRIGGER_FORBIDDEN without allow_trigger; granted later it applies on the next request', async t => {
  const user = await addUser(db, [P.github])
  const jwt = await session(user)
  const token = await createToken(app, jwt, { name: 'no trigger' })
  const before = await db.selectFrom('build').select(eb => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  assertError(t, await trigger(P.github, token.token), 403, 'MCP_TRIGGER_FORBIDDEN')
  assertError(t, await trigger(P.github, token.token, { sha: 'deadbeefdeadbeef' }), 403, 'MCP_TRIGGER_FORBIDDEN', 'refused before the handler looks for the commit')
  const after = await db.selectFrom('build').select(eb => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  t.equal(after.n, before.n, 'no build written')
  t.equal((await get(`/projects/${P.github}/builds`, token.token)).statusCode, 200, 'reads are fine')

  const grant = await app.inject({ method: 'POST', url: `${API}/tokens/${token.token_id}/trigger`, headers: bearer(jwt), payload: {} })
  t.equal(grant.statusCode, 200)
  t.equal((await trigger(P.github, token.token)).statusCode, 201, 'granted: the next trigger passes')
  const revoke = await app.inject({ method: 'DELETE', url: `${API}/tokens/${token.token_id}/trigger`, headers: bearer(jwt), payload: {} })
  t.equal(revoke.statusCode, 200)
  assertError(t, await trigger(P.github, token.token), 403, 'MCP_TRIGGER_FORBIDDEN', 'revoked again')
})

t.test('the refusal order: auth, rate limit, schema (Fastify validates before preHandler), project access, trigger access, handler', async t => {
  const unknownSha = { sha: 'deadbeefdeadbeef' } // valid for the schema, unknown to the handler (422)
  const noTrigger = await createToken(app, demoSession, { enabled_projects: { [P.github]: null } })
  assertError(t, await trigger(P.upload, noTrigger.token, unknownSha), 403, 'MCP_PROJECT_FORBIDDEN', 'out of scope beats no trigger right')
  assertError(t, await trigger(P.github, noTrigger.token, unknownSha), 403, 'MCP_TRIGGER_FORBIDDEN', 'no trigger right beats the handler')
  assertError(t, await trigger(P.github, 'ib_mcp_nope', { sha: 'zz' }), 401, 'MCP_INVALID_TOKEN', 'a bad token beats everything')
  const withTrigger = await createToken(app, demoSession, { enabled_projects: { [P.github]: null }, allow_trigger: true })
  assertError(t, await trigger(P.github, withTrigger.token, unknownSha), 422, 'MCP_UNPROCESSABLE', 'allowed: the handler answers')
  // The body schema is checked at preValidation, before the preHandler access steps (SPEC §4 hooks access at
  // preHandler): a malformed body is 400 whoever asks, which reveals nothing about the project.
  assertError(t, await trigger(P.upload, noTrigger.token, { sha: 'zz' }), 400, 'FST_ERR_VALIDATION', 'a malformed body')
  assertError(t, await get('/projects/not-a-uuid', noTrigger.token), 400, 'FST_ERR_VALIDATION', 'a malformed project id')
})
