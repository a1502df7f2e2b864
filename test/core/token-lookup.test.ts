// The auth step's coalesced lookups: requests arriving together share one statement, each gets its own live answer.
import t from 'tap'
import { sql } from 'kysely'
import { TokenLookups } from '../../core/token-lookup.js'
import { lookupToken, lookupTokens } from '../../db/tokens.js'
import { mintToken } from '../../core/token.js'
import { FIXTURE, seedDemo } from '../../db/seed.js'
import { createTestDatabase } from '../helpers/db.js'
import { kyselyWithOwnPool } from '../../db/connect.js'

const { db, url } = await createTestDatabase(t)
await seedDemo(db, { artifactRoot: '/nonexistent-bench-artifacts' })
const { users: U, projects: P } = FIXTURE

async function addToken (userId: string, revoked = false): Promise<string> {
  const m = mintToken()
  await db.insertInto('mcp_token').values({
    token_id: m.tokenId,
    token_hash: m.tokenHash,
    user_id: userId,
    name: 'lookup test',
    enabled_projects: '{}',
    allow_trigger: false,
    expires_at: new Date(Date.now() + 86_400_000),
    ...(revoked ? { revoked_at: new Date() } : {})
  }).execute()
  return m.tokenId
}

const demoToken = await addToken(U.demo)
const outsiderToken = await addToken(U.outsider)
const revokedToken = await addToken(U.demo, true)
const NO_PROJECT = '00000000-0000-4000-8000-00ff00000000'

t.test('lookupTokens answers each key as lookupToken does, in key order', async t => {
  const keys = [
    { tokenId: demoToken, projectId: P.github }, // collaborator (Owner)
    { tokenId: demoToken, projectId: P.public }, // exists, not a collaborator
    { tokenId: demoToken, projectId: NO_PROJECT }, // no such project
    { tokenId: demoToken, projectId: null }, // no project asked for
    { tokenId: 'ffffffffffffffff', projectId: P.github }, // unknown token
    { tokenId: outsiderToken, projectId: P.public },
    { tokenId: revokedToken, projectId: P.github } // the row comes back; its state is the caller's to judge
  ]
  const batch = await lookupTokens(db, keys)
  const one = await Promise.all(keys.map(async k => await lookupToken(db, k.tokenId, k.projectId)))
  t.same(batch, one)
  t.equal(batch[0]?.project?.role, 'Owner')
  t.equal(batch[1]?.project?.role, null)
  t.equal(batch[2]?.project, null)
  t.notOk(batch[3] !== undefined && 'project' in batch[3], 'no project key when none was asked for')
  t.equal(batch[4], undefined)
  t.equal(batch[5]?.token.user_id, U.outsider)
  t.not(batch[6]?.token.revoked_at, null)
  t.same(await lookupTokens(db, []), [])
})

t.test('lookups asked for in one turn of the event loop share one statement', async t => {
  const lookups = new TokenLookups(db)
  const asked = [
    lookups.lookup(demoToken, P.github),
    lookups.lookup(demoToken, P.github), // same key: shared
    lookups.lookup(outsiderToken, P.public),
    lookups.lookup('ffffffffffffffff', null)
  ]
  const [a, b, c, d] = await Promise.all(asked)
  t.equal(lookups.statements, 1, 'one statement')
  t.equal(lookups.lookups, 4)
  t.equal(a?.project?.role, 'Owner')
  t.same(a, b)
  t.equal(c?.token.user_id, U.outsider)
  t.equal(d, undefined)

  // a lone lookup goes out at the end of its turn too, as the same (prepared) statement
  t.equal((await lookups.lookup(demoToken, null))?.token.token_id, demoToken)
  t.equal(lookups.statements, 2)
})

t.test('nothing is cached: a change before the next request applies to it', async t => {
  const lookups = new TokenLookups(db)
  const before = await lookups.lookup(demoToken, P.gerrit)
  t.equal(before?.project?.role, 'Administrator')
  await db.deleteFrom('collaborator').where('user_id', '=', U.demo).where('project_id', '=', P.gerrit).execute()
  await db.updateTable('mcp_token').set({ revoked_at: new Date() }).where('token_id', '=', demoToken).execute()
  const after = await lookups.lookup(demoToken, P.gerrit)
  t.equal(after?.project?.role, null, 'the removed collaboration is seen at once')
  t.not(after?.token.revoked_at, null, 'the revocation is seen at once')
})

