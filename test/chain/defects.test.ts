// SPEC §10: each defect of InfraBox's Python MCP layer, as a test that passes here and would fail on that layer's behaviour.
import t from 'tap'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { sql } from 'kysely'
import { auditSettled, buildApp } from '../helpers/app.js'
import { API, addUser, assertError, assertLimitHeaders, bearer, createToken, header, redisClient, RELAXED_LIMITER, type Answer } from '../helpers/chain.js'
import { ARTIFACTS, COMPILE_LOG, FIXTURE, seedFixture } from '../../db/seed.js'
import { budgetKey } from '../../core/budget.js'
import { wellBefore } from '../helpers/timing.js'

const artifactRoot = await mkdtemp(join(tmpdir(), 'mcp-chain-defects-'))
t.teardown(async () => { await rm(artifactRoot, { recursive: true, force: true }) })

const { app, database, session, keyPrefix } = await buildApp(t, {
  limits: { default: 1000, log: 1000, artifact: 1000, trigger: 3 },
  env: { ARTIFACT_FS_ROOT: artifactRoot, ...RELAXED_LIMITER },
  seed: async ({ db }) => { await seedFixture(db, { artifactRoot }) }
})
const db = database.db
const { projects: P, jobs: J, builds: B } = FIXTURE
/** db/connect.ts's default statement_timeout: what a query blocked by a lock would wait for. */
const STATEMENT_TIMEOUT_MS = 10_000
const ALL = [P.github, P.upload, P.uploadEmpty, P.gerrit, P.test]
const demoSession = await session(FIXTURE.users.demo)
const demo = await createToken(app, demoSession, { name: 'scope {}' })

const get = async (url: string, headers: Record<string, string>): Promise<Answer> => await app.inject({ method: 'GET', url: `${API}${url}`, headers })
const trigger = async (projectId: string, token: string, body: object = { branch: 'main' }): Promise<Answer> =>
  await app.inject({ method: 'POST', url: `${API}/projects/${projectId}/trigger`, headers: bearer(token), payload: body })

t.test('defect 1: scope is checked against collaborator: a token cannot read a public project by id', async t => {
  for (const url of [`/projects/${P.public}`, `/projects/${P.public}/builds`, `/projects/${P.public}/builds/${B.public1}`,
    `/projects/${P.public}/jobs/${J.publicRun}/log`, `/projects/${P.public}/jobs/${J.publicRun}/artifacts/download?filename=public.txt`]) {
    const res = await get(url, bearer(demo.token))
    assertError(t, res, 403, 'MCP_PROJECT_FORBIDDEN', url)
    t.notOk(res.body.includes('public log') || res.body.includes('public artifact'), 'none of its data')
  }
})

t.test('defect 2: `token ib_mcp_…` and `bearer ib_mcp_…` are validated, not waved through', async t => {
  const forged = `ib_mcp_${randomBytes(24).toString('hex')}`
  for (const scheme of ['token', 'bearer', 'Token', 'BEARER']) {
    for (const credential of [forged, demo.token.slice(0, 23) + 'f'.repeat(32), 'ib_mcp_x']) {
      const res = await get(`/projects/${P.github}/builds`, { authorization: `${scheme} ${credential}` })
      assertError(t, res, 401, 'MCP_INVALID_TOKEN', `${scheme} ${credential.slice(0, 12)}…`)
      t.equal(header(res, 'www-authenticate'), 'Bearer realm="infrabox-mcp", error="invalid_token"')
    }
    t.equal((await get(`/projects/${P.github}/builds`, { authorization: `${scheme} ${demo.token}` })).statusCode, 200, `${scheme} with the real token`)
  }
})

t.test('defect 3: audit rows are written on the writer\'s own connections, after the trigger committed and released its lock', async t => {
  const user = await addUser(db, ALL)
  const tok = await createToken(app, await session(user), { allow_trigger: true })
  await auditSettled(app)
  // Another session holds mcp_access_log: an audit insert on the request's own connection (the Python
  // layer's way) would block the trigger inside its transaction, holding LOCK TABLE build.
  const blocker = new pg.Client({ connectionString: database.url })
  await blocker.connect()
  t.teardown(async () => { await blocker.end().catch(() => {}) })
  await blocker.query('BEGIN')
  await blocker.query('LOCK TABLE mcp_access_log IN ACCESS EXCLUSIVE MODE')
  try {
    const started = Date.now()
    const answers = await Promise.all([0, 1, 2].map(async () => await trigger(P.github, tok.token)))
    const took = Date.now() - started
    t.same(answers.map(a => a.statusCode), [201, 201, 201], 'every trigger answered while the audit table was locked')
    // an insert blocked by the lock would wait for the statement timeout and fail
    t.ok(took < wellBefore(STATEMENT_TIMEOUT_MS), `without waiting for the audit (${took} ms)`)
    const numbers = answers.map(a => a.json().build.build_number as number)
    t.equal(new Set(numbers).size, 3, `distinct build numbers ${numbers.join(', ')}`)
    // Committed, and the build lock released: another session can take it at once.
    const other = new pg.Client({ connectionString: database.url })
    await other.connect()
    try {
      const { rows } = await other.query('SELECT count(*)::int AS n FROM job WHERE build_id = ANY($1::uuid[])', [answers.map(a => a.json().build.id)])
      t.equal(rows[0].n, 3, 'builds and their jobs are committed, visible to other sessions')
      await other.query('BEGIN')
      await other.query("SET LOCAL lock_timeout = '500ms'")
      await other.query('LOCK TABLE build IN EXCLUSIVE MODE')
      await other.query('ROLLBACK')
      t.pass('LOCK TABLE build is free again')
    } finally {
      await other.end()
    }
  } finally {
    await blocker.query('COMMIT')
  }
  await auditSettled(app)
  const rows = await db.selectFrom('mcp_access_log').selectAll().where('user_id', '=', user).where('action', '=', 'trigger_build').execute()
  t.equal(rows.length, 3, 'the audit rows landed once the table was free')
  t.ok(rows.every(r => r.via === 'rest' && r.project_id === P.github && r.status_code === 201 && r.outcome === 'success' && r.token_id === tok.token_id))
})

