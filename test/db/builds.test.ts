// Build listing and detail against real PostgreSQL: order, keyset paging, filters in SQL, status derivation, project isolation.
import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import t from 'tap'
import { encodeCursor } from '../../lib/cursor.js'
import { getBuild, listBuilds, type ListBuildsOptions } from '../../db/builds.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import type { BuildStatus, BuildSummary } from '../../schemas/data.js'
import { createTestDatabase } from '../helpers/db.js'

const testDb = await createTestDatabase(t)
const { db } = testDb
await seedFixture(db)
const { projects: P, builds: B, commits: C } = FIXTURE

/** Every page of a listing, following next_cursor to the end. */
async function allPages (projectId: string, opts: Omit<ListBuildsOptions, 'cursor'>): Promise<BuildSummary[][]> {
  const pages: BuildSummary[][] = []
  let cursor: string | undefined
  do {
    const page = await listBuilds(db, projectId, { ...opts, cursor })
    pages.push(page.items)
    cursor = page.next_cursor ?? undefined
    if (pages.length > 1000) throw new Error('paging does not end')
  } while (cursor !== undefined)
  return pages
}

const EXPECTED_STATUS: Record<string, BuildStatus> = {
  [B.b1]: 'finished',
  [B.b2]: 'failure',
  [B.b3]: 'error',
  [B.b4]: 'killed',
  [B.b5]: 'unstable',
  [B.b6]: 'failure',
  [B.b6restart]: 'finished',
  [B.b7]: 'running',
  [B.b8]: 'running'
}
const NEWEST_FIRST = [B.b8, B.b7, B.b6restart, B.b6, B.b5, B.b4, B.b3, B.b2, B.b1]

t.test('newest first by build_number then restart_counter, with each status derived from the jobs', async t => {
  const page = await listBuilds(db, P.github, { limit: 100 })
  t.same(page.items.map(b => b.id), NEWEST_FIRST)
  t.equal(page.next_cursor, null)
  for (const build of page.items) t.equal(build.status, EXPECTED_STATUS[build.id], `build #${build.build_number}.${build.restart_counter}`)
  t.same(new Set(page.items.map(b => b.status)), new Set(['running', 'failure', 'error', 'killed', 'unstable', 'finished']), 'every status appears')
})

t.test('summary fields', async t => {
  const items = (await listBuilds(db, P.github, { limit: 100 })).items
  const b1 = items.find(b => b.id === B.b1)
  t.same(b1, {
    id: B.b1,
    build_number: 1,
    restart_counter: 1,
    commit_sha: C.main1,
    // The same sha is on branch 'elsewhere' in the public project: the join must stay in this project.
    branch: 'main',
    source: 'github',
    created_at: '2024-01-01T00:00:00.000Z',
    finished_at: '2024-01-01T00:11:00.000Z',
    status: 'finished'
  })
  const b7 = items.find(b => b.id === B.b7)
  t.equal(b7?.finished_at, null, 'no finish time while a job runs')
  t.equal(b7?.created_at, '2024-01-01T07:00:00.000Z')
  const b8 = items.find(b => b.id === B.b8)
  t.equal(b8?.finished_at, null, 'queued/scheduled jobs count as unfinished')
})

t.test('paging with cursors visits every build once, whatever the page size', async t => {
  for (const limit of [1, 2, 3, 4, 8, 9, 10]) {
    const pages = await allPages(P.github, { limit })
    const ids = pages.flat().map(b => b.id)
    t.same(ids, NEWEST_FIRST, `limit ${limit}: no gaps, no duplicates, same order`)
    t.ok(pages.every(p => p.length <= limit), `limit ${limit}: pages respect the limit`)
    t.equal(pages.length, Math.max(1, Math.ceil(NEWEST_FIRST.length / limit)), `limit ${limit}: no empty trailing page`)
  }
})

t.test('status filter runs in SQL: filtered pages are full and page exactly', async t => {
  for (const status of ['running', 'failure', 'error', 'killed', 'unstable', 'finished'] as const) {
    const expected = NEWEST_FIRST.filter(id => EXPECTED_STATUS[id] === status)
    for (const limit of [1, 2, 5]) {
      const pages = await allPages(P.github, { limit, status })
      t.same(pages.flat().map(b => b.id), expected, `${status}, limit ${limit}`)
      t.ok(pages.slice(0, -1).every(p => p.length === limit), `${status}, limit ${limit}: every page but the last is full`)
    }
  }
})

