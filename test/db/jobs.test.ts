// Jobs and test runs against real PostgreSQL: creation order, microsecond-exact cursors, filters, project isolation.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { getJob, listJobs, listTestRuns } from '../../db/jobs.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import type { Job, TestRun } from '../../schemas/data.js'
import { createTestDatabase } from '../helpers/db.js'

const testDb = await createTestDatabase(t)
const { db } = testDb
await seedFixture(db)
const { projects: P, builds: B, jobs: J, testRuns: T } = FIXTURE

t.test('listJobs: a build\'s jobs in creation order, paged', async t => {
  const all = await listJobs(db, P.github, B.b8, { limit: 100 })
  t.same(all.items.map(j => j.id), [J.b8Create, J.b8A, J.b8B, J.b8C])
  t.equal(all.next_cursor, null)
  t.match(all.items[2], { name: 'b', state: 'queued', start_date: null, end_date: null, type: 'run_project_container' })

  const seen: Job[] = []
  let cursor: string | undefined
  do {
    const page = await listJobs(db, P.github, B.b8, { limit: 1, cursor })
    seen.push(...page.items)
    cursor = page.next_cursor ?? undefined
  } while (cursor !== undefined)
  t.same(seen.map(j => j.id), all.items.map(j => j.id))
})

t.test('listJobs cursors keep microseconds (a JS Date would lose them)', async t => {
  const buildId = randomUUID()
  await db.insertInto('build').values({ id: buildId, build_number: 50, project_id: P.github }).execute()
  // Three jobs within one millisecond, inserted out of order, plus two with the same instant (id breaks the tie).
  const times = ['2024-02-01T00:00:00.000300Z', '2024-02-01T00:00:00.000100Z', '2024-02-01T00:00:00.000200Z', '2024-02-01T00:00:00.000200Z']
  const ids = times.map(() => randomUUID())
  await db.insertInto('job').values(times.map((at, i) => ({
    id: ids[i], state: 'finished' as const, type: 'run_project_container' as const, name: `j${i}`, build_id: buildId, project_id: P.github, created_at: at, definition: '{}'
  }))).execute()
  const sameInstant = [ids[2], ids[3]].sort()
  const expected = [ids[1], ...sameInstant, ids[0]]
  const seen: string[] = []
  let cursor: string | undefined
  do {
    const page = await listJobs(db, P.github, buildId, { limit: 1, cursor })
    seen.push(...page.items.map(j => j.id))
    cursor = page.next_cursor ?? undefined
  } while (cursor !== undefined && seen.length < 10)
  t.same(seen, expected)
})

t.test('listJobs: a build of another project, or none, is 404', async t => {
  await t.rejects(listJobs(db, P.github, B.public1, { limit: 10 }), { code: 'MCP_NOT_FOUND', statusCode: 404 })
  await t.rejects(listJobs(db, P.public, B.b1, { limit: 10 }), { code: 'MCP_NOT_FOUND' })
  await t.rejects(listJobs(db, P.github, randomUUID(), { limit: 10 }), { code: 'MCP_NOT_FOUND' })
  await t.rejects(listJobs(db, P.github, B.b1, { limit: 10, cursor: 'x' }), { code: 'MCP_BAD_REQUEST' })
})

t.test('getJob', async t => {
  const job = await getJob(db, P.github, J.b2Lint)
  t.same(job, {
    id: J.b2Lint,
    build_id: B.b2,
    name: 'lint',
    type: 'run_project_container',
    state: 'failure',
    start_date: '2024-01-01T01:04:00.000Z',
    end_date: '2024-01-01T01:11:00.000Z',
    created_at: '2024-01-01T01:03:00.000Z',
    message: 'lint found 3 problems',
    dependencies: [{ job: 'Create Jobs', job_id: J.b2Create, on: ['finished'] }]
  })
  await t.rejects(getJob(db, P.github, J.publicRun), { code: 'MCP_NOT_FOUND', statusCode: 404 }, 'a job of another project')
  await t.rejects(getJob(db, P.public, J.compile), { code: 'MCP_NOT_FOUND' })
})

t.test('dependencies of odd shapes are normalised, not fatal', async t => {
  await db.updateTable('job').set({ dependencies: JSON.stringify([{ job: 'x', 'job-id': 'not-a-uuid', on: ['finished', 3] }, 'junk', { on: [] }]) })
    .where('id', '=', J.b3A).execute()
  t.same((await getJob(db, P.github, J.b3A)).dependencies, [{ job: 'x', job_id: null, on: ['finished'] }])
  await db.updateTable('job').set({ dependencies: JSON.stringify({ not: 'an array' }) }).where('id', '=', J.b3B).execute()
  t.same((await getJob(db, P.github, J.b3B)).dependencies, [])
})

t.test('listTestRuns: by suite, name, id; state filter; paging', async t => {
  const all = await listTestRuns(db, P.github, J.compile, { limit: 100 })
  t.same(all.items.map(r => r.id), [T.noSuite, T.ok, T.failure, T.error, T.skipped], 'no suite sorts first, then api, db, ui')
  t.same(all.items.find(r => r.id === T.failure), {
    id: T.failure,
    suite: 'api',
    name: 'pages builds',
    state: 'failure',
    duration: 0.25,
    message: 'expected 3, got 2',
    stack: 'at builds.test.ts:10:5',
    timestamp: '2024-01-01T00:05:00.000Z'
  })
  t.same((await listTestRuns(db, P.github, J.compile, { limit: 100, state: 'failure' })).items.map(r => r.id), [T.failure])
  t.same((await listTestRuns(db, P.github, J.compile, { limit: 100, state: 'ok' })).items.map(r => r.id), [T.noSuite, T.ok])

  const seen: TestRun[] = []
  let cursor: string | undefined
  do {
    const page = await listTestRuns(db, P.github, J.compile, { limit: 2, cursor })
    seen.push(...page.items)
    cursor = page.next_cursor ?? undefined
  } while (cursor !== undefined)
  t.same(seen.map(r => r.id), all.items.map(r => r.id))
  t.same((await listTestRuns(db, P.github, J.b2Unit, { limit: 10 })), { items: [], next_cursor: null }, 'a job without tests')
})

t.test('listTestRuns: a job of another project is 404', async t => {
  await t.rejects(listTestRuns(db, P.public, J.compile, { limit: 10 }), { code: 'MCP_NOT_FOUND', statusCode: 404 })
  await t.rejects(listTestRuns(db, P.github, randomUUID(), { limit: 10 }), { code: 'MCP_NOT_FOUND' })
})
