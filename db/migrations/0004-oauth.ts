// The OAuth server's tables (SPEC §12): clients, authorization codes, grants and their refresh tokens, the form key.
import { sql, type Kysely } from 'kysely'

// No foreign key points at InfraBox's tables ("user", mcp_token): a constraint there would add triggers to tables the
// gateway must not change. A grant whose token row or owner is gone is treated as ended by the queries (db/oauth.ts).
export async function up (db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS mcp_oauth_client (
      client_id varchar(2048) PRIMARY KEY,
      kind varchar(32) NOT NULL,
      client_name varchar(256) NOT NULL,
      redirect_uris jsonb NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}',
      created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
      fetched_at timestamp
    )`.execute(db)
  await sql`
    CREATE TABLE IF NOT EXISTS mcp_oauth_code (
      code_hash varchar(64) PRIMARY KEY,
      client_id varchar(2048) NOT NULL REFERENCES mcp_oauth_client (client_id) ON DELETE CASCADE,
      user_id uuid NOT NULL,
      redirect_uri text NOT NULL,
      code_challenge varchar(128) NOT NULL,
      scope text NOT NULL,
      resource text,
      enabled_projects jsonb NOT NULL,
      allow_trigger boolean NOT NULL,
      grant_expires_at timestamp NOT NULL,
      expires_at timestamp NOT NULL,
      used_at timestamp,
      grant_id uuid,
      created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
    )`.execute(db)
  await sql`CREATE INDEX IF NOT EXISTS mcp_oauth_code_expires_idx ON mcp_oauth_code (expires_at)`.execute(db)
  await sql`
    CREATE TABLE IF NOT EXISTS mcp_oauth_grant (
      grant_id uuid PRIMARY KEY,
      token_id varchar(16) NOT NULL UNIQUE,
      client_id varchar(2048) NOT NULL REFERENCES mcp_oauth_client (client_id) ON DELETE CASCADE,
      user_id uuid NOT NULL,
      scope text NOT NULL,
      resource text,
      expires_at timestamp NOT NULL,
      ended_at timestamp,
      ended_reason varchar(64),
      created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
    )`.execute(db)
  await sql`CREATE INDEX IF NOT EXISTS mcp_oauth_grant_user_idx ON mcp_oauth_grant (user_id)`.execute(db)
  await sql`
    CREATE TABLE IF NOT EXISTS mcp_oauth_refresh_token (
      token_hash varchar(64) PRIMARY KEY,
      grant_id uuid NOT NULL REFERENCES mcp_oauth_grant (grant_id) ON DELETE CASCADE,
      expires_at timestamp NOT NULL,
      used_at timestamp,
      created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
    )`.execute(db)
  await sql`CREATE INDEX IF NOT EXISTS mcp_oauth_refresh_token_grant_idx ON mcp_oauth_refresh_token (grant_id)`.execute(db)
  // One shared secret for the consent form's anti-forgery value, so every replica accepts a page another one served.
  await sql`
    CREATE TABLE IF NOT EXISTS mcp_oauth_key (
      id smallint PRIMARY KEY,
      secret varchar(128) NOT NULL
    )`.execute(db)
}

export async function down (db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS mcp_oauth_refresh_token, mcp_oauth_grant, mcp_oauth_code, mcp_oauth_client, mcp_oauth_key`.execute(db)
}
