// Acting on builds against real PostgreSQL and the InfraBox subset: every rule of SPEC §14's table, its refusals, and the races.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { abortBuild, abortJob, rerunJob, restartBuild, restartedName, restartJob, retryFailedJobs } from '../../db/control.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { getBuild, listBuilds } from '../../db/builds.js'
import { createTestDatabase } from '../helpers/db.js'
import { holdLock, lockWaiters as waitForLockWaiters, makeBuild as makeBuildIn, type JobSpec } from '../helpers/builds.js'

const testDb = await createTestDatabase(t)
const { db } = testDb
await seedFixture(db)
const { projects: P, users: U, commits: C } = FIXTURE
const actor = { userId: U.demo, tokenId: '0123456789abcdef' }

const makeBuild = async (specs: JobSpec[], opts: { createJobs?: boolean, project?: string } = {}) => await makeBuildIn(db, specs, opts)

const jobById = async (id: string) => await db.selectFrom('job').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
const jobsOf = async (buildId: string) => await db.selectFrom('job').selectAll().where('build_id', '=', buildId).orderBy('created_at').orderBy('name').execute()
const abortsOf = async (ids: string[]) => ids.length === 0 ? [] : await db.selectFrom('abort').selectAll().where('job_id', 'in', ids).execute()

t.test('clone names: .1 appended to the last segment, a trailing .N raised', async t => {
  t.equal(restartedName('test'), 'test.1')
  t.equal(restartedName('test.1'), 'test.2')
  t.equal(restartedName('build/test.9'), 'build/test.10')
  t.equal(restartedName('build.2/test'), 'build.2/test.1', 'only the last segment counts')
  t.equal(restartedName('v1.0-rc'), 'v1.0-rc.1', 'a .N inside the name is not a counter')
})

t.test('restart_job: the job and its dependents, transitively, cloned as InfraBox clones them', async t => {
  const { buildId, ids } = await makeBuild([
    { name: 'compile', state: 'failure' },
    { name: 'test', state: 'skipped', deps: ['compile'] },
    { name: 'deploy', state: 'skipped', deps: ['test', 'Create Jobs'] },
    { name: 'lint', state: 'finished' }
  ])
  const result = await restartJob(db, actor, P.github, ids['compile'] ?? '')
  t.same(result.jobs.map(j => [j.name, j.restarted_from.name, j.restarted_from.state]),
    [['compile.1', 'compile', 'failure'], ['test.1', 'test', 'skipped'], ['deploy.1', 'deploy', 'skipped']])
  t.equal(result.build_id, buildId)

  const clone = Object.fromEntries(result.jobs.map(j => [j.restarted_from.name, j.id]))
  const compile1 = await jobById(clone['compile'] ?? '')
  t.match(compile1, {
    state: 'queued',
    build_id: buildId,
    project_id: P.github,
    type: 'run_project_container',
    dockerfile: 'infrabox/Dockerfile',
    name: 'compile.1',
    restarted: false,
    cluster_name: 'master',
    console: null,
    start_date: null,
    end_date: null,
    message: null
  })
  t.same(compile1.definition, { name: 'compile', type: 'docker' }, 'definition copied')
  t.same(compile1.env_var, { JOB: 'compile' }, 'env_var copied')
  t.same(compile1.build_arg, { ARG: '1' }, 'build_arg copied')
  t.same(compile1.dependencies, [{ job: 'Create Jobs', 'job-id': ids['Create Jobs'], on: ['finished'] }], 'a dependency on a job not restarted is kept')
  t.same((await jobById(clone['test'] ?? '')).dependencies, [{ job: 'compile.1', 'job-id': clone['compile'], on: ['finished'] }], 'rewired to the clone')
  t.same((await jobById(clone['deploy'] ?? '')).dependencies, [
    { job: 'test.1', 'job-id': clone['test'], on: ['finished'] },
    { job: 'Create Jobs', 'job-id': ids['Create Jobs'], on: ['finished'] }
  ], 'every entry naming a clone rewired, the rest kept in order')

  for (const name of ['compile', 'test', 'deploy']) t.equal((await jobById(ids[name] ?? '')).restarted, true, `${name} marked restarted`)
  t.equal((await jobById(ids['lint'] ?? '')).restarted, false, 'an unrelated job untouched')
  const notes = await db.selectFrom('console').select(['job_id', 'output']).where('job_id', 'in', result.jobs.map(j => j.id)).execute()
  t.equal(notes.length, 3, 'a console note per clone')
  t.equal(notes[0]?.output, 'Job restarted by demo via MCP token 0123456789abcdef\n')

  await t.rejects(restartJob(db, actor, P.github, ids['compile'] ?? ''), { statusCode: 409, code: 'MCP_CONFLICT', message: /already been restarted/ })
  await t.rejects(restartJob(db, actor, P.github, ids['test'] ?? ''), { statusCode: 409, code: 'MCP_CONFLICT' }, 'a restarted dependent too')

  await db.updateTable('job').set({ state: 'failure' }).where('id', 'in', result.jobs.map(j => j.id)).execute()
  const again = await restartJob(db, actor, P.github, clone['compile'] ?? '')
  t.same(again.jobs.map(j => j.name), ['compile.2', 'test.2', 'deploy.2'], 'the clone of a clone counts up')
})

