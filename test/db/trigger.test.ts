// Build triggers against real PostgreSQL: commit resolution, upload reuse, the exact Create Jobs job, distinct numbers under concurrency.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { CREATE_JOBS_DEFINITION, triggerBuild } from '../../db/trigger.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { createTestDatabase } from '../helpers/db.js'

const testDb = await createTestDatabase(t)
const { db } = testDb
await seedFixture(db)
const { projects: P, commits: C } = FIXTURE
const github = { id: P.github, type: 'github' } as const

async function buildRow (id: string) {
  return await db.selectFrom('build').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
}
async function jobsOf (buildId: string) {
  return await db.selectFrom('job').selectAll().where('build_id', '=', buildId).execute()
}

t.test('git project by branch: the newest commit of the branch, and exactly InfraBox\'s Create Jobs job', async t => {
  const result = await triggerBuild(db, github, { branch: 'feature/login', env: { GREETING: 'hi', EMPTY: '' } })
  t.match(result, { build: { build_number: 9, restart_counter: 1 } })
  t.same(Object.keys(result.build).sort(), ['build_number', 'id', 'restart_counter'])

  t.match(await buildRow(result.build.id), {
    project_id: P.github,
    build_number: 9,
    restart_counter: 1,
    commit_id: C.login2,
    source_upload_id: null,
    source: 'mcp',
    is_cronjob: false
  })
  const jobs = await jobsOf(result.build.id)
  t.equal(jobs.length, 1, 'one job: the scheduler expands it')
  t.match(jobs[0], {
    state: 'queued',
    type: 'create_job_matrix',
    name: 'Create Jobs',
    project_id: P.github,
    dockerfile: '',
    start_date: null,
    end_date: null,
    console: null,
    cluster_name: null
  })
  t.same(jobs[0]?.definition, { build_only: false, infrabox_file: 'infrabox.json', resources: { limits: { cpu: 0.5, memory: 1024 } } })
  t.same(jobs[0]?.definition, CREATE_JOBS_DEFINITION)
  t.same(jobs[0]?.env_var, { GREETING: 'hi', EMPTY: '' })
  t.same(jobs[0]?.repo, { commit: C.login2, clone_url: 'https://github.com/demo/demo-github.git', clone_all: true })
})

t.test('git project by sha: full, prefix, with a matching branch; env {} stores null', async t => {
  const full = await triggerBuild(db, github, { sha: C.release1, env: {} })
  t.equal((await buildRow(full.build.id)).commit_id, C.release1)
  t.equal((await jobsOf(full.build.id))[0]?.env_var, null, 'no environment: null, as InfraBox stores it')

  const prefix = await triggerBuild(db, github, { sha: C.main2.slice(0, 10).toUpperCase() })
  t.equal((await buildRow(prefix.build.id)).commit_id, C.main2, 'an unambiguous prefix, any case')

  const both = await triggerBuild(db, github, { sha: C.main1, branch: 'main' })
  t.equal((await buildRow(both.build.id)).commit_id, C.main1)
  t.same((await jobsOf(both.build.id))[0]?.repo, { commit: C.main1, clone_url: 'https://github.com/demo/demo-github.git', clone_all: true },
    'the clone URL of this project\'s repository, not the other project\'s that knows the same sha')
})

