// SPEC §14 over real HTTP: the six actions as REST routes through the whole chain and as MCP tools, their refusals, the races, tools/list per token, and the token's own access log.
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { Value } from 'typebox/value'
import type { TSchema } from '@fastify/type-provider-typebox'
import { FIXTURE } from '../../db/seed.js'
import { OPERATIONS } from '../../core/operations/index.js'
import { AbortResult, MyAccessLogPage, RestartedBuild, RestartedJobs } from '../../schemas/control.js'
import { connectV1, connectV2, mintToken, rowsOnce, startMcpApp, textOf, type CallResult } from '../helpers/mcp.js'
import { holdLock, lockWaiters, makeBuild } from '../helpers/builds.js'

const { projects: P, users: U } = FIXTURE
const LIMITS = { default: 10_000, log: 10_000, artifact: 10_000, trigger: 10_000, introspect: 10_000 }
const CONTROL_TOOLS = ['restart_build', 'restart_job', 'rerun_job', 'retry_failed_jobs', 'abort_build', 'abort_job']

const { app, database, endpoint, session } = await startMcpApp(t, { limits: LIMITS })
const { db } = database
const demo = await session(U.demo)
const full = await mintToken(app, demo, { allow_trigger: true, name: 'control: trigger' })
const readOnly = await mintToken(app, demo, { name: 'control: read-only' })
const elsewhere = await mintToken(app, demo, { allow_trigger: true, enabled_projects: { [P.upload]: null }, name: 'control: upload only' })

