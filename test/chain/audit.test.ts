// SPEC §4 "audit" over HTTP: one mcp_access_log row per request, allowed or refused (401 and 429 included, defect 8), with the right action and fields.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditSettled, buildApp } from '../helpers/app.js'
import { API, accessLogCount, addUser, assertLimitHeaders, bearer, createToken, metric, RELAXED_LIMITER, type Answer } from '../helpers/chain.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { clientRequestId } from '../helpers/db.js'

const artifactRoot = await mkdtemp(join(tmpdir(), 'mcp-chain-audit-'))
t.teardown(async () => { await rm(artifactRoot, { recursive: true, force: true }) })

// SPEC defaults (no limits option, no MCP_RATE_LIMIT_* variables): 30 / 10 / 10 / 5.
const { app, database, session } = await buildApp(t, {
  env: { ARTIFACT_FS_ROOT: artifactRoot, ...RELAXED_LIMITER },
  seed: async ({ db }) => { await seedFixture(db, { artifactRoot }) }
})
const db = database.db
const { projects: P, builds: B, jobs: J } = FIXTURE
const ALL = [P.github, P.upload, P.uploadEmpty, P.gerrit, P.test]
const pj = `${API}/projects/${P.github}`

interface Call { method?: 'GET' | 'POST', url: string, headers?: Record<string, string>, payload?: object }
const send = async (c: Call, requestId = randomUUID()): Promise<Answer & { requestId: string }> => {
  const res = await app.inject({ method: c.method ?? 'GET', url: c.url, headers: { 'x-request-id': requestId, ...c.headers }, ...(c.payload !== undefined ? { payload: c.payload } : {}) })
  return Object.assign(res, { requestId })
}
const rowsOf = async (requestIds: string[]) =>
  await db.selectFrom('mcp_access_log').selectAll().select(clientRequestId.as('client_request_id')).where(clientRequestId, 'in', requestIds).execute()

t.test('the SPEC default budgets apply without configuration', async t => {
  const user = await addUser(db, ALL)
  const tok = await createToken(app, await session(user), { allow_trigger: true })
  const h = bearer(tok.token)
  assertLimitHeaders(t, await send({ url: `${API}/projects`, headers: h }), 'list_projects', 30)
  assertLimitHeaders(t, await send({ url: `${pj}/builds`, headers: h }), 'list_builds', 30)
  assertLimitHeaders(t, await send({ url: `${pj}/jobs/${J.compile}`, headers: h }), 'list_jobs', 30)
  assertLimitHeaders(t, await send({ url: `${pj}/jobs/${J.compile}/log`, headers: h }), 'get_job_log', 10)
  assertLimitHeaders(t, await send({ url: `${pj}/jobs/${J.compile}/artifacts`, headers: h }), 'list_job_artifacts', 10)
  assertLimitHeaders(t, await send({ method: 'POST', url: `${pj}/trigger`, headers: h, payload: { branch: 'main' } }), 'trigger_build', 5)
})

