-- The subset of InfraBox's schema (version 47) that the gateway reads and writes.
-- Applied only in the embedded mode and in tests; never on a real InfraBox database.
-- Same names, types and nullability as InfraBox; like InfraBox, no foreign keys between these tables.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

DO $$ BEGIN
  CREATE TYPE job_state AS ENUM ('queued', 'scheduled', 'running', 'finished', 'failure', 'error', 'skipped', 'killed', 'unstable');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE TYPE job_type AS ENUM ('create_job_matrix', 'run_project_container', 'run_docker_compose', 'wait');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE TYPE project_type AS ENUM ('github', 'upload', 'test', 'gerrit');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE TYPE user_role AS ENUM ('Developer', 'Administrator', 'Owner');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE TYPE system_role AS ENUM ('user', 'devops', 'admin');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE TYPE test_result AS ENUM ('ok', 'failure', 'error', 'skipped');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

CREATE TABLE IF NOT EXISTS infrabox (schema_version integer NOT NULL);
INSERT INTO infrabox (schema_version) SELECT 47 WHERE NOT EXISTS (SELECT 1 FROM infrabox);

CREATE TABLE IF NOT EXISTS "user" (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  github_id integer,
  username varchar(255),
  avatar_url varchar(255),
  name varchar(255),
  created_at timestamptz NOT NULL DEFAULT now(),
  email varchar(255) UNIQUE,
  github_api_token varchar,
  password varchar(255),
  role system_role NOT NULL DEFAULT 'user'
);

CREATE TABLE IF NOT EXISTS project (
  id uuid PRIMARY KEY,
  name varchar(255) NOT NULL,
  type project_type NOT NULL,
  public boolean NOT NULL DEFAULT false,
  build_on_push boolean NOT NULL DEFAULT true,
  build_on_tag boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS collaborator (
  user_id uuid NOT NULL,
  project_id uuid NOT NULL,
  role user_role NOT NULL DEFAULT 'Developer',
  PRIMARY KEY (user_id, project_id)
);

CREATE TABLE IF NOT EXISTS build (
  id uuid PRIMARY KEY,
  commit_id varchar(255),
  build_number integer NOT NULL,
  project_id uuid NOT NULL,
  restart_counter integer NOT NULL DEFAULT 1,
  source_upload_id uuid,
  is_cronjob boolean DEFAULT false,
  source varchar(64),
  UNIQUE (project_id, build_number, restart_counter)
);

CREATE TABLE IF NOT EXISTS job (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  state job_state NOT NULL,
  start_date timestamptz,
  build_id uuid NOT NULL,
  console text,
  type job_type NOT NULL,
  dockerfile varchar,
  end_date timestamptz,
  name varchar NOT NULL,
  project_id uuid NOT NULL,
  dependencies jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  repo jsonb,
  stats text,
  env_var jsonb,
  env_var_ref jsonb,
  build_arg jsonb,
  deployment jsonb,
  message text,
  definition jsonb NOT NULL,
  cluster_name varchar,
  archive jsonb[],
  node_name varchar,
  avg_cpu real,
  restarted boolean DEFAULT false
);
CREATE INDEX IF NOT EXISTS job_build_id_idx ON job (build_id);
CREATE INDEX IF NOT EXISTS job_project_id_idx ON job (project_id);

CREATE TABLE IF NOT EXISTS console (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  job_id uuid NOT NULL,
  output text NOT NULL,
  date timestamp NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS console_job_id_idx ON console (job_id);

CREATE TABLE IF NOT EXISTS "commit" (
  id varchar(255) NOT NULL,
  message text,
  repository_id uuid NOT NULL,
  "timestamp" timestamptz NOT NULL,
  author_name varchar NOT NULL,
  author_email varchar NOT NULL,
  author_username varchar,
  committer_name varchar NOT NULL,
  committer_email varchar NOT NULL,
  committer_username varchar,
  url varchar NOT NULL,
  branch varchar NOT NULL,
  project_id uuid,
  tag varchar(255),
  pull_request_id uuid,
  github_status_url varchar(1024),
  gerrit_change_id varchar,
  env jsonb,
  PRIMARY KEY (repository_id, id)
);

CREATE TABLE IF NOT EXISTS repository (
  id uuid PRIMARY KEY,
  name varchar(255) NOT NULL,
  html_url varchar,
  clone_url varchar,
  github_id integer,
  github_hook_id integer,
  github_owner varchar,
  project_id uuid NOT NULL,
  private boolean NOT NULL,
  private_key text
);

CREATE TABLE IF NOT EXISTS source_upload (
  project_id uuid NOT NULL,
  id uuid PRIMARY KEY,
  filename varchar(255) NOT NULL,
  filesize bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS test_run (
  id uuid PRIMARY KEY,
  job_id uuid NOT NULL,
  state test_result NOT NULL,
  duration float8,
  project_id uuid NOT NULL,
  message text,
  stack text,
  "timestamp" timestamptz,
  suite text,
  name text
);
CREATE INDEX IF NOT EXISTS test_run_job_id_idx ON test_run (job_id);

-- InfraBox's abort requests: the scheduler kills the jobs named here (no primary key, as in InfraBox).
CREATE TABLE IF NOT EXISTS abort (
  job_id uuid NOT NULL,
  user_id uuid
);

-- InfraBox's notifications (migrations 00001, 00014, 00024): every job insert, and every update of a job's
-- state, restarted flag or dependencies, is announced on channel job_update as {"type", "job_id", "state"};
-- every console insert on console_update as {"id", "job_id"}. InfraBox's API follows builds with them; the
-- gateway's wait_for_build waits on them. Re-created on every application (the subset is applied at each start).
CREATE OR REPLACE FUNCTION job_queue_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  PERFORM pg_notify('job_update', json_build_object('type', TG_OP, 'job_id', NEW.id, 'state', NEW.state)::text);
  RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION console_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    RETURN COALESCE(NEW, OLD);
  END IF;
  PERFORM pg_notify('console_update', json_build_object('id', NEW.id, 'job_id', NEW.job_id)::text);
  RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS job_queue_notify_insert ON job;
CREATE TRIGGER job_queue_notify_insert AFTER INSERT ON job FOR EACH ROW EXECUTE PROCEDURE job_queue_notify();

DROP TRIGGER IF EXISTS job_queue_notify_update ON job;
CREATE TRIGGER job_queue_notify_update AFTER UPDATE ON job FOR EACH ROW WHEN (
  OLD.state IS DISTINCT FROM NEW.state OR
  OLD.restarted IS DISTINCT FROM NEW.restarted OR
  OLD.dependencies IS DISTINCT FROM NEW.dependencies
) EXECUTE PROCEDURE job_queue_notify();

DROP TRIGGER IF EXISTS console_notify_insert ON console;
CREATE TRIGGER console_notify_insert AFTER INSERT ON console FOR EACH ROW EXECUTE PROCEDURE console_notify();
