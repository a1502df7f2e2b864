// Idempotent triggers on real PostgreSQL: one build per key, the first answer replayed, a changed request refused, 20 racing retries.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { sql } from 'kysely'
import { triggerOnce, triggerRequestHash } from '../../db/idempotency.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { createTestDatabase } from '../helpers/db.js'

const { db } = await createTestDatabase(t)
await seedFixture(db)
const github = { id: FIXTURE.projects.github, type: 'github' } as const
const TOKEN = '0123456789abcdef'

const buildsOfProject = async (): Promise<number> => Number((await db.selectFrom('build').select(eb => eb.fn.countAll<string>().as('n')).where('project_id', '=', github.id).executeTakeFirstOrThrow()).n)

t.test('the same key: one build, the same answer again', async t => {
  const before = await buildsOfProject()
  const first = await triggerOnce(db, TOKEN, 'key-1', github, { branch: 'main', env: { A: '1', B: '2' } })
  t.equal(first.replayed, false)
  const again = await triggerOnce(db, TOKEN, 'key-1', github, { env: { B: '2', A: '1' }, branch: 'main' })
  t.equal(again.replayed, true)
  t.same(again.result, first.result, 'the first answer, exactly')
  t.equal(await buildsOfProject(), before + 1, 'one build')
  const other = await triggerOnce(db, 'fedcba9876543210', 'key-1', github, { branch: 'main', env: { A: '1', B: '2' } })
  t.equal(other.replayed, false, 'keys are per token')
  t.not(other.result.build.id, first.result.build.id)
})

t.test('the same key with another request is 422, and starts nothing', async t => {
  await triggerOnce(db, TOKEN, 'key-2', github, { branch: 'main' })
  const before = await buildsOfProject()
  for (const body of [{ branch: 'feature/login' }, { branch: 'main', env: { X: '1' } }, { sha: FIXTURE.commits.main3 }]) {
    await t.rejects(triggerOnce(db, TOKEN, 'key-2', github, body), { statusCode: 422, code: 'MCP_UNPROCESSABLE' }, JSON.stringify(body))
  }
  await t.rejects(triggerOnce(db, TOKEN, 'key-2', { id: FIXTURE.projects.gerrit, type: 'gerrit' }, { branch: 'main' }), { statusCode: 422, code: 'MCP_UNPROCESSABLE' }, 'another project')
  t.equal(await buildsOfProject(), before)
  t.equal(triggerRequestHash(github.id, { branch: 'main', env: {} }), triggerRequestHash(github.id.toUpperCase(), { branch: 'main' }), 'an empty env is no env')
})

t.test('a failed trigger is not remembered', async t => {
  await t.rejects(triggerOnce(db, TOKEN, 'key-3', github, { branch: 'no-such-branch' }), { statusCode: 422, code: 'MCP_UNPROCESSABLE' })
  t.equal((await db.selectFrom('mcp_trigger_idempotency').select('token_id').where('idempotency_key', '=', 'key-3').execute()).length, 0)
  const ok = await triggerOnce(db, TOKEN, 'key-3', github, { branch: 'main' })
  t.equal(ok.replayed, false, 'the corrected request may use the key')
})

t.test('after 24 h a key starts a new build', async t => {
  const first = await triggerOnce(db, TOKEN, 'key-4', github, { branch: 'main' })
  await db.updateTable('mcp_trigger_idempotency').set({ created_at: sql<Date>`now() - interval '25 hours'` }).where('idempotency_key', '=', 'key-4').execute()
  const later = await triggerOnce(db, TOKEN, 'key-4', github, { branch: 'main' })
  t.equal(later.replayed, false)
  t.not(later.result.build.id, first.result.build.id)
})

t.test('20 concurrent retries with one key start exactly one build', async t => {
  const before = await buildsOfProject()
  const key = randomUUID()
  const outcomes = await Promise.all(Array.from({ length: 20 }, async () => await triggerOnce(db, TOKEN, key, github, { branch: 'main' })))
  t.equal(await buildsOfProject(), before + 1, 'one build')
  t.equal(new Set(outcomes.map(o => o.result.build.id)).size, 1, 'every answer names it')
  t.equal(outcomes.filter(o => !o.replayed).length, 1, 'one started it, 19 were replays')
})