t.test('defect 4: over the budget is a 429 with Retry-After, not a 500, and refused requests do not count', async t => {
  const user = await addUser(db, ALL)
  const tok = await createToken(app, await session(user), { allow_trigger: true })
  for (let i = 0; i < 3; i++) t.equal((await trigger(P.github, tok.token)).statusCode, 201)
  for (let i = 0; i < 6; i++) {
    const res = await trigger(P.github, tok.token)
    assertError(t, res, 429, 'MCP_RATE_LIMITED', `refused ${i + 1}`)
    assertLimitHeaders(t, res, 'trigger_build', 3)
    t.ok(Number(header(res, 'retry-after')) >= 1)
  }
  const redis = redisClient(t)
  t.equal(await redis.llen(budgetKey(keyPrefix, user, 'trigger_build')), 3, 'only the 3 allowed are in the window')
})

t.test('defect 5: a finished job\'s log is its job.console, not empty', async t => {
  const res = await get(`/projects/${P.github}/jobs/${J.compile}/log`, bearer(demo.token))
  t.equal(res.statusCode, 200)
  t.equal(res.json().log, COMPILE_LOG)
  const rows = await db.selectFrom('console').select('id').where('job_id', '=', J.compile).execute()
  t.same(rows, [], 'the job has no console rows left (InfraBox moved them into job.console)')
  const text = await get(`/projects/${P.github}/jobs/${J.compile}/log`, { ...bearer(demo.token), accept: 'text/plain' })
  t.equal(text.body, COMPILE_LOG)
})

t.test('defect 6: artifacts come from job.archive (there is no artifact table)', async t => {
  const { rows } = await sql<{ t: string | null }>`select to_regclass('artifact')::text as t`.execute(db)
  t.equal(rows[0]?.t, null, 'no artifact table in the database')
  const list = await get(`/projects/${P.github}/jobs/${J.compile}/artifacts`, bearer(demo.token))
  t.equal(list.statusCode, 200)
  t.same(list.json().items.map((a: { filename: string }) => a.filename), ['report.txt', 'coverage.bin'])
  const file = await get(`/projects/${P.github}/jobs/${J.compile}/artifacts/download?filename=report.txt`, bearer(demo.token))
  t.equal(file.statusCode, 200)
  t.equal(file.body, ARTIFACTS.text.content.toString('utf8'))
})

t.test('defect 7: a triggered build gets its queued Create Jobs job and restart_counter 1', async t => {
  const user = await addUser(db, ALL)
  const tok = await createToken(app, await session(user), { allow_trigger: true })
  const res = await trigger(P.github, tok.token)
  t.equal(res.statusCode, 201)
  t.equal(res.json().build.restart_counter, 1)
  const build = await db.selectFrom('build').selectAll().where('id', '=', res.json().build.id).executeTakeFirstOrThrow()
  t.equal(build.restart_counter, 1)
  t.equal(build.source, 'mcp')
  const jobs = await db.selectFrom('job').selectAll().where('build_id', '=', build.id).execute()
  t.equal(jobs.length, 1, 'the job the scheduler watches for')
  t.match(jobs[0], { name: 'Create Jobs', type: 'create_job_matrix', state: 'queued', project_id: P.github })
})

t.test('defect 8: 401s and 429s are audited; project ids are validated at token creation', async t => {
  const user = await addUser(db, ALL)
  const jwt = await session(user)
  const tok = await createToken(app, jwt, { allow_trigger: true })
  const unknown = `ib_mcp_${randomBytes(24).toString('hex')}`
  t.equal((await get(`/projects/${P.github}`, bearer(unknown))).statusCode, 401)
  for (let i = 0; i < 4; i++) await trigger(P.github, tok.token)
  await auditSettled(app)
  const unauthorized = await db.selectFrom('mcp_access_log').selectAll().where('token_id', '=', unknown.slice(7, 23)).execute()
  t.equal(unauthorized.length, 1, 'the 401 has its row, with the presented token id')
  t.match(unauthorized[0], { outcome: 'unauthorized', status_code: 401, action: 'get_project', user_id: null })
  const limited = await db.selectFrom('mcp_access_log').selectAll().where('token_id', '=', tok.token_id).where('status_code', '=', 429).execute()
  t.equal(limited.length, 1, 'the 429 has its row')
  t.match(limited[0], { outcome: 'rate_limited', action: 'trigger_build', user_id: user })

  const before = await db.selectFrom('mcp_token').select(eb => eb.fn.countAll<string>().as('n')).where('user_id', '=', user).executeTakeFirstOrThrow()
  for (const [what, scope, status] of [
    ['a public project the user does not collaborate on', { [P.public]: null }, 403],
    ['a project that does not exist', { [randomUUID()]: null }, 403],
    ['a mix of allowed and foreign', { [P.github]: null, [P.public]: null }, 403],
    ['not a project id', { 'not-a-uuid': null }, 400]
  ] as const) {
    const res = await app.inject({ method: 'POST', url: `${API}/tokens`, headers: bearer(jwt), payload: { name: 'scoped', enabled_projects: scope } })
    t.equal(res.statusCode, status, what)
  }
  const after = await db.selectFrom('mcp_token').select(eb => eb.fn.countAll<string>().as('n')).where('user_id', '=', user).executeTakeFirstOrThrow()
  t.equal(after.n, before.n, 'no token was created')
})
