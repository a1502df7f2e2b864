// Creates mcp_token and mcp_access_log exactly as InfraBox 00047 does, unless InfraBox already made them.
import { sql, type Kysely } from 'kysely'

export async function up (db: Kysely<unknown>): Promise<void> {
  await sql`
    DO $$ BEGIN
      IF to_regclass('mcp_token') IS NULL THEN
        CREATE TABLE mcp_token (
          token_id varchar(16) PRIMARY KEY,
          token_hash varchar(64) NOT NULL,
          user_id uuid NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
          name varchar(128) NOT NULL,
          enabled_projects jsonb NOT NULL DEFAULT '{}',
          allow_trigger boolean NOT NULL DEFAULT false,
          expires_at timestamp NOT NULL,
          revoked_at timestamp,
          last_used_at timestamp,
          created_at timestamp NOT NULL DEFAULT now()
        );
        CREATE INDEX mcp_token_user_id_idx ON mcp_token (user_id);
        CREATE INDEX mcp_token_token_hash_idx ON mcp_token (token_hash);
      END IF;
      IF to_regclass('mcp_access_log') IS NULL THEN
        CREATE TABLE mcp_access_log (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          token_id varchar(16),
          user_id uuid,
          action varchar(128) NOT NULL,
          outcome varchar(32) NOT NULL,
          details jsonb,
          error text,
          ip varchar(64),
          accessed_at timestamp NOT NULL DEFAULT now()
        );
      END IF;
    END $$`.execute(db)
}

export async function down (): Promise<void> {
  // Never drop: on an InfraBox database these tables belong to InfraBox and hold its tokens.
}
