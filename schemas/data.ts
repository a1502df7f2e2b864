// TypeBox schemas of the data routes (SPEC §5): what they accept and return, shared by REST routes and MCP tool schemas.
import { Type, type Static, type TSchema } from '@fastify/type-provider-typebox'
import { DateTime, NullableDateTime, NullableString, Page, PageQuery, Uuid } from './common.js'

/** `{items, next_cursor}` with a description of its own: MCP output schemas must be plain objects, not allOf. */
const DescribedPage = <T extends TSchema>(item: T, description: string) =>
  Type.Object(Page(item).properties, { additionalProperties: false, description })

// ---------------------------------------------------------------- enumerations

export const ProjectType = Type.Enum(['github', 'upload', 'test', 'gerrit'], {
  description: 'github and gerrit projects build commits; upload projects build uploaded sources; test is InfraBox\'s own test type (built like a git project)'
})
export const UserRole = Type.Enum(['Developer', 'Administrator', 'Owner'], {
  description: 'the token owner\'s collaborator role in the project, ascending'
})
export const JobState = Type.Enum(['queued', 'scheduled', 'running', 'finished', 'failure', 'error', 'skipped', 'killed', 'unstable'], {
  description: 'the job\'s state as InfraBox records it'
})
export const JobType = Type.Enum(['create_job_matrix', 'run_project_container', 'run_docker_compose', 'wait'], {
  description: 'create_job_matrix is the "Create Jobs" job that reads infrabox.json and creates the other jobs'
})
export const TestResult = Type.Enum(['ok', 'failure', 'error', 'skipped'], { description: 'outcome of one test' })

/** Ordered by precedence: the first state present among a build's jobs decides (SPEC §5). */
export const BUILD_STATUSES = ['running', 'failure', 'error', 'killed', 'unstable', 'finished'] as const
export const BuildStatus = Type.Enum(BUILD_STATUSES, {
  description: 'running if any job is queued, scheduled or running; else the first of failure, error, killed, unstable found among its jobs; else finished'
})

export type ProjectType = Static<typeof ProjectType>
export type UserRole = Static<typeof UserRole>
export type JobState = Static<typeof JobState>
export type JobType = Static<typeof JobType>
export type TestResult = Static<typeof TestResult>
export type BuildStatus = Static<typeof BuildStatus>

// ---------------------------------------------------------------- params

export const ProjectParams = Type.Object({ projectId: Uuid }, { additionalProperties: false })
export const BuildParams = Type.Object({ projectId: Uuid, buildId: Uuid }, { additionalProperties: false })
export const JobParams = Type.Object({ projectId: Uuid, jobId: Uuid }, { additionalProperties: false })
export type ProjectParams = Static<typeof ProjectParams>
export type BuildParams = Static<typeof BuildParams>
export type JobParams = Static<typeof JobParams>

// ---------------------------------------------------------------- projects

export const Project = Type.Object({
  id: Uuid,
  name: Type.String({ description: 'project name, unique in InfraBox' }),
  type: ProjectType,
  public: Type.Boolean({ description: 'readable by anyone in InfraBox (a token still only reaches its owner\'s collaborations)' }),
  role: UserRole
}, { additionalProperties: false, description: 'An InfraBox project the token\'s owner collaborates on.' })
export type Project = Static<typeof Project>

export const ProjectPage = DescribedPage(Project,
  'The projects this token may reach (its scope intersected with the owner\'s collaborations), by name. Pass next_cursor back as cursor for more.'
)
export type ProjectPage = Static<typeof ProjectPage>

// ---------------------------------------------------------------- builds

const buildSummaryProperties = {
  id: Uuid,
  build_number: Type.Integer({ description: 'per-project build number' }),
  restart_counter: Type.Integer({ description: '1 for the first run of a build number, +1 per restart' }),
  commit_sha: Type.Union([Type.String(), Type.Null()], { description: 'the commit built (git projects); null for uploads' }),
  branch: Type.Union([Type.String(), Type.Null()], { description: 'branch of that commit; null for uploads or an unknown commit' }),
  source: Type.Union([Type.String(), Type.Null()], { description: 'what started the build when recorded, e.g. "mcp"' }),
  created_at: Type.Union([DateTime, Type.Null()], { description: 'creation time of its first job (InfraBox builds have no timestamp of their own)' }),
  finished_at: Type.Union([DateTime, Type.Null()], { description: 'last job end; null while any job is queued, scheduled or running' }),
  status: BuildStatus
}

export const BuildSummary = Type.Object(buildSummaryProperties, {
  additionalProperties: false,
  description: 'One build (one run of a build number) with its overall status derived from its jobs.'
})
export type BuildSummary = Static<typeof BuildSummary>