t.test('restart_job refusals', async t => {
  const { ids } = await makeBuild([
    { name: 'running', state: 'running' },
    { name: 'queued', state: 'queued' },
    { name: 'wait', state: 'finished', type: 'wait' },
    { name: 'parent', state: 'failure' },
    { name: 'child', state: 'running', deps: ['parent'] },
    { name: 'compose', state: 'unstable', type: 'run_docker_compose' }
  ])
  await t.rejects(restartJob(db, actor, P.github, ids['Create Jobs'] ?? ''), { statusCode: 409, message: /Create Jobs.*restart_build/ }, 'Create Jobs: 409')
  await t.rejects(restartJob(db, actor, P.github, ids['running'] ?? ''), { statusCode: 409, message: /running/ }, 'a running job: 409')
  await t.rejects(restartJob(db, actor, P.github, ids['queued'] ?? ''), { statusCode: 409, code: 'MCP_CONFLICT' }, 'a queued job: 409')
  await t.rejects(restartJob(db, actor, P.github, ids['wait'] ?? ''), { statusCode: 409, message: /type wait/ }, 'a wait job: 409')
  await t.rejects(restartJob(db, actor, P.github, ids['parent'] ?? ''), { statusCode: 409, message: /child.*still running/ }, 'a dependent still running: 409')
  t.equal((await jobById(ids['parent'] ?? '')).restarted, false, 'nothing marked by a refusal')
  await t.rejects(restartJob(db, actor, P.upload, ids['compose'] ?? ''), { statusCode: 404, code: 'MCP_NOT_FOUND' }, 'a job of another project: 404')
  await t.rejects(restartJob(db, actor, P.github, randomUUID()), { statusCode: 404, code: 'MCP_NOT_FOUND' }, 'an unknown job: 404')
  const ok = await restartJob(db, actor, P.github, ids['compose'] ?? '')
  t.same(ok.jobs.map(j => j.name), ['compose.1'], 'a docker-compose job in unstable restarts')
})

t.test('rerun_job: the job alone; its dependents stay and point at the clone', async t => {
  const { ids } = await makeBuild([
    { name: 'compile', state: 'finished' },
    { name: 'test', state: 'failure', deps: ['compile'] },
    { name: 'report', state: 'finished', deps: ['test'] },
    { name: 'archive', state: 'finished', deps: ['report'] }
  ])
  const result = await rerunJob(db, actor, P.github, ids['test'] ?? '')
  t.same(result.jobs.map(j => j.name), ['test.1'])
  const clone = result.jobs[0]?.id ?? ''
  t.same((await jobById(clone)).dependencies, [{ job: 'compile', 'job-id': ids['compile'], on: ['finished'] }], 'the clone keeps its parents')
  const report = await jobById(ids['report'] ?? '')
  t.same(report.dependencies, [{ job: 'test.1', 'job-id': clone, on: ['finished'] }], 'the dependent rewired in place')
  t.equal(report.restarted, false, 'the dependent is not restarted')
  t.same((await jobById(ids['archive'] ?? '')).dependencies, [{ job: 'report', 'job-id': ids['report'], on: ['finished'] }], 'a dependent of a dependent untouched')
  t.equal((await jobById(ids['test'] ?? '')).restarted, true)
  t.equal((await jobsOf(result.build_id)).length, 6, 'one job added')
  await t.rejects(rerunJob(db, actor, P.github, ids['test'] ?? ''), { statusCode: 409, code: 'MCP_CONFLICT' }, 'a second rerun: 409')

  const busy = await makeBuild([
    { name: 'compile', state: 'running' },
    { name: 'test', state: 'failure', deps: ['compile'] }
  ])
  await t.rejects(rerunJob(db, actor, P.github, busy.ids['test'] ?? ''), { statusCode: 409, message: /depends on compile, which is still running/ })
  await t.rejects(rerunJob(db, actor, P.github, busy.ids['Create Jobs'] ?? ''), { statusCode: 409, code: 'MCP_CONFLICT' }, 'Create Jobs: 409')
})

