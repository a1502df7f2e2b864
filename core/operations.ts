// The actions an agent can take, defined once: schemas, budget, access needs and the work. REST routes and MCP tools both derive from these.
import { Type, type Static, type TObject, type TSchema } from '@fastify/type-provider-typebox'
import { listProjects } from '../db/projects.js'
import { getBuild, listBuilds } from '../db/builds.js'
import { getJob, listJobs, listTestRuns } from '../db/jobs.js'
import { readJobLog } from '../db/logs.js'
import { listArtifacts } from '../db/artifacts.js'
import { triggerBuild } from '../db/trigger.js'
import { PageQuery } from '../schemas/common.js'
import {
  ArtifactPage, BuildDetail, BuildPage, BuildParams, BuildsQuery, Job, JobLog, JobLogQuery, JobPage, JobParams,
  Project, ProjectPage, ProjectParams, TestRunPage, TestRunsQuery, TriggerBody, TriggerResult
} from '../schemas/data.js'
import type { BucketLimits, GatewayServices } from './services.js'
import type { Principal, ProjectGrant } from './access.js'

export interface OperationContext {
  services: GatewayServices
  principal: Principal
  /** the authorized project (for operations on one project), null for list_projects */
  project: ProjectGrant | null
}

export interface ToolAnnotations { readOnlyHint: boolean, destructiveHint: boolean, idempotentHint: boolean, openWorldHint: boolean }

export interface Operation<P extends TObject = TObject, I extends TObject = TObject, O extends TSchema = TSchema> {
  /** the MCP tool's name and the audit action of both twins */
  name: string
  title: string
  /** written for a model: what comes back, how to page, what it costs */
  description: string
  /** the rate-limit budget it spends, shared with its twin */
  bucket: string
  rpm: keyof BucketLimits
  /** path parameters of the REST route; `projectId` among them means project access is checked */
  params: P
  /** query string (GET) or body (POST) */
  input: I
  inputIn: 'query' | 'body'
  output: O
  /** needs allow_trigger */
  trigger: boolean
  annotations: ToolAnnotations
  run: (ctx: OperationContext, args: Static<P> & Static<I>) => Promise<Static<O>>
}

const READ: ToolAnnotations = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false }
const NoParams = Type.Object({})
const NoQuery = Type.Object({}, { additionalProperties: false })

function define<P extends TObject, I extends TObject, O extends TSchema> (op: Omit<Operation<P, I, O>, 'inputIn' | 'trigger' | 'annotations'> & Partial<Pick<Operation<P, I, O>, 'inputIn' | 'trigger' | 'annotations'>>): Operation<P, I, O> {
  return { inputIn: 'query', trigger: false, annotations: READ, ...op }
}

/** The project the chain authorized; operations with a projectId param always have one. */
function projectOf (ctx: OperationContext): ProjectGrant {
  if (ctx.project === null) throw new Error('operation needs an authorized project')
  return ctx.project
}

const budgetNote = (rpm: string): string => ` Costs one call of your ${rpm} budget (per user per minute).`

export const listProjectsOp = define({
  name: 'list_projects',
  title: 'List projects',
  description: 'The InfraBox projects this token can read: id, name, type, public and your role. Paged: pass next_cursor back as cursor until it is null.' + budgetNote('list_projects'),
  bucket: 'list_projects',
  rpm: 'default',
  params: NoParams,
  input: Type.Object({ ...PageQuery.properties }, { additionalProperties: false }),
  output: ProjectPage,
  run: async (ctx, args) => await listProjects(ctx.services.db, { userId: ctx.principal.userId, enabledProjects: ctx.principal.enabledProjects, limit: args.limit, cursor: args.cursor })
})

export const getProjectOp = define({
  name: 'get_project',
  title: 'Get a project',
  description: 'One project by id: name, type, public and your role.' + budgetNote('list_projects'),
  bucket: 'list_projects',
  rpm: 'default',
  params: ProjectParams,
  input: NoQuery,
  output: Project,
  run: async (ctx) => {
    const { id, name, type, public: isPublic, role } = projectOf(ctx)
    return { id, name, type, public: isPublic, role }
  }
})

export const listBuildsOp = define({
  name: 'list_builds',
  title: 'List builds',
  description: 'Builds of a project, newest first, each with its status (running, failure, error, killed, unstable or finished), branch, commit sha and times. Filter by branch or status; paged with cursor/next_cursor.' + budgetNote('list_builds'),
  bucket: 'list_builds',
  rpm: 'default',
  params: ProjectParams,
  input: BuildsQuery,
  output: BuildPage,
  run: async (ctx, args) => await listBuilds(ctx.services.db, projectOf(ctx).id, { branch: args.branch, status: args.status, limit: args.limit, cursor: args.cursor })
})