export const BuildPage = DescribedPage(BuildSummary,
  'Builds of the project, newest first (build_number, then restart_counter, descending). Pass next_cursor back as cursor for more.'
)
export type BuildPage = Static<typeof BuildPage>

export const BuildsQuery = Type.Object({
  ...PageQuery.properties,
  // no control characters: PostgreSQL cannot take a NUL in text (it would be a 500, not the 400 it is)
  branch: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\u0000-\\u001f]+$', description: 'only builds of commits on this branch' })),
  status: Type.Optional(BuildStatus)
}, { additionalProperties: false, description: 'Filters and paging for the build list.' })
export type BuildsQuery = Static<typeof BuildsQuery>

export const Commit = Type.Object({
  sha: Type.String(),
  message: NullableString,
  author_name: Type.String(),
  author_email: Type.String(),
  url: Type.String({ description: 'link to the commit in its forge' }),
  branch: Type.String()
}, { additionalProperties: false, description: 'The commit a git build ran on.' })
export type Commit = Static<typeof Commit>

// ---------------------------------------------------------------- jobs

export const JobDependency = Type.Object({
  job: Type.String({ description: 'name of the job depended on' }),
  job_id: Type.Union([Uuid, Type.Null()]),
  on: Type.Array(Type.String(), { description: 'states of that job that let this one start' })
}, { additionalProperties: false })
export type JobDependency = Static<typeof JobDependency>

export const Job = Type.Object({
  id: Uuid,
  build_id: Uuid,
  name: Type.String({ description: 'job name from infrabox.json, e.g. "build/test"' }),
  type: JobType,
  state: JobState,
  start_date: NullableDateTime,
  end_date: NullableDateTime,
  created_at: DateTime,
  message: Type.Union([Type.String(), Type.Null()], { description: 'InfraBox\'s note on the outcome, e.g. why it failed' }),
  dependencies: Type.Array(JobDependency, { description: 'jobs that must reach one of the listed states first' })
}, { additionalProperties: false, description: 'One job of a build.' })
export type Job = Static<typeof Job>

export const JobPage = DescribedPage(Job,
  'Jobs of a build in creation order. Pass next_cursor back as cursor for more.'
)
export type JobPage = Static<typeof JobPage>

export const BuildDetail = Type.Object({
  ...buildSummaryProperties,
  commit: Type.Union([Commit, Type.Null()], { description: 'null for upload builds or when the commit row is unknown' }),
  jobs: Type.Array(Job, { description: 'every job of the build, in creation order' })
}, { additionalProperties: false, description: 'A build with its commit and all its jobs.' })
export type BuildDetail = Static<typeof BuildDetail>

// ---------------------------------------------------------------- test runs

export const TestRun = Type.Object({
  id: Uuid,
  suite: NullableString,
  name: NullableString,
  state: TestResult,
  duration: Type.Union([Type.Number(), Type.Null()], { description: 'seconds' }),
  message: Type.Union([Type.String(), Type.Null()], { description: 'failure message' }),
  stack: Type.Union([Type.String(), Type.Null()], { description: 'stack trace of a failure or error' }),
  timestamp: NullableDateTime
}, { additionalProperties: false, description: 'The result of one test in a job.' })
export type TestRun = Static<typeof TestRun>

export const TestRunPage = DescribedPage(TestRun,
  'Test results of a job, by suite then name. Pass next_cursor back as cursor for more.'
)
export type TestRunPage = Static<typeof TestRunPage>

export const TestRunsQuery = Type.Object({
  ...PageQuery.properties,
  state: Type.Optional(TestResult)
}, { additionalProperties: false, description: 'Filter and paging for test results.' })
export type TestRunsQuery = Static<typeof TestRunsQuery>

// ---------------------------------------------------------------- logs

/** The default window and the largest one served at once: a model gains nothing from more per call. */
export const LOG_WINDOW_MAX = 1024 * 1024
/** Largest byte offset: a PostgreSQL text value cannot exceed 1 GiB. */
export const LOG_OFFSET_MAX = 1024 * 1024 * 1024
export const LOG_TAIL_MAX = 10_000

export const JobLogQuery = Type.Object({
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: LOG_OFFSET_MAX, description: 'first byte (UTF-8) of the window; with it the window starts here instead of ending at the log\'s end' })),
  length: Type.Optional(Type.Integer({ minimum: 1, maximum: LOG_WINDOW_MAX, description: 'bytes in the window, at most 1 MiB (default 1 MiB); without offset the window is the last `length` bytes' })),
  tail: Type.Optional(Type.Integer({ minimum: 1, maximum: LOG_TAIL_MAX, description: 'the last N lines instead of a byte window (at most 1 MiB of them); not combinable with offset/length' }))
}, { additionalProperties: false, description: 'Which part of the log: by default its last 1 MiB.' })
export type JobLogQuery = Static<typeof JobLogQuery>