t.test('retry_failed_jobs: every failed job with its dependents, each cloned once, in one transaction', async t => {
  const { buildId, ids } = await makeBuild([
    { name: 'a', state: 'unstable' },
    { name: 'b', state: 'failure', deps: ['a'] },
    { name: 'c', state: 'skipped', deps: ['b'] },
    { name: 'd', state: 'error' },
    { name: 'e', state: 'killed' },
    { name: 'ok', state: 'finished' },
    { name: 'w', state: 'failure', type: 'wait' }
  ])
  const result = await retryFailedJobs(db, actor, P.github, buildId)
  t.same(result.jobs.map(j => j.name).sort(), ['a.1', 'b.1', 'c.1', 'd.1', 'e.1'], 'b is both failed and a dependent of a: one clone')
  const clone = Object.fromEntries(result.jobs.map(j => [j.restarted_from.name, j.id]))
  t.same((await jobById(clone['b'] ?? '')).dependencies, [{ job: 'a.1', 'job-id': clone['a'], on: ['finished'] }])
  t.same((await jobById(clone['c'] ?? '')).dependencies, [{ job: 'b.1', 'job-id': clone['b'], on: ['finished'] }])
  t.equal((await jobById(ids['ok'] ?? '')).restarted, false)
  t.equal((await jobById(ids['w'] ?? '')).restarted, false, 'a failed wait job is not retried')

  await t.rejects(retryFailedJobs(db, actor, P.github, buildId), { statusCode: 409, message: /no job of this build is in failure/ }, 'the originals are restarted now: nothing left')

  const green = await makeBuild([{ name: 'x', state: 'finished' }])
  await t.rejects(retryFailedJobs(db, actor, P.github, green.buildId), { statusCode: 409, code: 'MCP_CONFLICT' }, 'a green build: 409')
  const brokenMatrix = await makeBuild([])
  await db.updateTable('job').set({ state: 'failure' }).where('build_id', '=', brokenMatrix.buildId).execute()
  await t.rejects(retryFailedJobs(db, actor, P.github, brokenMatrix.buildId), { statusCode: 409, message: /Create Jobs.*restart_build/ })
  await t.rejects(retryFailedJobs(db, actor, P.upload, buildId), { statusCode: 404, code: 'MCP_NOT_FOUND' }, 'a build of another project: 404')

  const partly = await makeBuild([{ name: 'p', state: 'failure' }, { name: 'q', state: 'running', deps: ['p'] }, { name: 'r', state: 'error' }])
  await t.rejects(retryFailedJobs(db, actor, P.github, partly.buildId), { statusCode: 409, message: /q.*still running/ })
  const untouched = await jobsOf(partly.buildId)
  t.ok(untouched.every(j => j.restarted === false) && untouched.length === 4, 'all or nothing: r was not restarted either')
})

