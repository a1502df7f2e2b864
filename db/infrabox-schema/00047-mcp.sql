-- What InfraBox's own migration 00047 creates for its Python MCP layer. Used by the migration tests
-- to reproduce a database where InfraBox already made these tables; the gateway's first migration
-- creates the same shape itself when they are missing.
ALTER TABLE build ADD COLUMN IF NOT EXISTS source varchar(64);

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
