// SPEC §5's operations: read projects, builds, jobs, logs, test results and artifacts, and trigger a build.
import { Type } from '@fastify/type-provider-typebox'
import { checkTriggerEnv } from '../trigger-env.js'
import type { ContentBlock } from '@modelcontextprotocol/server'
import { listProjects } from '../../db/projects.js'
import { getBuild, listBuilds } from '../../db/builds.js'
import { getJob, listJobs, listTestRuns } from '../../db/jobs.js'
import { readJobLog } from '../../db/logs.js'
import { listArtifacts } from '../../db/artifacts.js'
import { triggerBuild } from '../../db/trigger.js'
import { triggerOnce } from '../../db/idempotency.js'
import { ArtifactWindowContent, artifactWindowProperties } from '../../schemas/agent.js'
import { hasWindow, readJobArtifactText } from '../artifact-text.js'
import { PageQuery } from '../../schemas/common.js'
import {
  ArtifactDownloadQuery, ArtifactPage, BuildDetail, BuildPage, BuildParams, BuildsQuery, Job, JobLog, JobLogQuery,
  JobPage, JobParams, Project, ProjectPage, ProjectParams, TestRunPage, TestRunsQuery, TriggerBody, TriggerResult
} from '../../schemas/data.js'
import { INLINE_TEXT_MAX, readArtifactSummary } from '../artifacts.js'
import { budgetNote, defineOperation, projectOf } from './define.js'

const NoParams = Type.Object({})
const NoQuery = Type.Object({}, { additionalProperties: false })
const Paging = Type.Object({ ...PageQuery.properties }, { additionalProperties: false })

export const listProjectsOp = defineOperation({
  name: 'list_projects',
  tag: 'data',
  title: 'List projects',
  description: 'The InfraBox projects this token can read: id, name, type, public and your role. Start here. Paged: pass next_cursor back as cursor until it is null.' + budgetNote('list_projects'),
  path: '/projects',
  bucket: 'list_projects',
  rpm: 'default',
  params: NoParams,
  input: Paging,
  output: ProjectPage,
  run: async (ctx, args) => await listProjects(ctx.services.db, { userId: ctx.principal.userId, enabledProjects: ctx.principal.enabledProjects, limit: args.limit, cursor: args.cursor })
})

