// The gateway's own additions: nullable audit columns and the indexes its queries use.
import { sql, type Kysely } from 'kysely'

export async function up (db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE mcp_access_log
      ADD COLUMN IF NOT EXISTS project_id uuid,
      ADD COLUMN IF NOT EXISTS status_code smallint,
      ADD COLUMN IF NOT EXISTS duration_ms real,
      ADD COLUMN IF NOT EXISTS method text,
      ADD COLUMN IF NOT EXISTS path text,
      ADD COLUMN IF NOT EXISTS request_id text,
      ADD COLUMN IF NOT EXISTS via text`.execute(db)
  await sql`CREATE INDEX IF NOT EXISTS mcp_access_log_token_accessed_idx ON mcp_access_log (token_id, accessed_at DESC)`.execute(db)
  await sql`CREATE INDEX IF NOT EXISTS mcp_access_log_project_accessed_idx ON mcp_access_log (project_id, accessed_at DESC)`.execute(db)
}

export async function down (db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS mcp_access_log_project_accessed_idx`.execute(db)
  await sql`DROP INDEX IF EXISTS mcp_access_log_token_accessed_idx`.execute(db)
}
