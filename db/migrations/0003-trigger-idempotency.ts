// The gateway's own table of idempotent triggers (SPEC §11): one row per (token, Idempotency-Key), kept 24 h.
import { sql, type Kysely } from 'kysely'

export async function up (db: Kysely<unknown>): Promise<void> {
  // No foreign keys, as in InfraBox's tables: a deleted token or build leaves a row that simply ages out. The build
  // columns are empty only inside the transaction that claimed the key and is starting the build.
  await sql`
    CREATE TABLE IF NOT EXISTS mcp_trigger_idempotency (
      token_id varchar(16) NOT NULL,
      idempotency_key varchar(255) NOT NULL,
      request_hash varchar(64) NOT NULL,
      project_id uuid NOT NULL,
      build_id uuid,
      build_number integer,
      restart_counter integer,
      created_at timestamp NOT NULL DEFAULT now(),
      PRIMARY KEY (token_id, idempotency_key)
    )`.execute(db)
  await sql`CREATE INDEX IF NOT EXISTS mcp_trigger_idempotency_created_idx ON mcp_trigger_idempotency (created_at)`.execute(db)
}

export async function down (db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS mcp_trigger_idempotency`.execute(db)
}
