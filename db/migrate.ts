// Applies the gateway's migrations (own tracking table) and, for embedded mode and tests, the InfraBox subset.
import { readFile } from 'node:fs/promises'
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely'
import type { Database } from './schema.js'
import * as m0001 from './migrations/0001-mcp-tables.js'
import * as m0002 from './migrations/0002-access-log-extras.js'
import * as m0003 from './migrations/0003-trigger-idempotency.js'
import * as m0004 from './migrations/0004-oauth.js'

/** Never InfraBox's `infrabox.schema_version`: the gateway tracks its own steps. */
export const MIGRATION_TABLE = 'mcp_gateway_migration'
export const MIGRATION_LOCK_TABLE = 'mcp_gateway_migration_lock'

// A static list: works the same from TypeScript sources and from dist/, no directory scanning.
const migrations: Record<string, Migration> = {
  '0001-mcp-tables': m0001,
  '0002-access-log-extras': m0002,
  '0003-trigger-idempotency': m0003,
  '0004-oauth': m0004
}

const provider: MigrationProvider = { getMigrations: async () => migrations }

export interface MigrationReport { applied: string[] }

export async function migrateGateway (db: Kysely<Database>): Promise<MigrationReport> {
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE
  })
  const { error, results } = await migrator.migrateToLatest()
  if (error !== undefined) {
    const failed = results?.find(r => r.status === 'Error')
    throw new Error(`migration ${failed?.migrationName ?? '(setup)'} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  }
  return { applied: (results ?? []).filter(r => r.status === 'Success').map(r => r.migrationName) }
}

// `npm run build` copies db/infrabox-schema/ next to the compiled module, so this path holds in both.
async function readSchemaFile (name: string): Promise<string> {
  return await readFile(new URL(`./infrabox-schema/${name}`, import.meta.url), 'utf8')
}

/** Runs a multi-statement SQL script (pg's simple protocol does this; PGlite needs its own `exec`). */
export type ScriptRunner = (script: string) => Promise<unknown>

const viaKysely = (db: Kysely<Database>): ScriptRunner => async (script) => await sql.raw(script).execute(db)

/** The InfraBox tables the gateway reads (db/infrabox-schema/infrabox.sql). Embedded mode and tests only. */
export async function applyInfraboxSubset (db: Kysely<Database>, run: ScriptRunner = viaKysely(db)): Promise<void> {
  await run(await readSchemaFile('infrabox.sql'))
}

/** InfraBox's own 00047 creation of the MCP tables, to reproduce a live InfraBox database in tests. */
export async function applyInfrabox00047Mcp (db: Kysely<Database>, run: ScriptRunner = viaKysely(db)): Promise<void> {
  await run(await readSchemaFile('00047-mcp.sql'))
}
