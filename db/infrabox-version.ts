// Which InfraBox the database holds (SPEC §2): the columns the gateway reads, checked once at start from information_schema.
import { sql, type Kysely } from 'kysely'
import { ConfigError } from '../config.js'
import type { Database } from './schema.js'

/** The column variants the queries choose between, decided once at start (never per request). */
export interface InfraboxColumns {
  /** `build.source` (InfraBox 00047): read into builds' `source`, written 'mcp' by a trigger; absent at schema 46 */
  buildSource: boolean
}

/** What a current InfraBox (schema 47) has; the default where nothing was detected. */
export const SCHEMA_47_COLUMNS: InfraboxColumns = { buildSource: true }

export interface InfraboxSchema {
  /** `infrabox.schema_version` when the table has a row, else inferred from the columns */
  version: number | null
  /** the version was read from `infrabox.schema_version` (false: inferred from the columns) */
  recorded: boolean
  columns: InfraboxColumns
}

/** The InfraBox columns the gateway reads or writes and cannot serve without (all present since long before 00047). */
export const REQUIRED_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  user: ['id', 'username', 'name', 'email'],
  project: ['id', 'name', 'type', 'public'],
  collaborator: ['user_id', 'project_id', 'role'],
  build: ['id', 'build_number', 'restart_counter', 'commit_id', 'project_id', 'source_upload_id'],
  job: ['id', 'state', 'type', 'name', 'build_id', 'project_id', 'created_at', 'start_date', 'end_date', 'console', 'message',
    'dependencies', 'archive', 'repo', 'env_var', 'env_var_ref', 'build_arg', 'deployment', 'definition', 'dockerfile', 'cluster_name',
    'restarted'],
  console: ['id', 'job_id', 'output', 'date'],
  commit: ['id', 'repository_id', 'project_id', 'message', 'author_name', 'author_email', 'url', 'branch', 'timestamp'],
  repository: ['id', 'project_id', 'clone_url'],
  source_upload: ['id', 'project_id'],
  test_run: ['id', 'job_id', 'project_id', 'state', 'duration', 'suite', 'name', 'message', 'stack', 'timestamp'],
  abort: ['job_id', 'user_id']
}

/** Columns the gateway works without, each a flag of InfraboxColumns. */
const OPTIONAL_COLUMNS = { buildSource: ['build', 'source'] } as const satisfies Record<keyof InfraboxColumns, readonly [string, string]>

/** The database cannot serve the gateway: the message is one line naming `table.column` and the version found; the process prints it and stops. */
export class InfraboxSchemaError extends ConfigError {}

/**
 * Reads information_schema once (the tables on the search path) and `infrabox.schema_version` when there is one.
 * Throws InfraboxSchemaError when a required column is missing.
 */
export async function detectInfraboxSchema (db: Kysely<Database>): Promise<InfraboxSchema> {
  const tables = [...Object.keys(REQUIRED_COLUMNS), 'infrabox']
  const { rows } = await sql<{ table_name: string, column_name: string }>`
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = ANY (current_schemas(false)) AND table_name = ANY (${tables})`.execute(db)
  const present = new Set(rows.map(r => `${r.table_name}.${r.column_name}`))

  const columns: InfraboxColumns = { buildSource: present.has(OPTIONAL_COLUMNS.buildSource.join('.')) }
  let version: number | null = null
  if (present.has('infrabox.schema_version')) {
    const row = await db.selectFrom('infrabox').select('schema_version').limit(1).executeTakeFirst()
    version = row?.schema_version ?? null
  }
  const recorded = version !== null
  // Without a recorded version: the columns tell 47 (00047 added build.source) from 46 and before.
  if (version === null && present.size > 0) version = columns.buildSource ? 47 : 46

  for (const [table, names] of Object.entries(REQUIRED_COLUMNS)) {
    for (const name of names) {
      if (present.has(`${table}.${name}`)) continue
      const found = version === null ? 'no InfraBox schema found' : `InfraBox schema ${version}${recorded ? '' : ' (inferred)'}`
      throw new InfraboxSchemaError(`the database lacks ${table}.${name}, which the gateway needs (${found}; the gateway supports InfraBox schema 46 and later)`)
    }
  }
  return { version, recorded, columns }
}
