// Migrations on both starting points: a fresh database, and one where InfraBox 00047 already made the MCP tables.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import { createTestDatabase } from '../helpers/db.js'
import { applyInfrabox00047Mcp, applyInfraboxSubset, migrateGateway, MIGRATION_TABLE } from '../../db/migrate.js'
import type { Database } from '../../db/schema.js'

interface Column { table_name: string, column_name: string, data_type: string, is_nullable: string, column_default: string | null, character_maximum_length: number | null }

async function columns (db: Kysely<Database>, table: string): Promise<Column[]> {
  const { rows } = await sql<Column>`
    SELECT table_name, column_name, data_type, is_nullable, column_default, character_maximum_length
    FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ${table} ORDER BY column_name`.execute(db)
  return rows
}

async function indexes (db: Kysely<Database>, table: string): Promise<string[]> {
  const { rows } = await sql<{ indexdef: string }>`SELECT indexdef FROM pg_indexes WHERE tablename = ${table} ORDER BY indexname`.execute(db)
  return rows.map(r => r.indexdef.replace(/ ON public\./, ' ON '))
}

const EXTRAS = ['project_id', 'status_code', 'duration_ms', 'method', 'path', 'request_id', 'via']

t.test('fresh database: the 00047 shape, then the extras', async t => {
  const fresh = await createTestDatabase(t, { bare: true })
  await applyInfraboxSubset(fresh.db)
  const first = await migrateGateway(fresh.db)
  t.same(first.applied, ['0001-mcp-tables', '0002-access-log-extras', '0003-trigger-idempotency', '0004-oauth'])
  const again = await migrateGateway(fresh.db)
  t.same(again.applied, [], 'idempotent')

  // the reference: what InfraBox's own 00047 makes
  const reference = await createTestDatabase(t, { bare: true })
  await applyInfraboxSubset(reference.db)
  await applyInfrabox00047Mcp(reference.db)

  t.same(await columns(fresh.db, 'mcp_token'), await columns(reference.db, 'mcp_token'), 'mcp_token exactly as InfraBox makes it')
  const log = await columns(fresh.db, 'mcp_access_log')
  const base = log.filter(c => !EXTRAS.includes(c.column_name))
  t.same(base, await columns(reference.db, 'mcp_access_log'), 'mcp_access_log base columns as InfraBox makes them')
  const extras = log.filter(c => EXTRAS.includes(c.column_name))
  t.equal(extras.length, EXTRAS.length)
  t.ok(extras.every(c => c.is_nullable === 'YES'), 'extras are nullable')
  const idx = await indexes(fresh.db, 'mcp_access_log')
  t.ok(idx.some(i => i.includes('(token_id, accessed_at DESC)')))
  t.ok(idx.some(i => i.includes('(project_id, accessed_at DESC)')))
  t.ok((await indexes(fresh.db, 'mcp_token')).some(i => i.includes('(token_hash)')))

  const tracked = await sql<{ name: string }>`SELECT name FROM ${sql.table(MIGRATION_TABLE)} ORDER BY name`.execute(fresh.db)
  t.same(tracked.rows.map(r => r.name), ['0001-mcp-tables', '0002-access-log-extras', '0003-trigger-idempotency', '0004-oauth'], 'own tracking table')
  const version = await fresh.db.selectFrom('infrabox').select('schema_version').execute()
  t.same(version, [{ schema_version: 47 }], 'InfraBox\'s schema_version untouched')
})

t.test('InfraBox 47 database: existing tokens and audit rows are kept, only extras added', async t => {
  const live = await createTestDatabase(t, { bare: true })
  await applyInfraboxSubset(live.db)
  await applyInfrabox00047Mcp(live.db)
  const user = randomUUID()
  await live.db.insertInto('user').values({ id: user, username: 'u' }).execute()
  await sql`INSERT INTO mcp_token (token_id, token_hash, user_id, name, enabled_projects, allow_trigger, expires_at)
            VALUES ('0123456789abcdef', ${'f'.repeat(64)}, ${user}, 'python token', '{}', true, now() + interval '1 day')`.execute(live.db)
  await sql`INSERT INTO mcp_access_log (token_id, user_id, action, outcome) VALUES ('0123456789abcdef', ${user}, 'list_projects', 'success')`.execute(live.db)
  const tokenColumnsBefore = await columns(live.db, 'mcp_token')

  const result = await migrateGateway(live.db)
  t.same(result.applied, ['0001-mcp-tables', '0002-access-log-extras', '0003-trigger-idempotency', '0004-oauth'])
  t.same(await columns(live.db, 'mcp_token'), tokenColumnsBefore, 'mcp_token untouched')
  const tokens = await live.db.selectFrom('mcp_token').selectAll().execute()
  t.equal(tokens.length, 1)
  t.equal(tokens[0]?.name, 'python token')
  const rows = await live.db.selectFrom('mcp_access_log').selectAll().execute()
  t.equal(rows.length, 1, 'audit rows kept')
  t.equal(rows[0]?.via, null, 'new columns are null on old rows')
  const log = await columns(live.db, 'mcp_access_log')
  t.ok(EXTRAS.every(e => log.some(c => c.column_name === e)), 'extras added')
})

t.test('npm run migrate: applies to DATABASE_URL and exits; refuses without one', async t => {
  const { execFile } = await import('node:child_process')
  const { promisify } = await import('node:util')
  const run = promisify(execFile)
  const root = new URL('../..', import.meta.url).pathname
  const target = await createTestDatabase(t, { bare: true })
  await applyInfraboxSubset(target.db)
  const first = await run('node', ['dist/db/migrate-cli.js'], { cwd: root, env: { ...process.env, DATABASE_URL: target.url } })
  t.match(first.stdout, /applied: 0001-mcp-tables, 0002-access-log-extras, 0003-trigger-idempotency, 0004-oauth/)
  const second = await run('node', ['dist/db/migrate-cli.js'], { cwd: root, env: { ...process.env, DATABASE_URL: target.url } })
  t.match(second.stdout, /up to date/)
  const missing = await run('node', ['dist/db/migrate-cli.js'], { cwd: root, env: { ...process.env, DATABASE_URL: '' } }).then(() => null, (e: { code: number, stderr: string }) => e)
  t.equal(missing?.code, 1)
  t.match(missing?.stderr ?? '', /DATABASE_URL is required/)
})
