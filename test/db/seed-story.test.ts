// The demo story (db/seed-story.ts) holds what SPEC §11's tools must find: a green branch, then a failing build with a compile error and a new, a known and a flaky failing test, and a running build.
import t from 'tap'
import { listBuilds } from '../../db/builds.js'
import { readJobLog } from '../../db/logs.js'
import { seedDemo } from '../../db/seed.js'
import { STORY } from '../../db/seed-story.js'
import { createTestDatabase } from '../helpers/db.js'

const { db } = await createTestDatabase(t)

t.test('seedDemo seeds the fixture and the story once', async t => {
  t.same(await seedDemo(db), { seeded: true })
  t.same(await seedDemo(db), { seeded: false }, 'seeding twice is a no-op')
})

t.test('the branch: green builds, then two failing ones, then one running', async t => {
  const page = await listBuilds(db, STORY.project, { branch: STORY.branch, limit: 20 })
  t.same(page.items.map(b => [b.build_number, b.status]), [[7, 'running'], [6, 'failure'], [5, 'failure'], [4, 'finished'], [3, 'finished'], [2, 'unstable'], [1, 'finished']])
  t.equal(page.items.find(b => b.build_number === 6)?.id, STORY.failing)
  t.equal(page.items.find(b => b.build_number === 4)?.id, STORY.lastGreen)
})

t.test('the failing build: a compile error in one job, three failing tests in another', async t => {
  const log = await readJobLog(db, STORY.project, STORY.jobs.compile, {})
  t.match(log.log, /error.*TS2322: .*Type 'string' is not assignable to type 'number'/)
  const failing = await db.selectFrom('test_run').select(['suite', 'name', 'state']).where('job_id', '=', STORY.jobs.test).where('state', '=', 'failure').orderBy('suite').execute()
  t.same(failing.map(r => r.suite), ['checkout', 'payment', 'search'])
})

t.test('the history behind new, known and flaky', async t => {
  const outcomes = async (name: string): Promise<string[]> => (await db.selectFrom('test_run')
    .innerJoin('job', 'job.id', 'test_run.job_id')
    .innerJoin('build', 'build.id', 'job.build_id')
    .select(['test_run.state', 'build.build_number'])
    .where('test_run.project_id', '=', STORY.project)
    .where('test_run.name', '=', name)
    .orderBy('build.build_number')
    .execute()).map(r => r.state)
  t.same(await outcomes(STORY.tests.new.name), ['ok', 'ok', 'ok', 'ok', 'ok', 'failure'], 'new: passed in the previous build')
  t.same(await outcomes(STORY.tests.known.name), ['ok', 'ok', 'ok', 'ok', 'failure', 'failure'], 'known: failed in the previous build too')
  const flaky = await outcomes(STORY.tests.flaky.name)
  const changes = flaky.slice(1).filter((s, i) => s !== flaky[i]).length
  t.ok(changes >= 2, `flaky: its outcome changed ${changes} times`)
})