t.test('restart_build: the same commit, number and upload, restart_counter = highest + 1, Create Jobs cloned', async t => {
  const { buildId, buildNumber } = await makeBuild([{ name: 'x', state: 'failure' }])
  // A restart InfraBox made earlier (counter 2) that is not the one restarted now.
  await db.insertInto('build').values({ id: randomUUID(), build_number: buildNumber, project_id: P.github, restart_counter: 2, commit_id: C.main1 }).execute()
  const result = await restartBuild(db, actor, P.github, buildId)
  t.match(result, { build: { build_number: buildNumber, restart_counter: 3 } })
  const row = await db.selectFrom('build').selectAll().where('id', '=', result.build.id).executeTakeFirstOrThrow()
  t.match(row, { project_id: P.github, build_number: buildNumber, restart_counter: 3, commit_id: C.main1, source_upload_id: null, source: 'mcp' })
  const jobs = await jobsOf(result.build.id)
  t.equal(jobs.length, 1, 'only the Create Jobs job: the scheduler expands it')
  t.match(jobs[0], { state: 'queued', type: 'create_job_matrix', name: 'Create Jobs', dockerfile: '', cluster_name: null, restarted: false })
  t.same(jobs[0]?.repo, { commit: C.main1, clone_url: 'https://example.invalid/demo.git', clone_all: true })
  t.same(jobs[0]?.env_var, { GREETING: 'hi' })
  t.same(jobs[0]?.definition, { build_only: false, infrabox_file: 'infrabox.json', resources: { limits: { cpu: 0.5, memory: 1024 } } })
  const note = await db.selectFrom('console').select('output').where('job_id', '=', jobs[0]?.id ?? '').execute()
  t.same(note.map(n => n.output), ['Build restarted by demo via MCP token 0123456789abcdef\n'])

  const upload = await restartBuild(db, actor, P.upload, FIXTURE.builds.upload1)
  const uploadRow = await db.selectFrom('build').selectAll().where('id', '=', upload.build.id).executeTakeFirstOrThrow()
  t.equal(uploadRow.source_upload_id, FIXTURE.sourceUploads.upload, 'an upload build keeps its upload')

  const both = await Promise.all([restartBuild(db, actor, P.github, buildId), restartBuild(db, actor, P.github, buildId)])
  t.same(both.map(b => b.build.restart_counter).sort(), [4, 5], 'concurrent restarts get distinct counters')

  const bare = await makeBuild([{ name: 'y', state: 'failure' }], { createJobs: false })
  await t.rejects(restartBuild(db, actor, P.github, bare.buildId), { statusCode: 409, message: /no Create Jobs job/ }, 'defect-7 build: 409')
  await t.rejects(restartBuild(db, actor, P.upload, buildId), { statusCode: 404, code: 'MCP_NOT_FOUND' }, 'a build of another project: 404')
})

t.test('abort_build / abort_job: abort rows for what is still queued, scheduled or running', async t => {
  const { buildId, ids } = await makeBuild([
    { name: 'q', state: 'queued' }, { name: 's', state: 'scheduled' }, { name: 'r', state: 'running' }, { name: 'f', state: 'failure' }
  ])
  const result = await abortBuild(db, actor, P.github, buildId)
  t.same(result.aborted.map(j => [j.name, j.state]), [['q', 'queued'], ['s', 'scheduled'], ['r', 'running']])
  const rows = await abortsOf(Object.values(ids))
  t.same(rows.map(r => r.job_id).sort(), [ids['q'], ids['s'], ids['r']].sort(), 'one row per active job, none for the finished ones')
  t.ok(rows.every(r => r.user_id === U.demo), 'user_id is the token\'s owner')
  const again = await abortBuild(db, actor, P.github, buildId)
  t.equal(again.aborted.length, 3, 'asked again: the same answer')
  t.equal((await abortsOf(Object.values(ids))).length, 3, '… and no second row while one waits')

  const one = await makeBuild([{ name: 'r', state: 'running' }, { name: 'q', state: 'queued' }])
  const single = await abortJob(db, actor, P.github, one.ids['r'] ?? '')
  t.same(single, { build_id: one.buildId, aborted: [{ id: one.ids['r'], name: 'r', state: 'running' }] })
  t.same((await abortsOf([one.ids['r'] ?? '', one.ids['q'] ?? ''])).map(r => r.job_id), [one.ids['r']], 'only that job')
  await t.rejects(abortJob(db, actor, P.github, ids['f'] ?? ''), { statusCode: 409, message: /already ended \(failure\)/ })
  await t.rejects(abortJob(db, actor, P.upload, one.ids['q'] ?? ''), { statusCode: 404, code: 'MCP_NOT_FOUND' })

  const done = await makeBuild([{ name: 'x', state: 'finished' }])
  t.same((await abortBuild(db, actor, P.github, done.buildId)).aborted, [], 'nothing running: an empty list')
  await t.rejects(abortBuild(db, actor, P.github, randomUUID()), { statusCode: 404, code: 'MCP_NOT_FOUND' })
})

/** A promise that never rejects (the error is its value), so one that fails while the test waits is not unhandled. */
const settle = async <T>(p: Promise<T>): Promise<T | Error> => await p.catch((err: unknown) => err instanceof Error ? err : new Error(String(err)))

const holder = async (statement: string, params: unknown[]) => await holdLock(testDb.url, statement, params)
const lockWaiters = async (n: number): Promise<void> => { await waitForLockWaiters(db, n) }

