// SPEC §14's operations: restart, rerun, retry and abort builds and jobs as InfraBox does, and the token's own access log.
import { Type } from '@fastify/type-provider-typebox'
import { abortBuild, abortJob, rerunJob, restartBuild, restartJob, retryFailedJobs, type Actor } from '../../db/control.js'
import { listTokenAccessLog } from '../../db/access-log.js'
import { AbortResult, MyAccessLogPage, MyAccessLogQuery, NoBody, RestartedBuild, RestartedJobs } from '../../schemas/control.js'
import { BuildParams, JobParams } from '../../schemas/data.js'
import { triggerBuildOp } from './data.js'
import { budgetNote, defineOperation, projectOf, type OperationContext, type ToolAnnotations } from './define.js'

const actorOf = (ctx: OperationContext): Actor => ({ userId: ctx.principal.userId, tokenId: ctx.principal.tokenId })

/** What every action shares with trigger_build: a POST in its budget, needing allow_trigger, failing closed as it does. */
const ACTION = {
  method: 'POST',
  bucket: triggerBuildOp.bucket,
  rpm: triggerBuildOp.rpm,
  failClosed: triggerBuildOp.failClosed,
  trigger: true
} as const

const ACTION_NOTE = ' Needs a token with allow_trigger.' + budgetNote('trigger_build', '5 by default, shared with trigger_build')

/** Adds work (queued jobs or a build); a second call of the same job is refused, so it is idempotent. */
const RESTARTS: ToolAnnotations = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false }
const RESTARTS_ONCE: ToolAnnotations = { ...RESTARTS, idempotentHint: true }
/** Kills running work; asking twice changes nothing more. */
const ABORTS: ToolAnnotations = { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false }

export const restartBuildOp = defineOperation({
  ...ACTION,
  name: 'restart_build',
  refusals: { 409: 'MCP_CONFLICT: the build has no Create Jobs job to restart from' },
  title: 'Restart a build',
  description: 'Runs the whole build again, as InfraBox\'s "restart build" does: a new build with the same commit (or upload), the same ' +
    'build number and the next restart_counter, starting from its Create Jobs job. Use it when the Create Jobs job itself failed or ' +
    'you want every job again; to repeat only what failed, use retry_failed_jobs. Returns the new build; follow it with wait_for_build.' + ACTION_NOTE,
  path: '/projects/:projectId/builds/:buildId/restart',
  params: BuildParams,
  input: NoBody,
  output: RestartedBuild,
  successStatus: 201,
  annotations: RESTARTS,
  run: async (ctx, args) => await restartBuild(ctx.services.db, actorOf(ctx), projectOf(ctx).id, args.buildId, ctx.services.infrabox)
})

export const restartJobOp = defineOperation({
  ...ACTION,
  name: 'restart_job',
  refusals: { 409: 'MCP_CONFLICT: the job cannot be restarted now (a Create Jobs or wait job, still queued or running, already restarted, a dependent still running, or another restart came first)' },
  title: 'Restart a job and what depends on it',
  description: 'Runs one finished job again in the same build, with every job that depends on it (transitively), as InfraBox\'s "restart ' +
    'job" does: each is cloned as a queued job named <name>.1 (then .2, …) and the originals are marked restarted. Only jobs that ' +
    'ran a container (not Create Jobs, not wait) in finished, failure, error, killed or unstable can be restarted, each once (then act ' +
    'on its clone); a job still running is refused (abort_job first). Follow the build with wait_for_build.' + ACTION_NOTE,
  path: '/projects/:projectId/jobs/:jobId/restart',
  params: JobParams,
  input: NoBody,
  output: RestartedJobs,
  successStatus: 201,
  annotations: RESTARTS_ONCE,
  run: async (ctx, args) => await restartJob(ctx.services.db, actorOf(ctx), projectOf(ctx).id, args.jobId)
})

export const rerunJobOp = defineOperation({
  ...ACTION,
  name: 'rerun_job',
  refusals: { 409: 'MCP_CONFLICT: the job cannot be rerun now (a Create Jobs or wait job, still queued or running, already restarted, a parent still running, or another restart came first)' },
  title: 'Rerun one job alone',
  description: 'Runs one finished job again without the jobs that depend on it, as InfraBox\'s "rerun" does: the job is cloned as ' +
    '<name>.1 and the jobs depending on it are pointed at the clone. Same rules as restart_job; also refused while a job it depends ' +
    'on is still queued or running.' + ACTION_NOTE,
  path: '/projects/:projectId/jobs/:jobId/rerun',
  params: JobParams,
  input: NoBody,
  output: RestartedJobs,
  successStatus: 201,
  annotations: RESTARTS_ONCE,
  run: async (ctx, args) => await rerunJob(ctx.services.db, actorOf(ctx), projectOf(ctx).id, args.jobId)
})