t.test('git project: what cannot be resolved is 422', async t => {
  const before = await db.selectFrom('build').select(eb => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  await t.rejects(triggerBuild(db, github, {}), { code: 'MCP_UNPROCESSABLE', statusCode: 422 }, 'neither branch nor sha')
  await t.rejects(triggerBuild(db, github, { sha: 'a'.repeat(40) }), { code: 'MCP_UNPROCESSABLE' }, 'unknown sha')
  await t.rejects(triggerBuild(db, github, { branch: 'no-such-branch' }), { code: 'MCP_UNPROCESSABLE' }, 'branch without commits')
  await t.rejects(triggerBuild(db, github, { sha: C.main1, branch: 'feature/login' }), { code: 'MCP_UNPROCESSABLE' }, 'commit not on the branch')
  await t.rejects(triggerBuild(db, github, { branch: 'elsewhere' }), { code: 'MCP_UNPROCESSABLE' }, 'another project\'s branch')
  await t.rejects(triggerBuild(db, { id: P.gerrit, type: 'gerrit' }, { sha: C.main1 }), { code: 'MCP_UNPROCESSABLE' }, 'another project\'s sha')
  await t.rejects(triggerBuild(db, github, { sha: 'xyz' }), { code: 'MCP_BAD_REQUEST' }, 'not hex')

  // Two commits sharing a 7-digit prefix make that prefix ambiguous.
  const twin = (suffix: string) => ({
    id: `abcdef1${suffix}`,
    repository_id: FIXTURE.repositories.github,
    project_id: P.github,
    timestamp: new Date(),
    author_name: 'a',
    author_email: 'a@x',
    committer_name: 'a',
    committer_email: 'a@x',
    url: 'u',
    branch: 'twins'
  })
  await db.insertInto('commit').values([twin('0'.repeat(33)), twin('1'.repeat(33))]).execute()
  await t.rejects(triggerBuild(db, github, { sha: 'abcdef1' }), { code: 'MCP_UNPROCESSABLE', message: /ambiguous/ })
  t.ok(await triggerBuild(db, github, { sha: `abcdef1${'1'.repeat(33)}` }), 'the full sha is not ambiguous')

  const after = await db.selectFrom('build').select(eb => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  t.equal(Number(after.n), Number(before.n) + 1, 'refused triggers wrote nothing')
})

t.test('gerrit and test projects build commits too; a missing clone URL falls back to the last Create Jobs job', async t => {
  const gerrit = { id: P.gerrit, type: 'gerrit' } as const
  const first = await triggerBuild(db, gerrit, { branch: 'master' })
  t.equal(first.build.build_number, 1, 'the first build of a project is number 1')
  t.same((await jobsOf(first.build.id))[0]?.repo, { commit: C.gerritMaster, clone_url: 'ssh://infrabox@gerrit.example.com:29418/demo-gerrit', clone_all: true })

  // InfraBox's gerrit projects keep '' in repository.clone_url.
  await db.updateTable('repository').set({ clone_url: '' }).where('id', '=', FIXTURE.repositories.gerrit).execute()
  const second = await triggerBuild(db, gerrit, { sha: C.gerritMaster })
  t.equal(second.build.build_number, 2)
  t.same((await jobsOf(second.build.id))[0]?.repo, { commit: C.gerritMaster, clone_url: 'ssh://infrabox@gerrit.example.com:29418/demo-gerrit', clone_all: true })

  const testProject = await triggerBuild(db, { id: P.test, type: 'test' }, { sha: C.testMaster })
  t.match(await buildRow(testProject.build.id), { build_number: 1, commit_id: C.testMaster, source: 'mcp' })
})

t.test('upload projects: 409 without an earlier upload, else a rebuild of the newest one', async t => {
  await t.rejects(triggerBuild(db, { id: P.uploadEmpty, type: 'upload' }, {}), { code: 'MCP_CONFLICT', statusCode: 409 })
  const upload = { id: P.upload, type: 'upload' } as const
  await t.rejects(triggerBuild(db, upload, { branch: 'main' }), { code: 'MCP_UNPROCESSABLE' }, 'branch/sha do not apply to uploads')

  const result = await triggerBuild(db, upload, { env: { A: '1' } })
  t.equal(result.build.build_number, 2)
  t.match(await buildRow(result.build.id), { commit_id: null, source_upload_id: FIXTURE.sourceUploads.upload, source: 'mcp', restart_counter: 1 })
  const [job] = await jobsOf(result.build.id)
  t.match(job, { state: 'queued', type: 'create_job_matrix', name: 'Create Jobs', dockerfile: '', repo: null })
  t.same(job?.env_var, { A: '1' })
  t.same(job?.definition, CREATE_JOBS_DEFINITION)

  // A build without an upload (what the defective Python trigger left behind) does not poison later triggers.
  await db.insertInto('build').values({ id: randomUUID(), build_number: 3, restart_counter: 0, project_id: P.upload, source: 'mcp' }).execute()
  const next = await triggerBuild(db, upload, {})
  t.match(await buildRow(next.build.id), { build_number: 4, source_upload_id: FIXTURE.sourceUploads.upload })
})

t.test('20 concurrent triggers on one project get 20 distinct consecutive numbers', async t => {
  const { last } = await db.selectFrom('build').select(eb => eb.fn.max('build_number').as('last'))
    .where('project_id', '=', P.github).executeTakeFirstOrThrow()
  const results = await Promise.all(Array.from({ length: 20 }, async () => await triggerBuild(db, github, { branch: 'main' })))
  const numbers = results.map(r => r.build.build_number).sort((a, b) => a - b)
  t.same(numbers, Array.from({ length: 20 }, (_, i) => (last ?? 0) + 1 + i))
  const jobs = await db.selectFrom('job').select('build_id')
    .where('build_id', 'in', results.map(r => r.build.id)).where('name', '=', 'Create Jobs').execute()
  t.equal(jobs.length, 20, 'every build has its Create Jobs job')
})