export const getBuildOp = define({
  name: 'get_build',
  title: 'Get a build',
  description: 'One build with its commit (message, author, url) and all its jobs with their states.' + budgetNote('list_builds'),
  bucket: 'list_builds',
  rpm: 'default',
  params: BuildParams,
  input: NoQuery,
  output: BuildDetail,
  run: async (ctx, args) => await getBuild(ctx.services.db, projectOf(ctx).id, args.buildId)
})

export const listJobsOp = define({
  name: 'list_jobs',
  title: 'List jobs of a build',
  description: 'The jobs of a build: id, name, type, state, start/end, message and dependencies. Paged with cursor/next_cursor.' + budgetNote('list_jobs'),
  bucket: 'list_jobs',
  rpm: 'default',
  params: BuildParams,
  input: Type.Object({ ...PageQuery.properties }, { additionalProperties: false }),
  output: JobPage,
  run: async (ctx, args) => await listJobs(ctx.services.db, projectOf(ctx).id, args.buildId, { limit: args.limit, cursor: args.cursor })
})

export const getJobOp = define({
  name: 'get_job',
  title: 'Get a job',
  description: 'One job by id: name, type, state, times, message and dependencies.' + budgetNote('list_jobs'),
  bucket: 'list_jobs',
  rpm: 'default',
  params: JobParams,
  input: NoQuery,
  output: Job,
  run: async (ctx, args) => await getJob(ctx.services.db, projectOf(ctx).id, args.jobId)
})

export const listTestRunsOp = define({
  name: 'list_test_runs',
  title: 'List test results of a job',
  description: 'Test results of a job: suite, name, state (ok, failure, error, skipped), duration, message and stack. Filter by state (e.g. failure); paged with cursor/next_cursor.' + budgetNote('list_jobs'),
  bucket: 'list_jobs',
  rpm: 'default',
  params: JobParams,
  input: TestRunsQuery,
  output: TestRunPage,
  run: async (ctx, args) => await listTestRuns(ctx.services.db, projectOf(ctx).id, args.jobId, { state: args.state, limit: args.limit, cursor: args.cursor })
})

export const getJobLogOp = define({
  name: 'get_job_log',
  title: 'Read a job\'s console log',
  description: 'A window of a job\'s console log: by default its last 1 MiB. Use tail for the last N lines, or offset+length (bytes) to page: the next window starts at offset + length; truncated says whether there is more. Logs older than 30 days may have been deleted.' + budgetNote('get_job_log (small: 10 per minute by default)'),
  bucket: 'get_job_log',
  rpm: 'log',
  params: JobParams,
  input: JobLogQuery,
  output: JobLog,
  run: async (ctx, args) => await readJobLog(ctx.services.db, projectOf(ctx).id, args.jobId, { offset: args.offset, length: args.length, tail: args.tail })
})

export const listArtifactsOp = define({
  name: 'list_artifacts',
  title: 'List a job\'s artifacts',
  description: 'The files a job uploaded (filename, size). Fetch one with get_artifact.' + budgetNote('list_job_artifacts (small: 10 per minute by default)'),
  bucket: 'list_job_artifacts',
  rpm: 'artifact',
  params: JobParams,
  input: NoQuery,
  output: ArtifactPage,
  run: async (ctx, args) => await listArtifacts(ctx.services.db, projectOf(ctx).id, args.jobId)
})

export const triggerBuildOp = define({
  name: 'trigger_build',
  title: 'Trigger a build',
  description: 'Starts a new build of the project, as InfraBox\'s own "trigger" does. Git projects need a branch (its newest known commit is built) or a sha of a known commit; upload projects rebuild their newest upload. Optional env: NAME -> value. Returns the new build id and number; follow it with get_build. Needs a token with allow_trigger.' + budgetNote('trigger_build (5 per minute by default)'),
  bucket: 'trigger_build',
  rpm: 'trigger',
  params: ProjectParams,
  input: TriggerBody,
  inputIn: 'body',
  output: TriggerResult,
  trigger: true,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  run: async (ctx, args) => {
    const project = projectOf(ctx)
    return await triggerBuild(ctx.services.db, { id: project.id, type: project.type }, { branch: args.branch, sha: args.sha, env: args.env })
  }
})

/** Every JSON operation, in the order of SPEC §5 (get_artifact streams bytes: see core/artifacts.ts). */
export const OPERATIONS = [
  listProjectsOp, getProjectOp, listBuildsOp, getBuildOp, listJobsOp, getJobOp, listTestRunsOp, getJobLogOp, listArtifactsOp, triggerBuildOp
] as const