t.test('two restarts of one job at once: one wins, the other is 409', async t => {
  const { buildId, ids } = await makeBuild([{ name: 'flaky', state: 'failure' }, { name: 'after', state: 'skipped', deps: ['flaky'] }])
  const gate = await holder('SELECT id FROM build WHERE id = $1 FOR UPDATE', [buildId])
  const racing = [settle(restartJob(db, actor, P.github, ids['flaky'] ?? '')), settle(restartJob(db, actor, P.github, ids['flaky'] ?? ''))]
  await lockWaiters(2)
  await gate.release()
  const outcomes = (await Promise.all(racing)).map(o => o instanceof Error ? (o as { statusCode?: number }).statusCode : 'ok')
  t.same(outcomes.sort(), [409, 'ok'], 'one restart, one 409')
  t.same((await jobsOf(buildId)).map(j => j.name).sort(), ['Create Jobs', 'after', 'after.1', 'flaky', 'flaky.1'], 'one set of clones')
})

t.test('compare-and-set: a restart InfraBox\'s own API commits first (without the build lock) makes ours 409', async t => {
  const { buildId, ids } = await makeBuild([{ name: 'flaky', state: 'failure' }])
  const infrabox = await holder('UPDATE job SET restarted = true WHERE id = $1', [ids['flaky']])
  const ours = settle(restartJob(db, actor, P.github, ids['flaky'] ?? ''))
  await lockWaiters(1) // ours read the job unrestarted and now waits on its row in the compare-and-set
  await infrabox.release()
  t.match(await ours, { statusCode: 409, message: /another restart/ })
  t.same((await jobsOf(buildId)).map(j => j.name).sort(), ['Create Jobs', 'flaky'], 'no clone')
})

t.test('a restart during an abort: the two run one after the other, never interleaved', async t => {
  t.test('restart first: the abort reaches the clones it queued', async t => {
    const { buildId, ids } = await makeBuild([{ name: 'flaky', state: 'failure' }, { name: 'slow', state: 'running' }])
    const gate = await holder('SELECT id FROM build WHERE id = $1 FOR UPDATE', [buildId])
    const restart = restartJob(db, actor, P.github, ids['flaky'] ?? '')
    await lockWaiters(1)
    const abort = abortBuild(db, actor, P.github, buildId)
    await lockWaiters(2)
    await gate.release()
    const [restarted, aborted] = await Promise.all([restart, abort])
    t.same(aborted.aborted.map(j => j.name).sort(), ['flaky.1', 'slow'], 'the clone is aborted with the running job')
    t.same((await abortsOf([restarted.jobs[0]?.id ?? ''])).length, 1)
  })
  t.test('abort first: the restart comes after it and its clone runs', async t => {
    const { buildId, ids } = await makeBuild([{ name: 'flaky', state: 'failure' }, { name: 'slow', state: 'running' }])
    const gate = await holder('SELECT id FROM build WHERE id = $1 FOR UPDATE', [buildId])
    const abort = abortBuild(db, actor, P.github, buildId)
    await lockWaiters(1)
    const restart = restartJob(db, actor, P.github, ids['flaky'] ?? '')
    await lockWaiters(2)
    await gate.release()
    const [aborted, restarted] = await Promise.all([abort, restart])
    t.same(aborted.aborted.map(j => j.name), ['slow'])
    t.same(await abortsOf([restarted.jobs[0]?.id ?? '']), [], 'the clone queued after the abort is not aborted')
  })
})

t.test('a retried build is judged by its clones: the restarted originals no longer count in its status', async t => {
  const { buildId, ids } = await makeBuild([{ name: 'flaky', state: 'failure' }, { name: 'after', state: 'queued', deps: ['flaky'] }])
  const statusOf = async (): Promise<string> => (await getBuild(db, P.github, buildId)).status
  t.equal(await statusOf(), 'running', 'a queued job: running')
  await db.updateTable('job').set({ state: 'skipped' }).where('id', '=', ids['after'] ?? '').execute()
  t.equal(await statusOf(), 'failure')
  const retried = await retryFailedJobs(db, actor, P.github, buildId)
  t.equal(await statusOf(), 'running', 'the clones are queued')
  await db.updateTable('job').set({ state: 'finished' }).where('id', 'in', retried.jobs.map(j => j.id)).execute()
  t.equal(await statusOf(), 'finished', 'the clones passed: the build is green, the failed original replaced')
  const listed = await listBuilds(db, P.github, { limit: 100, status: 'finished' })
  t.ok(listed.items.some(b => b.id === buildId), 'the status filter agrees')
})
