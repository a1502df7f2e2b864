// The typed shape of every table the gateway touches: InfraBox's (read, and build/job for triggers) and its own.
import type { ColumnType, Generated, Selectable } from 'kysely'

import type { JobState, JobType, ProjectType, TestResult, UserRole } from '../schemas/data.js'

// InfraBox's enums, typed once (schemas/data.ts: the TypeBox schemas the routes validate with).
export type { JobState, JobType, ProjectType, TestResult, UserRole }

/** JSON as PostgreSQL returns it from jsonb columns. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json }
/** jsonb written as a JSON string parameter, read back parsed. */
type JsonColumn<T> = ColumnType<T, string, string>
/** A timestamp column: read as Date, written as Date or an ISO string. */
type Timestamp = ColumnType<Date, Date | string, Date | string>

export interface InfraboxTable { schema_version: number }

export interface UserTable {
  id: Generated<string>
  github_id: number | null
  username: string | null
  avatar_url: string | null
  name: string | null
  created_at: ColumnType<Date, Date | string | undefined, never>
  email: string | null
  github_api_token: string | null
  password: string | null
  role: ColumnType<'user' | 'devops' | 'admin', 'user' | 'devops' | 'admin' | undefined>
}

export interface ProjectTable {
  id: string
  name: string
  type: ProjectType
  public: ColumnType<boolean, boolean | undefined>
  build_on_push: ColumnType<boolean, boolean | undefined>
  build_on_tag: ColumnType<boolean, boolean | undefined>
}

export interface CollaboratorTable {
  user_id: string
  project_id: string
  role: ColumnType<UserRole, UserRole | undefined>
}

export interface BuildTable {
  id: string
  commit_id: string | null
  build_number: number
  project_id: string
  restart_counter: ColumnType<number, number | undefined>
  source_upload_id: string | null
  is_cronjob: ColumnType<boolean | null, boolean | undefined>
  source: string | null
}

/** One entry of `job.archive` (a PostgreSQL array of jsonb). */
export interface ArchiveEntry { filename: string; size: number }

export interface JobTable {
  id: Generated<string>
  state: JobState
  start_date: Timestamp | null
  build_id: string
  console: string | null
  type: JobType
  dockerfile: string | null
  end_date: Timestamp | null
  name: string
  project_id: string
  dependencies: JsonColumn<Json> | null
  created_at: ColumnType<Date, Date | string | undefined, Date | string>
  repo: JsonColumn<Json> | null
  stats: string | null
  env_var: JsonColumn<Json> | null
  env_var_ref: JsonColumn<Json> | null
  build_arg: JsonColumn<Json> | null
  deployment: JsonColumn<Json> | null
  message: string | null
  definition: JsonColumn<Json>
  cluster_name: string | null
  archive: ColumnType<ArchiveEntry[] | null, string | null, string | null>
  node_name: string | null
  avg_cpu: number | null
  restarted: ColumnType<boolean | null, boolean | undefined>
}

/** InfraBox's abort requests, read (and emptied) by its scheduler, which kills those jobs. */
export interface AbortTable {
  job_id: string
  user_id: string | null
}

export interface ConsoleTable {
  id: Generated<string>
  job_id: string
  output: string
  date: ColumnType<Date, Date | string | undefined, Date | string>
}

export interface CommitTable {
  id: string
  message: string | null
  repository_id: string
  timestamp: Timestamp
  author_name: string
  author_email: string
  author_username: string | null
  committer_name: string
  committer_email: string
  committer_username: string | null
  url: string
  branch: string
  project_id: string | null
  tag: string | null
  pull_request_id: string | null
  github_status_url: string | null
  gerrit_change_id: string | null
  env: JsonColumn<Json> | null
}

export interface RepositoryTable {
  id: string
  name: string
  html_url: string | null
  clone_url: string | null
  github_id: number | null
  github_hook_id: number | null
  github_owner: string | null
  project_id: string
  private: boolean
  private_key: string | null
}

export interface SourceUploadTable {
  project_id: string
  id: string
  filename: string
  filesize: ColumnType<string, string | number, string | number>
}

export interface TestRunTable {
  id: string
  job_id: string
  state: TestResult
  duration: number | null
  project_id: string
  message: string | null
  stack: string | null
  timestamp: Timestamp | null
  suite: string | null
  name: string | null
}