export const retryFailedJobsOp = defineOperation({
  ...ACTION,
  name: 'retry_failed_jobs',
  refusals: { 409: 'MCP_CONFLICT: nothing to retry, or another restart of these jobs came first' },
  title: 'Retry the failed jobs of a build',
  description: 'The usual answer to a flaky failure: restart_job for every job of the build in failure, error, killed or unstable, ' +
    'in one step (all or nothing), each with the jobs depending on it. Look at why it failed first (the failure summary, the ' +
    'job\'s test runs or log) to judge whether a retry can help, then follow the build with wait_for_build. Refused when nothing failed, or when only the Create Jobs job failed ' +
    '(use restart_build).' + ACTION_NOTE,
  path: '/projects/:projectId/builds/:buildId/retry-failed',
  params: BuildParams,
  input: NoBody,
  output: RestartedJobs,
  successStatus: 201,
  annotations: RESTARTS,
  run: async (ctx, args) => await retryFailedJobs(ctx.services.db, actorOf(ctx), projectOf(ctx).id, args.buildId)
})

export const abortBuildOp = defineOperation({
  ...ACTION,
  name: 'abort_build',
  title: 'Abort a build',
  description: 'Stops a build: asks InfraBox\'s scheduler to kill every job of it still queued, scheduled or running (they end as ' +
    'killed shortly after; wait_for_build shows it). Returns the jobs asked to stop; an empty list when nothing was running. ' +
    'Destructive: the work of those jobs is lost.' + ACTION_NOTE,
  path: '/projects/:projectId/builds/:buildId/abort',
  params: BuildParams,
  input: NoBody,
  output: AbortResult,
  annotations: ABORTS,
  run: async (ctx, args) => await abortBuild(ctx.services.db, actorOf(ctx), projectOf(ctx).id, args.buildId)
})

export const abortJobOp = defineOperation({
  ...ACTION,
  name: 'abort_job',
  refusals: { 409: 'MCP_CONFLICT: the job has already ended' },
  title: 'Abort a job',
  description: 'Stops one job that is still queued, scheduled or running: InfraBox\'s scheduler kills it shortly after. A job that ' +
    'has already ended is refused. Destructive: the job\'s work is lost.' + ACTION_NOTE,
  path: '/projects/:projectId/jobs/:jobId/abort',
  params: JobParams,
  input: NoBody,
  output: AbortResult,
  annotations: ABORTS,
  run: async (ctx, args) => await abortJob(ctx.services.db, actorOf(ctx), projectOf(ctx).id, args.jobId)
})

export const getMyAccessLogOp = defineOperation({
  name: 'get_my_access_log',
  title: 'My recent calls',
  description: 'This token\'s own recent calls, newest first: action (the tool), outcome, status code, project, REST or MCP, the ' +
    'refusal reason and the time. Use it to see what was refused and why, or what you already did. A call shows up about a ' +
    'second after it ended. Paged: pass next_cursor back as cursor.' + budgetNote('introspect', '60 by default'),
  path: '/me/access-log',
  bucket: 'introspect',
  rpm: 'introspect',
  params: Type.Object({}),
  input: MyAccessLogQuery,
  output: MyAccessLogPage,
  // Each call adds a row of its own, so the answer changes from call to call.
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  run: async (ctx, args) => {
    const page = await listTokenAccessLog(ctx.services.db, ctx.principal.tokenId, { limit: args.limit, cursor: args.cursor })
    return {
      items: page.items.map(r => ({
        id: r.id,
        action: r.action,
        outcome: r.outcome,
        status_code: r.status_code,
        project_id: r.project_id,
        via: r.via,
        error: r.error,
        accessed_at: r.accessed_at
      })),
      next_cursor: page.next_cursor
    }
  }
})

/** SPEC §14's operations, in the order tools/list shows them. */
export const CONTROL_OPERATIONS = [restartBuildOp, restartJobOp, rerunJobOp, retryFailedJobsOp, abortBuildOp, abortJobOp] as const