t.test('branch filter, alone and with a status', async t => {
  t.same((await listBuilds(db, P.github, { limit: 20, branch: 'feature/login' })).items.map(b => b.id), [B.b7, B.b2])
  t.same((await listBuilds(db, P.github, { limit: 20, branch: 'feature/login', status: 'failure' })).items.map(b => b.id), [B.b2])
  t.same((await allPages(P.github, { limit: 2, branch: 'main' })).flat().map(b => b.id), [B.b8, B.b6restart, B.b6, B.b4, B.b3, B.b1])
  t.same((await listBuilds(db, P.github, { limit: 20, branch: 'elsewhere' })).items, [], 'a branch of the same sha in another project does not match')
  t.same((await listBuilds(db, P.github, { limit: 20, branch: 'nope' })), { items: [], next_cursor: null })
})

t.test('a build with no jobs and one of an unknown commit still list', async t => {
  const jobless = randomUUID()
  const orphan = randomUUID()
  await db.insertInto('build').values([
    { id: jobless, build_number: 1, project_id: P.gerrit, commit_id: C.gerritMaster },
    { id: orphan, build_number: 2, project_id: P.gerrit, commit_id: 'f'.repeat(40) }
  ]).execute()
  await db.insertInto('job').values({ state: 'finished', type: 'create_job_matrix', name: 'Create Jobs', build_id: orphan, project_id: P.gerrit, definition: '{}' }).execute()
  const items = (await listBuilds(db, P.gerrit, { limit: 10 })).items
  t.match(items, [
    { id: orphan, commit_sha: 'f'.repeat(40), branch: null, status: 'finished' },
    { id: jobless, branch: 'master', created_at: null, finished_at: null, status: 'finished' }
  ])
  t.equal((await getBuild(db, P.gerrit, orphan)).commit, null)
})

t.test('many builds with restarts page exactly (keyset on build_number, restart_counter)', async t => {
  // 150 numbers, every third restarted twice: 250 builds in the test project.
  await sql`
    insert into build (id, build_number, restart_counter, project_id, commit_id)
    select gen_random_uuid(), n, r, ${P.test}, ${C.testMaster}
    from generate_series(1, 150) n, generate_series(1, 3) r
    where r = 1 or n % 3 = 0`.execute(db)
  const expected = await db.selectFrom('build').select(['id']).where('project_id', '=', P.test)
    .orderBy('build_number', 'desc').orderBy('restart_counter', 'desc').execute()
  t.equal(expected.length, 250)
  const seen = (await allPages(P.test, { limit: 7 })).flat()
  t.same(seen.map(b => b.id), expected.map(b => b.id))
  t.equal(new Set(seen.map(b => b.id)).size, 250)
})

t.test('cursors the gateway did not issue are 400', async t => {
  await t.rejects(listBuilds(db, P.github, { limit: 5, cursor: 'garbage!' }), { code: 'MCP_BAD_REQUEST', statusCode: 400 })
  await t.rejects(listBuilds(db, P.github, { limit: 5, cursor: encodeCursor('jobs', [randomUUID()]) }), { code: 'MCP_BAD_REQUEST' }, 'a cursor of another list')
  await t.rejects(listBuilds(db, P.github, { limit: 5, cursor: encodeCursor('builds', ['1', 1]) }), { code: 'MCP_BAD_REQUEST' }, 'wrong value types')
})

t.test('getBuild: the build, its commit and its jobs', async t => {
  const build = await getBuild(db, P.github, B.b2)
  t.match(build, {
    id: B.b2,
    build_number: 2,
    status: 'failure',
    branch: 'feature/login',
    commit: {
      sha: C.login1,
      message: 'Login form',
      author_name: 'Demo User',
      author_email: 'demo@infrabox.local',
      url: `https://git.example.com/commit/${C.login1}`,
      branch: 'feature/login'
    }
  })
  t.same(build.jobs.map(j => j.name), ['Create Jobs', 'unit', 'lint', 'e2e'], 'jobs in creation order')
  t.match(build.jobs[2], { state: 'failure', message: 'lint found 3 problems', dependencies: [{ job: 'Create Jobs', job_id: FIXTURE.jobs.b2Create, on: ['finished'] }] })
  t.equal((await getBuild(db, P.upload, B.upload1)).commit, null, 'upload builds have no commit')
})

t.test('ids of another project are 404, never a leak', async t => {
  await t.rejects(getBuild(db, P.github, B.public1), { code: 'MCP_NOT_FOUND', statusCode: 404 })
  await t.rejects(getBuild(db, P.public, B.b1), { code: 'MCP_NOT_FOUND' })
  await t.rejects(getBuild(db, P.github, randomUUID()), { code: 'MCP_NOT_FOUND' })
  const publicBuilds = (await listBuilds(db, P.public, { limit: 100 })).items
  t.same(publicBuilds.map(b => b.id), [B.public1])
  t.equal(publicBuilds[0]?.branch, 'elsewhere')
})