/** `{ "<project uuid>": "<ISO 8601 expiry>" | null }`; `{}` means every project the owner collaborates on. */
export type EnabledProjects = Record<string, string | null>

export interface McpTokenTable {
  token_id: string
  token_hash: string
  user_id: string
  name: string
  enabled_projects: ColumnType<EnabledProjects, string | undefined, string>
  allow_trigger: ColumnType<boolean, boolean | undefined, boolean>
  expires_at: Timestamp
  revoked_at: Timestamp | null
  last_used_at: Timestamp | null
  created_at: ColumnType<Date, Date | string | undefined, never>
}

export type AuditOutcome = 'success' | 'unauthorized' | 'forbidden' | 'rate_limited' | 'bad_request' | 'not_found' | 'failure'

export interface McpAccessLogTable {
  id: Generated<string>
  token_id: string | null
  user_id: string | null
  action: string
  outcome: AuditOutcome
  details: JsonColumn<Json> | null
  error: string | null
  ip: string | null
  accessed_at: ColumnType<Date, Date | string | undefined, Date | string>
  project_id: string | null
  status_code: number | null
  duration_ms: number | null
  method: string | null
  path: string | null
  request_id: string | null
  via: 'rest' | 'mcp' | null
}

/** The gateway's own: an Idempotency-Key of a token and the build its first trigger started (24 h). */
export interface McpTriggerIdempotencyTable {
  token_id: string
  idempotency_key: string
  /** hex SHA-256 of the project and the trigger body, canonical: the same key with another request is refused */
  request_hash: string
  project_id: string
  /** null only inside the transaction that claimed the key */
  build_id: string | null
  build_number: number | null
  restart_counter: number | null
  created_at: ColumnType<Date, Date | string | undefined, Date | string>
}

/** A client of the OAuth server: registered (RFC 7591) or known by its metadata document URL (CIMD). */
export interface McpOAuthClientTable {
  client_id: string
  kind: 'registered' | 'metadata_document'
  client_name: string
  redirect_uris: JsonColumn<string[]>
  metadata: JsonColumn<Json>
  created_at: ColumnType<Date, Date | string | undefined, never>
  fetched_at: Timestamp | null
}

/** An authorization code (stored hashed) and the consent it carries until it is exchanged. */
export interface McpOAuthCodeTable {
  code_hash: string
  client_id: string
  user_id: string
  redirect_uri: string
  code_challenge: string
  scope: string
  resource: string | null
  enabled_projects: JsonColumn<EnabledProjects>
  allow_trigger: boolean
  grant_expires_at: Timestamp
  expires_at: Timestamp
  used_at: Timestamp | null
  /** the grant the code was exchanged for (a replayed code ends it) */
  grant_id: string | null
  created_at: ColumnType<Date, Date | string | undefined, never>
}

/** One consent = one grant = one mcp_token row whose hash is replaced at every refresh. */
export interface McpOAuthGrantTable {
  grant_id: string
  token_id: string
  client_id: string
  user_id: string
  scope: string
  resource: string | null
  expires_at: Timestamp
  ended_at: Timestamp | null
  ended_reason: string | null
  created_at: ColumnType<Date, Date | string | undefined, never>
}

export interface McpOAuthRefreshTokenTable {
  token_hash: string
  grant_id: string
  expires_at: Timestamp
  used_at: Timestamp | null
  created_at: ColumnType<Date, Date | string | undefined, never>
}

export interface McpOAuthKeyTable {
  id: number
  secret: string
}

export interface Database {
  infrabox: InfraboxTable
  user: UserTable
  project: ProjectTable
  collaborator: CollaboratorTable
  build: BuildTable
  job: JobTable
  console: ConsoleTable
  commit: CommitTable
  repository: RepositoryTable
  source_upload: SourceUploadTable
  test_run: TestRunTable
  abort: AbortTable
  mcp_token: McpTokenTable
  mcp_access_log: McpAccessLogTable
  mcp_trigger_idempotency: McpTriggerIdempotencyTable
  mcp_oauth_client: McpOAuthClientTable
  mcp_oauth_code: McpOAuthCodeTable
  mcp_oauth_grant: McpOAuthGrantTable
  mcp_oauth_refresh_token: McpOAuthRefreshTokenTable
  mcp_oauth_key: McpOAuthKeyTable
}

export type McpToken = Selectable<McpTokenTable>