t.test('one row per request: the tool name as action, outcome, status, project, token, method, path, via rest, duration', async t => {
  const user = await addUser(db, ALL)
  const jwt = await session(user)
  const tok = await createToken(app, jwt, { allow_trigger: true })
  const scoped = await createToken(app, jwt, { enabled_projects: { [P.github]: null } })
  const h = bearer(tok.token)
  const unknown = `ib_mcp_${'ab'.repeat(24)}`
  const missing = randomUUID()

  type Expect = { action: string, outcome: string, status: number, project: string | null, tokenId: string | null, userId: string | null }
  const ok = (action: string, project: string | null, status = 200): Expect => ({ action, outcome: 'success', status, project, tokenId: tok.token_id, userId: user })
  const cases: Array<[Call, Expect]> = [
    [{ url: `${API}/projects?limit=2`, headers: h }, ok('list_projects', null)],
    [{ url: `${pj}`, headers: h }, ok('get_project', P.github)],
    [{ url: `${pj}/builds?status=failure`, headers: h }, ok('list_builds', P.github)],
    [{ url: `${pj}/builds/${B.b2}`, headers: h }, ok('get_build', P.github)],
    [{ url: `${pj}/builds/${B.b2}/jobs`, headers: h }, ok('list_jobs', P.github)],
    [{ url: `${pj}/jobs/${J.compile}`, headers: h }, ok('get_job', P.github)],
    [{ url: `${pj}/jobs/${J.compile}/testruns`, headers: h }, ok('list_test_runs', P.github)],
    [{ url: `${pj}/jobs/${J.compile}/log?tail=1`, headers: h }, ok('get_job_log', P.github)],
    [{ url: `${pj}/jobs/${J.compile}/artifacts`, headers: h }, ok('list_artifacts', P.github)],
    [{ url: `${pj}/jobs/${J.compile}/artifacts/download?filename=report.txt`, headers: h }, ok('get_artifact', P.github)],
    [{ method: 'POST', url: `${pj}/trigger`, headers: h, payload: { branch: 'main' } }, ok('trigger_build', P.github, 201)],
    [{ url: `${API}/projects/${P.upload}`, headers: bearer(scoped.token) }, { action: 'get_project', outcome: 'forbidden', status: 403, project: P.upload, tokenId: scoped.token_id, userId: user }],
    [{ method: 'POST', url: `${pj}/trigger`, headers: bearer(scoped.token), payload: { branch: 'main' } }, { action: 'trigger_build', outcome: 'forbidden', status: 403, project: P.github, tokenId: scoped.token_id, userId: user }],
    [{ url: `${API}/projects/${missing}/builds`, headers: h }, { ...ok('list_builds', missing), outcome: 'not_found', status: 404 }],
    [{ url: `${pj}/builds?limit=0`, headers: h }, { ...ok('list_builds', null), outcome: 'bad_request', status: 400 }],
    [{ url: `${pj}/jobs/${J.legacy}/log`, headers: h }, { ...ok('get_job_log', P.github), outcome: 'not_found', status: 410 }],
    [{ method: 'POST', url: `${pj}/trigger`, headers: h, payload: { sha: 'deadbeefdead' } }, { ...ok('trigger_build', P.github), outcome: 'bad_request', status: 422 }],
    [{ url: `${pj}/builds`, headers: bearer(unknown) }, { action: 'list_builds', outcome: 'unauthorized', status: 401, project: null, tokenId: unknown.slice(7, 23), userId: null }],
    [{ url: `${pj}/builds`, headers: bearer(tok.token.slice(0, 23) + '0'.repeat(32)) }, { action: 'list_builds', outcome: 'unauthorized', status: 401, project: null, tokenId: tok.token_id, userId: null }],
    [{ url: `${pj}/builds`, headers: bearer('ib_mcp_tooshort') }, { action: 'list_builds', outcome: 'unauthorized', status: 401, project: null, tokenId: null, userId: null }],
    [{ url: `${API}/projects` }, { action: 'list_projects', outcome: 'unauthorized', status: 401, project: null, tokenId: null, userId: null }],
    [{ url: '/readyz', headers: h }, { action: 'forbidden_path', outcome: 'forbidden', status: 403, project: null, tokenId: tok.token_id, userId: null }]
  ]
  const started = Date.now()
  const sent: Array<{ requestId: string, path: string, method: string, expect: Expect }> = []
  for (const [c, expect] of cases) {
    const res = await send(c)
    t.equal(res.statusCode, expect.status, `${c.method ?? 'GET'} ${c.url}: ${expect.status}`)
    sent.push({ requestId: res.requestId, path: c.url.split('?')[0] ?? '', method: c.method ?? 'GET', expect })
  }
  await auditSettled(app)
  const rows = await rowsOf(sent.map(s => s.requestId))
  t.equal(rows.length, sent.length, 'one row each')
  for (const s of sent) {
    const mine = rows.filter(r => r.client_request_id === s.requestId)
    t.equal(mine.length, 1, `${s.method} ${s.path}: exactly one row`)
    const row = mine[0]
    if (row === undefined) continue
    const e = s.expect
    t.match(row, {
      action: e.action,
      outcome: e.outcome,
      status_code: e.status,
      project_id: e.project,
      token_id: e.tokenId,
      user_id: e.userId,
      method: s.method,
      path: s.path,
      via: 'rest',
      ip: '127.0.0.1'
    }, `${s.method} ${s.path} (${e.status} ${e.action})`)
    t.ok(typeof row.duration_ms === 'number' && row.duration_ms >= 0 && row.duration_ms < 10_000, `duration_ms ${String(row.duration_ms)}`)
    t.ok(row.accessed_at.getTime() >= started - 1000 && row.accessed_at.getTime() <= Date.now() + 1000, 'accessed_at is the time of the request')
    if (e.outcome === 'success') t.equal(row.error, null, 'no error on success')
    else t.ok(typeof row.error === 'string' && row.error !== '', `the refusal says why (${row.error ?? 'null'})`)
  }
})

