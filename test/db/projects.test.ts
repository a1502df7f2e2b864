// Project scope and access against real PostgreSQL, on data made by seedDemo (which must be idempotent).
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { getProjectAccess, listProjects, scopedProjectIds } from '../../db/projects.js'
import { ARTIFACTS, FIXTURE, seedDemo } from '../../db/seed.js'
import type { Project } from '../../schemas/data.js'
import { createTestDatabase } from '../helpers/db.js'

const testDb = await createTestDatabase(t)
const { db } = testDb
const { users: U, projects: P } = FIXTURE

t.test('seedDemo seeds once, then does nothing', async t => {
  const root = await mkdtemp(path.join(tmpdir(), 'mcp-seed-'))
  t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
  t.same(await seedDemo(db, { artifactRoot: root }), { seeded: true })
  const count = async (): Promise<number> => Number((await db.selectFrom('job').select(eb => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n)
  const jobs = await count()
  t.same(await seedDemo(db, { artifactRoot: root }), { seeded: false })
  t.equal(await count(), jobs, 'no second copy')
  t.ok((await readFile(path.join(root, 'archive', FIXTURE.jobs.compile, ARTIFACTS.binary.filename))).equals(ARTIFACTS.binary.content), 'artifact files written')
})

t.test('listProjects: the owner\'s collaborations by name, no public-project exception', async t => {
  const page = await listProjects(db, { userId: U.demo, enabledProjects: {}, limit: 100 })
  t.same(page.items.map(p => p.name), ['demo-gerrit', 'demo-github', 'demo-shop', 'demo-test', 'demo-upload', 'demo-upload-empty'])
  t.notOk(page.items.some(p => p.id === P.public), 'the public project the user does not collaborate on is absent')
  t.same(page.items.find(p => p.id === P.github), { id: P.github, name: 'demo-github', type: 'github', public: false, role: 'Owner' })
  t.equal(page.items.find(p => p.id === P.gerrit)?.role, 'Administrator')
  t.equal(page.next_cursor, null)

  const seen: Project[] = []
  let cursor: string | undefined
  do {
    const next = await listProjects(db, { userId: U.demo, enabledProjects: {}, limit: 2, cursor })
    seen.push(...next.items)
    cursor = next.next_cursor ?? undefined
  } while (cursor !== undefined)
  t.same(seen, page.items, 'paged with cursors: same items, same order')

  t.same((await listProjects(db, { userId: U.outsider, enabledProjects: {}, limit: 10 })).items.map(p => p.id), [P.public])
  await t.rejects(listProjects(db, { userId: U.demo, enabledProjects: {}, limit: 2, cursor: 'nope' }), { code: 'MCP_BAD_REQUEST' })
})

t.test('listProjects: a scoped token sees its live, collaborated projects only', async t => {
  const now = new Date('2030-01-01T00:00:00Z')
  const items = async (enabledProjects: Record<string, string | null>): Promise<string[]> =>
    (await listProjects(db, { userId: U.demo, enabledProjects, limit: 100, now })).items.map(p => p.id)
  t.same(await items({ [P.github]: null, [P.upload]: '2031-01-01T00:00:00Z' }), [P.github, P.upload])
  t.same(await items({ [P.github]: null, [P.upload]: '2029-12-31T23:59:59Z' }), [P.github], 'a project whose expiry passed drops out')
  t.same(await items({ [P.public]: null }), [], 'in scope but not a collaboration: not listed')
  t.same(await items({ [P.upload]: '2020-01-01T00:00:00Z' }), [], 'every project expired: nothing, not everything')
  t.same(await items({ 'not-a-uuid': null, [P.github]: 'garbage' }), [], 'malformed keys and expiries are out of scope')
  t.same(scopedProjectIds({}, now), null, '{} means every collaboration')
})

t.test('getProjectAccess: the project and the role, or null', async t => {
  t.same(await getProjectAccess(db, U.demo, P.github), { project: { id: P.github, name: 'demo-github', type: 'github', public: false }, role: 'Owner' })
  t.same(await getProjectAccess(db, U.demo, P.public), { project: { id: P.public, name: 'public-elsewhere', type: 'github', public: true }, role: null }, 'exists, not a collaborator')
  t.equal(await getProjectAccess(db, U.demo, '00000000-0000-4000-8000-00ff00000000'), null, 'no such project')
})