export const getProjectOp = defineOperation({
  name: 'get_project',
  tag: 'data',
  title: 'Get a project',
  description: 'One project by id: name, type, public and your role.' + budgetNote('list_projects'),
  path: '/projects/:projectId',
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

export const listBuildsOp = defineOperation({
  name: 'list_builds',
  tag: 'data',
  title: 'List builds',
  description: 'Builds of a project, newest first, each with its status (running, failure, error, killed, unstable or finished), branch, commit sha and times. Filter by branch or status; paged with cursor/next_cursor.' + budgetNote('list_builds'),
  path: '/projects/:projectId/builds',
  bucket: 'list_builds',
  rpm: 'default',
  params: ProjectParams,
  input: BuildsQuery,
  output: BuildPage,
  run: async (ctx, args) => await listBuilds(ctx.services.db, projectOf(ctx).id, { branch: args.branch, status: args.status, limit: args.limit, cursor: args.cursor }, ctx.services.infrabox)
})

export const getBuildOp = defineOperation({
  name: 'get_build',
  tag: 'data',
  title: 'Get a build',
  description: 'One build with its commit (message, author, url) and all its jobs with their states.' + budgetNote('list_builds'),
  path: '/projects/:projectId/builds/:buildId',
  untrusted: true,
  bucket: 'list_builds',
  rpm: 'default',
  params: BuildParams,
  input: NoQuery,
  output: BuildDetail,
  run: async (ctx, args) => await getBuild(ctx.services.db, projectOf(ctx).id, args.buildId, ctx.services.infrabox)
})

export const listJobsOp = defineOperation({
  name: 'list_jobs',
  tag: 'data',
  title: 'List jobs of a build',
  description: 'The jobs of a build: id, name, type, state, start/end, message and dependencies. Paged with cursor/next_cursor.' + budgetNote('list_jobs'),
  path: '/projects/:projectId/builds/:buildId/jobs',
  untrusted: true,
  bucket: 'list_jobs',
  rpm: 'default',
  params: BuildParams,
  input: Paging,
  output: JobPage,
  run: async (ctx, args) => await listJobs(ctx.services.db, projectOf(ctx).id, args.buildId, { limit: args.limit, cursor: args.cursor })
})

export const getJobOp = defineOperation({
  name: 'get_job',
  tag: 'data',
  title: 'Get a job',
  description: 'One job by id: name, type, state, times, message and dependencies.' + budgetNote('list_jobs'),
  path: '/projects/:projectId/jobs/:jobId',
  untrusted: true,
  bucket: 'list_jobs',
  rpm: 'default',
  params: JobParams,
  input: NoQuery,
  output: Job,
  run: async (ctx, args) => await getJob(ctx.services.db, projectOf(ctx).id, args.jobId)
})

export const listTestRunsOp = defineOperation({
  name: 'list_test_runs',
  tag: 'data',
  title: 'List test results of a job',
  description: 'Test results of a job: suite, name, state (ok, failure, error, skipped), duration, message and stack. Filter by state (e.g. failure); paged with cursor/next_cursor.' + budgetNote('list_jobs'),
  path: '/projects/:projectId/jobs/:jobId/testruns',
  untrusted: true,
  bucket: 'list_jobs',
  rpm: 'default',
  params: JobParams,
  input: TestRunsQuery,
  output: TestRunPage,
  run: async (ctx, args) => await listTestRuns(ctx.services.db, projectOf(ctx).id, args.jobId, { state: args.state, limit: args.limit, cursor: args.cursor })
})

export const getJobLogOp = defineOperation({
  name: 'get_job_log',
  tag: 'data',
  title: 'Read a job\'s console log',
  description: 'A window of a job\'s console log: by default its last 1 MiB. Use tail for the last N lines, or offset+length (bytes) to page: the next window starts at offset + length; truncated says whether there is more. Logs older than 30 days may have been deleted.' + budgetNote('get_job_log', 'small: 10 by default'),
  path: '/projects/:projectId/jobs/:jobId/log',
  untrusted: true,
  bucket: 'get_job_log',
  rpm: 'log',
  params: JobParams,
  input: JobLogQuery,
  output: JobLog,
  refusals: { 410: 'MCP_GONE: InfraBox\'s garbage collector deleted this job\'s log' },
  run: async (ctx, args) => await readJobLog(ctx.services.db, projectOf(ctx).id, args.jobId, { offset: args.offset, length: args.length, tail: args.tail })
})

export const listArtifactsOp = defineOperation({
  name: 'list_artifacts',
  tag: 'data',
  title: 'List a job\'s artifacts',
  description: 'The files a job uploaded (filename, size). Fetch one with get_artifact.' + budgetNote('list_job_artifacts', 'small: 10 by default'),
  path: '/projects/:projectId/jobs/:jobId/artifacts',
  bucket: 'list_job_artifacts',
  rpm: 'artifact',
  params: JobParams,
  input: NoQuery,
  output: ArtifactPage,
  run: async (ctx, args) => await listArtifacts(ctx.services.db, projectOf(ctx).id, args.jobId)
})

/**
 * One artifact. Its REST twin is the download (the bytes themselves, routes/…/artifacts/download); the JSON answer
 * here is what the MCP tool returns: small text inline, anything else as a link to that download.
 */
export const getArtifactOp = defineOperation({
  name: 'get_artifact',
  tag: 'data',
  title: 'Get a job\'s artifact',
  description: 'One file a job uploaded (see list_artifacts for the names). Text files up to ' +
    `${INLINE_TEXT_MAX / 1024} KiB come back inline in "text"; anything else comes back as a resource_link to its ` +
    'download_url, which needs the same Authorization header as this endpoint. For a large text file ask for a window instead: ' +
    'tail (the last N lines), grep (a regular expression in RE2 syntax: the matching lines with their numbers; ignore_case, ' +
    'max_matches), or offset+length (bytes; the next window starts at offset + length). Binary files have no text windows.' + budgetNote('list_job_artifacts', 'shared with list_artifacts; small: 10 by default'),
  path: '/projects/:projectId/jobs/:jobId/artifacts/download',
  untrusted: true,
  bucket: 'list_job_artifacts',
  rpm: 'artifact',
  params: JobParams,
  // the REST download takes the filename alone (its route narrows the query); the window arguments are get_artifact's
  // and GET …/artifacts/text's
  input: Type.Object({ ...ArtifactDownloadQuery.properties, ...artifactWindowProperties }, { additionalProperties: false, description: 'Which artifact, and optionally which window of it.' }),
  output: ArtifactWindowContent,
  refusals: { 404: 'MCP_NOT_FOUND: the job has no artifact of that name, or storage does not hold it' },
  run: async (ctx, args) => {
    const project = projectOf(ctx)
    const downloadUrl = ctx.restUrl(`/projects/${project.id}/jobs/${args.jobId.toLowerCase()}/artifacts/download?filename=${encodeURIComponent(args.filename)}`)
    if (hasWindow(args)) return { ...await readJobArtifactText(ctx.services, project.id, args.jobId, args.filename, args), download_url: downloadUrl }
    return await readArtifactSummary(ctx.services, project.id, args.jobId, args.filename, downloadUrl)
  },
  toolContent: (artifact): ContentBlock[] => artifact.text !== undefined || artifact.mode !== undefined
    ? []
    : [{
        type: 'resource_link',
        uri: artifact.download_url,
        name: artifact.filename,
        mimeType: artifact.content_type,
        ...(artifact.size === null ? {} : { size: artifact.size }),
        description: 'download with the same Authorization header as the MCP endpoint'
      }]
})

export const triggerBuildOp = defineOperation({
  name: 'trigger_build',
  tag: 'data',
  title: 'Trigger a build',
  description: 'Starts a new build of the project, as InfraBox\'s own "trigger" does. Git projects need a branch (its newest known commit is built) or a sha of a known commit; upload projects rebuild their newest upload. Optional env: NAME -> value. Returns the new build id and number; follow it with wait_for_build. Pass an idempotency_key (e.g. a UUID you make up) so that a retry of the same call within 24 h returns the same build instead of starting another. Needs a token with allow_trigger.' + budgetNote('trigger_build', '5 by default'),
  path: '/projects/:projectId/trigger',
  method: 'POST',
  bucket: 'trigger_build',
  rpm: 'trigger',
  params: ProjectParams,
  input: TriggerBody,
  output: TriggerResult,
  successStatus: 201,
  trigger: true,
  // starting builds is not done blind: while the limiter cannot answer, 503 + Retry-After (SPEC §13.10)
  failClosed: true,
  idempotencyKey: true,
  refusals: {
    409: 'MCP_CONFLICT: an upload project has no earlier upload to build, or a trigger with the same Idempotency-Key is still starting',
    422: 'MCP_UNPROCESSABLE: the branch or sha resolves to no known commit of the project (or is ambiguous), or the Idempotency-Key was used with a different request'
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  run: async (ctx, args) => {
    const project = projectOf(ctx)
    checkTriggerEnv(args.env)
    const target = { id: project.id, type: project.type }
    const body = { branch: args.branch, sha: args.sha, env: args.env }
    if (ctx.idempotencyKey === undefined) return await triggerBuild(ctx.services.db, target, body, ctx.services.infrabox)
    return (await triggerOnce(ctx.services.db, ctx.principal.tokenId, ctx.idempotencyKey, target, body, ctx.services.infrabox)).result
  }
})