t.test('defect 8: 429s are audited (and 401s, above) with outcome, status and token', async t => {
  const user = await addUser(db, ALL)
  const tok = await createToken(app, await session(user))
  const ids: string[] = []
  for (let i = 0; i < 13; i++) ids.push((await send({ url: `${pj}/jobs/${J.compile}/log?tail=1`, headers: bearer(tok.token) })).requestId)
  await auditSettled(app)
  const rows = await rowsOf(ids)
  t.equal(rows.length, 13)
  const limited = rows.filter(r => r.status_code === 429)
  t.equal(limited.length, 3, 'the 3 over the 10 of get_job_log')
  t.ok(limited.every(r => r.outcome === 'rate_limited' && r.action === 'get_job_log' && r.token_id === tok.token_id && r.user_id === user && r.via === 'rest'))
})

t.test('a burst of N mixed requests, concurrent, leaves exactly N rows whose statuses match the answers', async t => {
  const users = await Promise.all([0, 1, 2].map(async () => await addUser(db, ALL)))
  const tokens = await Promise.all(users.map(async u => await createToken(app, await session(u), { allow_trigger: true })))
  const scoped = await createToken(app, await session(users[0] as string), { enabled_projects: { [P.upload]: null } })
  const pool: Call[] = [
    { url: `${API}/projects` },
    { url: `${pj}/builds?limit=3` },
    { url: `${pj}/builds/${B.b7}` },
    { url: `${pj}/jobs/${J.deploy}/log` }, // 10 per minute: the burst crosses it
    { url: `${pj}/jobs/${J.compile}/artifacts/download?filename=coverage.bin` },
    { url: `${pj}/jobs/${J.compile}/artifacts/download?filename=../../etc/passwd` },
    { url: `${pj}/builds?status=nope` },
    { method: 'POST', url: `${pj}/trigger`, payload: { branch: 'feature/login' } } // 5 per minute
  ]
  const calls: Call[] = []
  for (let i = 0; i < 150; i++) {
    const base = pool[i % pool.length] as Call
    const who = i % 7 === 0
      ? bearer(`ib_mcp_${'cd'.repeat(24)}`) // unknown: 401
      : i % 11 === 0
        ? {} // no token: 401
        : i % 13 === 0
          ? bearer(scoped.token) // out of scope for the github routes: 403
          : bearer((tokens[i % tokens.length] as { token: string }).token)
    calls.push({ ...base, headers: who })
  }
  const writtenBefore = await metric(app, 'mcp_audit_rows_written_total')
  await auditSettled(app)
  const before = await accessLogCount(db)
  const answers = await Promise.all(calls.map(async c => await send(c)))
  await auditSettled(app)
  t.equal(await accessLogCount(db), before + calls.length, `exactly ${calls.length} rows more`)

  const tally = (statuses: number[]): Record<string, number> =>
    statuses.reduce<Record<string, number>>((acc, s) => { acc[s] = (acc[s] ?? 0) + 1; return acc }, {})
  const rows = await rowsOf(answers.map(a => a.requestId))
  t.equal(rows.length, calls.length, 'every request id has its row')
  t.same(tally(rows.map(r => r.status_code ?? 0)), tally(answers.map(a => a.statusCode)), 'the rows\' statuses are the answers\' statuses')
  const seen = new Set(answers.map(a => a.statusCode))
  for (const status of [200, 201, 400, 401, 403, 429]) t.ok(seen.has(status), `the burst included ${status}s`)
  t.ok(await metric(app, 'mcp_audit_rows_written_total') - writtenBefore >= calls.length, 'the writer counted them')
  t.equal(await metric(app, 'mcp_audit_rows_dropped_total'), 0, 'nothing dropped')
})