export const JobLog = Type.Object({
  log: Type.String({ description: 'the window\'s text; always whole UTF-8 characters' }),
  total_bytes: Type.Integer({ minimum: 0, description: 'size of the whole log in UTF-8 bytes' }),
  offset: Type.Integer({ minimum: 0, description: 'byte position of the window in the whole log' }),
  length: Type.Integer({ minimum: 0, description: 'bytes in the window; the next window starts at offset + length' }),
  truncated: Type.Boolean({ description: 'true when the window is not the whole log' })
}, { additionalProperties: false, description: 'A window of a job\'s console log (finished jobs: the stored log; running jobs: the lines so far).' })
export type JobLog = Static<typeof JobLog>

// ---------------------------------------------------------------- artifacts

export const Artifact = Type.Object({
  filename: Type.String(),
  size: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'bytes, as the job reported it' })
}, { additionalProperties: false, description: 'A file a job uploaded.' })
export type Artifact = Static<typeof Artifact>

export const ArtifactPage = DescribedPage(Artifact,
  'The files the job uploaded (job.archive), in upload order; next_cursor is always null.'
)
export type ArtifactPage = Static<typeof ArtifactPage>

export const ARTIFACT_FILENAME_MAX = 255
export const ArtifactDownloadQuery = Type.Object({
  filename: Type.String({ minLength: 1, maxLength: ARTIFACT_FILENAME_MAX, description: 'a filename listed by the job\'s artifacts' })
}, { additionalProperties: false, description: 'Which artifact to download.' })
export type ArtifactDownloadQuery = Static<typeof ArtifactDownloadQuery>

export const ArtifactContent = Type.Object({
  filename: Type.String(),
  size: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'bytes; null when neither the store nor the job recorded it' }),
  content_type: Type.String({ description: 'media type from the file name, e.g. text/plain; charset=utf-8' }),
  download_url: Type.String({ format: 'uri', description: 'the REST download of this file; send the same Authorization header' }),
  text: Type.Optional(Type.String({ description: 'the whole file as UTF-8 text; present only for small text files (at most 256 KiB)' }))
}, { additionalProperties: false, description: 'One artifact of a job: inline when it is small text, else a link to download it.' })
export type ArtifactContent = Static<typeof ArtifactContent>

// ---------------------------------------------------------------- trigger

/** Environment variable names as POSIX shells accept them. */
export const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,127}$'
export const ENV_MAX_VARIABLES = 64
export const ENV_VALUE_MAX = 8192
/** Any text but NUL and unpaired UTF-16 surrogates (Ajv matches with the `u` flag: a paired surrogate is one code point). */
export const ENV_VALUE_PATTERN = '^[^\\u0000\\ud800-\\udfff]*$'

export const TriggerBody = Type.Object({
  branch: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\u0000-\\u001f]+$', description: 'git projects: build the newest known commit of this branch (with sha: the commit must be on it)' })),
  sha: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{7,64}$', description: 'git projects: the commit to build, full or an unambiguous prefix of at least 7 hex digits' })),
  env: Type.Optional(Type.Record(
    Type.String({ pattern: ENV_NAME_PATTERN }),
    // jsonb refuses \u0000 and unpaired surrogates: a 400 here, not a 500 from the INSERT
    Type.String({ maxLength: ENV_VALUE_MAX, pattern: ENV_VALUE_PATTERN }),
    // propertyNames as well: Fastify's Ajv (removeAdditional) would otherwise drop a badly named variable silently instead of a 400.
    { maxProperties: ENV_MAX_VARIABLES, additionalProperties: false, propertyNames: { pattern: ENV_NAME_PATTERN }, description: `environment for the build: NAME -> value, at most ${ENV_MAX_VARIABLES} names matching ${ENV_NAME_PATTERN}, values up to ${ENV_VALUE_MAX} characters` }
  ))
}, { additionalProperties: false, description: 'What to build. Git projects need branch or sha; upload projects rebuild their newest upload.' })
export type TriggerBody = Static<typeof TriggerBody>

export const TriggerResult = Type.Object({
  build: Type.Object({
    id: Uuid,
    build_number: Type.Integer({ minimum: 1 }),
    restart_counter: Type.Integer({ minimum: 1 })
  }, { additionalProperties: false })
}, { additionalProperties: false, description: 'The build just queued; follow it with get_build.' })
export type TriggerResult = Static<typeof TriggerResult>