interface Http { status: number, headers: Headers, body: any }
async function http (token: string, method: string, path: string, body?: unknown): Promise<Http> {
  const res = await fetch(`${endpoint}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text === '' ? null : JSON.parse(text) }
}
const post = async (token: string, path: string, body?: unknown): Promise<Http> => await http(token, 'POST', path, body)

function valid (t: Test, schema: TSchema, value: unknown, what: string): void {
  t.same([...Value.Errors(schema, value)].slice(0, 3), [], `${what}: matches its schema`)
}

function refusal (t: Test, res: Http, status: number, code: string, what: string): void {
  t.equal(res.status, status, `${what}: ${status}`)
  t.equal(res.body?.code, code, `${what}: ${code}`)
}

const jobRow = async (id: string) => await db.selectFrom('job').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
const pj = `/projects/${P.github}`

t.test('each route through the chain: its answer, the trigger_build budget, its audit row', async t => {
  const g = await makeBuild(db, [
    { name: 'compile', state: 'failure' },
    { name: 'test', state: 'skipped', deps: ['compile'] },
    { name: 'lint', state: 'unstable' },
    { name: 'e2e', state: 'error' }
  ])

  const restartBuild = await post(full.token, `${pj}/builds/${g.buildId}/restart`)
  t.equal(restartBuild.status, 201, 'restart_build: 201 (no body at all)')
  valid(t, RestartedBuild, restartBuild.body, 'restart_build')
  t.match(restartBuild.body, { build: { build_number: g.buildNumber, restart_counter: 2 } })
  t.equal(restartBuild.headers.get('ratelimit-policy'), `"trigger_build";q=${LIMITS.trigger};w=60`, 'spends trigger_build')

  const restartJob = await post(full.token, `${pj}/jobs/${g.id('compile')}/restart`, {})
  t.equal(restartJob.status, 201, 'restart_job: 201 (body {})')
  valid(t, RestartedJobs, restartJob.body, 'restart_job')
  t.same(restartJob.body.jobs.map((j: { name: string }) => j.name), ['compile.1', 'test.1'])

  const rerun = await post(full.token, `${pj}/jobs/${g.id('lint')}/rerun`)
  t.equal(rerun.status, 201, 'rerun_job: 201')
  valid(t, RestartedJobs, rerun.body, 'rerun_job')
  t.same(rerun.body.jobs.map((j: { name: string }) => j.name), ['lint.1'])

  const retry = await post(full.token, `${pj}/builds/${g.buildId}/retry-failed/`)
  t.equal(retry.status, 201, 'retry_failed_jobs: 201 (trailing slash)')
  valid(t, RestartedJobs, retry.body, 'retry_failed_jobs')
  t.same(retry.body.jobs.map((j: { name: string }) => j.name), ['e2e.1'], 'what the earlier restarts left failed')

  const abortJob = await post(full.token, `${pj}/jobs/${retry.body.jobs[0].id as string}/abort`)
  t.equal(abortJob.status, 200, 'abort_job: 200')
  valid(t, AbortResult, abortJob.body, 'abort_job')
  t.same(abortJob.body.aborted.map((j: { name: string }) => j.name), ['e2e.1'])

  const abortBuild = await post(full.token, `${pj}/builds/${g.buildId}/abort`)
  t.equal(abortBuild.status, 200, 'abort_build: 200')
  valid(t, AbortResult, abortBuild.body, 'abort_build')
  t.same(abortBuild.body.aborted.map((j: { name: string }) => j.name).sort(), ['compile.1', 'e2e.1', 'lint.1', 'test.1'], 'every queued clone')
  const aborts = await db.selectFrom('abort').selectAll().where('job_id', 'in', abortBuild.body.aborted.map((j: { id: string }) => j.id)).execute()
  t.equal(aborts.length, 4, 'one abort row per job, the one abort_job wrote included')
  t.ok(aborts.every(a => a.user_id === U.demo), 'user_id: the token\'s owner')

  const rows = await rowsOnce(app, db, r => r.token_id === full.token_id && r.via === 'rest' && CONTROL_TOOLS.includes(r.action), 6)
  t.same(rows.map(r => [r.action, r.status_code, r.outcome, r.project_id]), [
    ['restart_build', 201, 'success', P.github], ['restart_job', 201, 'success', P.github], ['rerun_job', 201, 'success', P.github],
    ['retry_failed_jobs', 201, 'success', P.github], ['abort_job', 200, 'success', P.github], ['abort_build', 200, 'success', P.github]
  ], 'one audit row per call, under the tool\'s name')
})

t.test('refusals through the chain, for every route', async t => {
  const g = await makeBuild(db, [
    { name: 'failed', state: 'failure' },
    { name: 'running', state: 'running' },
    { name: 'done', state: 'finished' }
  ])
  const routes = [
    `${pj}/builds/${g.buildId}/restart`, `${pj}/jobs/${g.id('failed')}/restart`, `${pj}/jobs/${g.id('failed')}/rerun`,
    `${pj}/builds/${g.buildId}/retry-failed`, `${pj}/builds/${g.buildId}/abort`, `${pj}/jobs/${g.id('running')}/abort`
  ]
  for (const path of routes) {
    const action = path.split('/').slice(-2).join('/')
    refusal(t, await post(readOnly.token, path), 403, 'MCP_TRIGGER_FORBIDDEN', `${action} without allow_trigger`)
    refusal(t, await post(elsewhere.token, path), 403, 'MCP_PROJECT_FORBIDDEN', `${action} with a token for another project`)
    refusal(t, await post(full.token, path, { force: true }), 400, 'FST_ERR_VALIDATION', `${action} with an unknown body field`)
    refusal(t, await post(full.token, path.replace(P.github, P.public)), 403, 'MCP_PROJECT_FORBIDDEN', `${action} on a project the owner does not collaborate on`)
  }
  refusal(t, await post(full.token, `${pj}/builds/not-a-uuid/restart`), 400, 'FST_ERR_VALIDATION', 'a malformed build id')
  refusal(t, await post(full.token, `${pj}/builds/${randomUUID()}/retry-failed`), 404, 'MCP_NOT_FOUND', 'an unknown build')
  refusal(t, await post(full.token, `${pj}/jobs/${randomUUID()}/restart`), 404, 'MCP_NOT_FOUND', 'an unknown job')
  refusal(t, await post(full.token, `/projects/${P.upload}/jobs/${g.id('failed')}/restart`), 404, 'MCP_NOT_FOUND', 'a job of another project')
  t.equal((await jobRow(g.id('failed'))).restarted, false, 'no refusal so far changed the job')
  t.equal(await db.selectFrom('abort').select('job_id').where('job_id', '=', g.id('running')).executeTakeFirst(), undefined, 'nor wrote an abort row')

  refusal(t, await post(full.token, `${pj}/jobs/${g.id('Create Jobs')}/restart`), 409, 'MCP_CONFLICT', 'restarting Create Jobs')
  refusal(t, await post(full.token, `${pj}/jobs/${g.id('running')}/restart`), 409, 'MCP_CONFLICT', 'restarting a running job')
  refusal(t, await post(full.token, `${pj}/jobs/${g.id('done')}/abort`), 409, 'MCP_CONFLICT', 'aborting a finished job')
  t.equal((await post(full.token, `${pj}/jobs/${g.id('failed')}/restart`)).status, 201)
  const again = await post(full.token, `${pj}/jobs/${g.id('failed')}/restart`)
  refusal(t, again, 409, 'MCP_CONFLICT', 'restarting a job already restarted')
  t.match(again.body.message, /already been restarted/)

  refusal(t, await post(full.token, `${pj}/builds/${g.buildId}/abort`, null), 400, 'FST_ERR_VALIDATION', 'a JSON null body (an absent one is fine)')

  const refused = await rowsOnce(app, db, r => r.token_id === readOnly.token_id && CONTROL_TOOLS.includes(r.action), 6)
  t.ok(refused.length === 6 && refused.every(r => r.outcome === 'forbidden' && r.status_code === 403), 'refusals audited as forbidden under the tool\'s name')
})

t.test('two restarts of one job at once over HTTP: one 201, one 409', async t => {
  const g = await makeBuild(db, [{ name: 'flaky', state: 'failure' }])
  const gate = await holdLock(database.url, 'SELECT id FROM build WHERE id = $1 FOR UPDATE', [g.buildId])
  const racing = [post(full.token, `${pj}/jobs/${g.id('flaky')}/restart`), post(full.token, `${pj}/jobs/${g.id('flaky')}/restart`)]
  await lockWaiters(db, 2)
  await gate.release()
  const answers = await Promise.all(racing)
  t.same(answers.map(a => a.status).sort(), [201, 409])
  t.equal(answers.find(a => a.status === 409)?.body.code, 'MCP_CONFLICT')
  const clones = await db.selectFrom('job').select('name').where('build_id', '=', g.buildId).where('name', '=', 'flaky.1').execute()
  t.equal(clones.length, 1, 'one clone')
})

t.test('a restart during an abort over HTTP: the abort that comes second reaches the restarted clone', async t => {
  const g = await makeBuild(db, [{ name: 'flaky', state: 'failure' }, { name: 'slow', state: 'running' }])
  const gate = await holdLock(database.url, 'SELECT id FROM build WHERE id = $1 FOR UPDATE', [g.buildId])
  const restart = post(full.token, `${pj}/jobs/${g.id('flaky')}/restart`)
  await lockWaiters(db, 1)
  const abort = post(full.token, `${pj}/builds/${g.buildId}/abort`)
  await lockWaiters(db, 2)
  await gate.release()
  const [restarted, aborted] = await Promise.all([restart, abort])
  t.equal(restarted.status, 201)
  t.equal(aborted.status, 200)
  t.same(aborted.body.aborted.map((j: { name: string }) => j.name).sort(), ['flaky.1', 'slow'], 'no queued clone escapes the abort')
})

function structured (t: Test, result: CallResult, schema: TSchema, what: string): any {
  t.notOk(result.isError, `${what}: not an error (${textOf(result).slice(0, 300)})`)
  valid(t, schema, result.structuredContent ?? {}, what)
  return result.structuredContent
}

t.test('MCP: each tool called over real HTTP by the SDK client', async t => {
  const mcp = await connectV2(t, endpoint, full.token, 'legacy')
  const g = await makeBuild(db, [
    { name: 'a', state: 'failure' }, { name: 'b', state: 'killed' }, { name: 'c', state: 'failure' }, { name: 'd', state: 'running' }
  ])
  const ids = { projectId: P.github }
  const rb = structured(t, await mcp.call('restart_build', { ...ids, buildId: g.buildId }), RestartedBuild, 'restart_build')
  t.equal(rb.build.build_number, g.buildNumber)
  t.same(structured(t, await mcp.call('restart_job', { ...ids, jobId: g.id('a') }), RestartedJobs, 'restart_job').jobs.map((j: { name: string }) => j.name), ['a.1'])
  t.same(structured(t, await mcp.call('rerun_job', { ...ids, jobId: g.id('b') }), RestartedJobs, 'rerun_job').jobs.map((j: { name: string }) => j.name), ['b.1'])
  t.same(structured(t, await mcp.call('retry_failed_jobs', { ...ids, buildId: g.buildId }), RestartedJobs, 'retry_failed_jobs').jobs.map((j: { name: string }) => j.name), ['c.1'])
  t.same(structured(t, await mcp.call('abort_job', { ...ids, jobId: g.id('d') }), AbortResult, 'abort_job').aborted.map((j: { name: string }) => j.name), ['d'])
  t.same(structured(t, await mcp.call('abort_build', { ...ids, buildId: g.buildId }), AbortResult, 'abort_build').aborted.map((j: { name: string }) => j.name).sort(), ['a.1', 'b.1', 'c.1', 'd'])
  const log = structured(t, await mcp.call('get_my_access_log', { limit: 5 }), MyAccessLogPage, 'get_my_access_log')
  t.ok(Array.isArray(log.items), 'a page of the token\'s calls')

  const conflict = await mcp.call('restart_job', { ...ids, jobId: g.id('a') })
  t.equal(conflict.isError, true, 'a second restart: an isError result')
  t.match(textOf(conflict), /already been restarted.*MCP_CONFLICT/)
  const bad = await mcp.call('abort_build', { ...ids, buildId: g.buildId, reason: 'x' })
  t.match(textOf(bad), /unknown argument\(s\): reason/, 'an unknown argument is a tool error')

  const rows = await rowsOnce(app, db, r => r.token_id === full.token_id && r.via === 'mcp' && [...CONTROL_TOOLS, 'get_my_access_log'].includes(r.action), 9)
  t.same(rows.slice(0, 7).map(r => [r.action, r.status_code]), [
    ['restart_build', 201], ['restart_job', 201], ['rerun_job', 201], ['retry_failed_jobs', 201], ['abort_job', 200], ['abort_build', 200], ['get_my_access_log', 200]
  ], 'one audit row per tool call, via mcp')
  t.match(rows.slice(7).map(r => [r.action, r.status_code]), [['restart_job', 409], ['abort_build', 400]])
})

t.test('tools/list matches the token', async t => {
  const triggerTools = OPERATIONS.filter(op => op.trigger).map(op => op.name)
  t.same(triggerTools.sort(), ['trigger_build', ...CONTROL_TOOLS].sort(), 'the tools that change builds')
  for (const era of ['legacy', 'modern'] as const) {
    const reader = await connectV2(t, endpoint, readOnly.token, era)
    const writer = await connectV2(t, endpoint, full.token, era)
    const shown = (await reader.list()).map(tool => tool.name)
    t.same(shown, OPERATIONS.filter(op => !op.trigger).map(op => op.name), `${era}: a read-only token sees only the reads`)
    t.notOk(shown.some(name => triggerTools.includes(name)), `${era}: no trigger_build, restart, retry or abort`)
    const all = await writer.list()
    t.same(all.map(tool => tool.name), OPERATIONS.map(op => op.name), `${era}: a trigger token sees every tool`)
    const annotations = Object.fromEntries(all.map(tool => [tool.name, tool.annotations]))
    t.match(annotations, {
      abort_build: { destructiveHint: true, idempotentHint: true, readOnlyHint: false },
      abort_job: { destructiveHint: true, idempotentHint: true, readOnlyHint: false },
      restart_job: { destructiveHint: false, idempotentHint: true, readOnlyHint: false },
      rerun_job: { destructiveHint: false, idempotentHint: true, readOnlyHint: false },
      restart_build: { destructiveHint: false, idempotentHint: false, readOnlyHint: false },
      retry_failed_jobs: { destructiveHint: false, idempotentHint: false, readOnlyHint: false },
      get_my_access_log: { readOnlyHint: true, destructiveHint: false }
    }, `${era}: annotations say what each does`)

    const g = await makeBuild(db, [{ name: 'x', state: 'failure' }])
    const hidden = await reader.call('restart_job', { projectId: P.github, jobId: g.id('x') })
    t.equal(hidden.isError, true, `${era}: calling a hidden tool anyway is an isError result, not a protocol error`)
    t.match(textOf(hidden), /MCP_TRIGGER_FORBIDDEN/)
    t.equal((await jobRow(g.id('x'))).restarted, false, `${era}: and changes nothing`)
  }
  const v1 = await connectV1(t, endpoint, readOnly.token)
  t.same((await v1.list()).map(tool => tool.name), OPERATIONS.filter(op => !op.trigger).map(op => op.name), 'the v1 SDK client is shown the same reads')
})

t.test('GET /me/access-log and get_my_access_log: the presented token\'s own calls, newest first, paged', async t => {
  const mine = await mintToken(app, demo, { allow_trigger: true, name: 'control: log reader' })
  const other = await mintToken(app, demo, { name: 'control: someone else' })
  await http(mine.token, 'GET', '/projects')
  await http(mine.token, 'GET', `${pj}`)
  await post(mine.token, `${pj}/builds/${randomUUID()}/abort`)
  await http(other.token, 'GET', '/projects')
  // Rows are recorded once the answer has left: wait until this token's three are written.
  await rowsOnce(app, db, r => r.token_id === mine.token_id, 3)
  await rowsOnce(app, db, r => r.token_id === other.token_id, 1)

  const first = await http(mine.token, 'GET', '/me/access-log?limit=2')
  t.equal(first.status, 200)
  valid(t, MyAccessLogPage, first.body, 'access log page')
  t.equal(first.headers.get('ratelimit-policy'), `"introspect";q=${LIMITS.introspect};w=60`, 'spends introspect')
  t.match(first.body.items, [
    { action: 'abort_build', outcome: 'not_found', status_code: 404, project_id: P.github, via: 'rest', error: /no such build/ },
    { action: 'get_project', outcome: 'success', status_code: 200 }
  ], 'newest first, with outcome, status, project and the refusal reason')
  t.type(first.body.next_cursor, 'string')
  const second = await http(mine.token, 'GET', `/me/access-log/?limit=2&cursor=${encodeURIComponent(first.body.next_cursor as string)}`)
  t.match(second.body.items, [{ action: 'list_projects' }, { action: 'create_mcp_token', status_code: 201 }], 'the next page goes on where the first ended')
  t.equal(second.body.items.length, 2)
  t.equal(second.body.next_cursor, null, 'and is the last: the other token\'s calls are not there')

  refusal(t, await http(mine.token, 'GET', '/me/access-log?cursor=bm9wZQ'), 400, 'MCP_BAD_REQUEST', 'a cursor the gateway did not issue')
  refusal(t, await http(mine.token, 'GET', '/me/access-log?limit=0'), 400, 'FST_ERR_VALIDATION', 'a limit out of range')

  await rowsOnce(app, db, r => r.token_id === mine.token_id && r.action === 'get_my_access_log', 4)
  const mcp = await connectV2(t, endpoint, mine.token, 'legacy')
  const page = structured(t, await mcp.call('get_my_access_log', { limit: 20 }), MyAccessLogPage, 'get_my_access_log')
  const rest = page.items.filter((i: { via: string }) => i.via === 'rest').map((i: { action: string, status_code: number }) => [i.action, i.status_code])
  t.same(rest, [['get_my_access_log', 400], ['get_my_access_log', 400], ['get_my_access_log', 200], ['get_my_access_log', 200],
    ['abort_build', 404], ['get_project', 200], ['list_projects', 200], ['create_mcp_token', 201]],
  'this token\'s REST calls, the refused ones too, newest first, down to its creation (the dashboard\'s rows of it)')
  t.ok(page.items.every((i: { accessed_at: string }, n: number, all: Array<{ accessed_at: string }>) => n === 0 || (all[n - 1]?.accessed_at ?? '') >= i.accessed_at), 'newest first')
})