t.test('a failing statement fails every lookup of its batch, and the next batch works', async t => {
  const lookups = new TokenLookups(db)
  await sql`ALTER TABLE mcp_token RENAME TO mcp_token_away`.execute(db)
  const failed = await Promise.allSettled([lookups.lookup(outsiderToken, null), lookups.lookup(outsiderToken, P.public)])
  await sql`ALTER TABLE mcp_token_away RENAME TO mcp_token`.execute(db)
  t.same(failed.map(r => r.status), ['rejected', 'rejected'])
  t.equal((await lookups.lookup(outsiderToken, P.public))?.token.user_id, U.outsider)
})

t.test('on the gateway\'s connections the lookup goes out as a named statement that keeps its generic plan', async t => {
  // A connection of its own, on which the statement is new: prepared statements, their plan statistics and
  // settings belong to a session.
  const own = kyselyWithOwnPool({ connectionString: url, max: 1 })
  t.teardown(async () => { await own.destroy() })
  await own.connection().execute(async conn => {
    await sql`BEGIN`.execute(conn)
    try {
      // a large token table, where a plan for the actual keys used to look cheaper than the generic plan
      // (so every run was planned again); rolled back at the end
      await sql`INSERT INTO mcp_token (token_id, token_hash, user_id, name, expires_at, revoked_at)
        SELECT substr(md5(g::text), 1, 16), md5(g::text) || md5(g::text), ${U.demo}::uuid, 'grown', now(), now()
        FROM generate_series(1, 30000) g`.execute(conn)
      await sql`ANALYZE mcp_token`.execute(conn)
      for (let run = 1; run <= 10; run++) {
        const keys = Array.from({ length: 1 + (run % 3) }, (_v, i) => ({ tokenId: i === 0 ? demoToken : outsiderToken, projectId: i === 2 ? null : P.github }))
        const answer = await lookupTokens(conn, keys)
        t.equal(answer[0]?.token.token_id, demoToken, `run ${run} answers`)
      }
      const named = await sql<{ name: string, statement: string, generic_plans: string, custom_plans: string }>`
        SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements`.execute(conn)
      const lookup = named.rows.find(r => r.name === 'ib_mcp_token_lookup')
      t.ok(lookup?.statement.includes('unnest'), 'prepared once, by name')
      // PostgreSQL plans a prepared statement for its parameters on its first five runs, then keeps the generic plan
      t.same([Number(lookup?.custom_plans), Number(lookup?.generic_plans)], [5, 5], 'five plans for the parameters, then the cached generic plan')
      const mode = await sql<{ plan_cache_mode: string }>`SHOW plan_cache_mode`.execute(conn)
      t.equal(mode.rows[0]?.plan_cache_mode, 'auto', 'no session setting: every other statement is planned for its parameters')
    } finally {
      await sql`ROLLBACK`.execute(conn)
    }
  })
})

t.test('DB_PREPARED_STATEMENTS=false: the same answers, every statement unnamed (a pooler in transaction mode)', async t => {
  const unnamed = kyselyWithOwnPool({ connectionString: url, max: 1, preparedStatements: false })
  t.teardown(async () => { await unnamed.destroy() })
  await unnamed.connection().execute(async conn => {
    const answer = await lookupTokens(conn, [{ tokenId: demoToken, projectId: P.github }])
    t.equal(answer[0]?.token.token_id, demoToken)
    t.equal(answer[0]?.project?.role, 'Owner')
    const named = await sql<{ name: string }>`SELECT name FROM pg_prepared_statements`.execute(conn)
    t.same(named.rows, [], 'nothing prepared by name')
    const mode = await sql<{ plan_cache_mode: string }>`SHOW plan_cache_mode`.execute(conn)
    t.equal(mode.rows[0]?.plan_cache_mode, 'auto', 'and no session setting left behind for the pooler\'s next client')
  })
})
