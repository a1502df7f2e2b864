// SPEC §11's wait_for_build: InfraBox's notifications wake the waiters (core/build-waiter.ts). get_token_info sits with OPERATIONS (it lists their budgets).
import { untrustedText } from '../../lib/text.js'
import { BuildParams, type BuildDetail } from '../../schemas/data.js'
import { BuildLogSearchQuery, BuildRefParams, CompareQuery, CompareResult, FailureSummary, FailureSummaryQuery, LogSearchResult, WaitQuery, WaitResult } from '../../schemas/agent.js'
import { searchBuildLogs } from '../log-search.js'
import { compareBuilds } from '../compare.js'
import { failureSummary } from '../failure-summary.js'
import { budgetNote, defineOperation, projectOf } from './define.js'

/** The answer of a wait: the build's status and its jobs' states; job names and messages are CI text. */
function waitResult (finished: boolean, elapsedMs: number, build: BuildDetail): WaitResult {
  const jobStates: Record<string, number> = {}
  for (const job of build.jobs) jobStates[job.state] = (jobStates[job.state] ?? 0) + 1
  return {
    finished,
    elapsed_seconds: Math.round(elapsedMs / 100) / 10,
    build: {
      id: build.id,
      build_number: build.build_number,
      restart_counter: build.restart_counter,
      status: build.status,
      branch: build.branch,
      commit_sha: build.commit_sha,
      created_at: build.created_at,
      finished_at: build.finished_at
    },
    job_states: jobStates,
    jobs: build.jobs.map(job => ({
      id: job.id,
      name: untrustedText(job.name),
      state: job.state,
      start_date: job.start_date,
      end_date: job.end_date,
      message: job.message === null ? null : untrustedText(job.message)
    }))
  }
}

export const waitForBuildOp = defineOperation({
  name: 'wait_for_build',
  title: 'Wait until a build finishes',
  description: 'Returns as soon as the build stops running (no job queued, scheduled or running) with its status and every job\'s state; ' +
    'or after timeout seconds (default 30, max 45) with finished: false, and then you call it again. Use it after trigger_build instead of ' +
    'polling get_build: InfraBox itself wakes the gateway, and one call covers up to 45 s.' + budgetNote('list_builds'),
  path: '/projects/:projectId/builds/:buildId/wait',
  bucket: 'list_builds',
  rpm: 'default',
  params: BuildParams,
  input: WaitQuery,
  output: WaitResult,
  // not idempotent: the answer depends on when it is asked
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  untrusted: true,
  run: async (ctx, args) => {
    const outcome = await ctx.services.waiters.wait(projectOf(ctx).id, args.buildId, args.timeout * 1000, ctx.signal)
    return waitResult(outcome.finished, outcome.elapsedMs, outcome.build)
  }
})

export const getBuildFailureSummaryOp = defineOperation({
  name: 'get_build_failure_summary',
  title: 'Why did this build fail?',
  description: 'START HERE when a build failed. One call answers why: the build\'s status and job states; for each failed job ' +
    '(failure, error, killed, unstable) its message, the first error lines of its log with line numbers (compiler and linker ' +
    'errors, test failures, tracebacks, npm ERR!, FATAL, exit codes), the last `tail` lines, and its failing tests, each marked ' +
    'new (first failure), known (failed in the previous build of the branch too) or flaky (flipped at least twice in the last 10). ' +
    'buildId may be latest_failed (with `branch`). The answer stays under max_bytes (32 KiB by default); cut parts say truncated. ' +
    'Then use search_build_logs for any other pattern, compare_builds for what changed since the last green build.' + budgetNote('get_job_log', '10 by default'),
  path: '/projects/:projectId/builds/:buildId/failures',
  bucket: 'get_job_log',
  rpm: 'log',
  params: BuildRefParams,
  input: FailureSummaryQuery,
  output: FailureSummary,
  // not idempotent: a running build's summary changes
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  untrusted: true,
  run: async (ctx, args) => await failureSummary(ctx.services.db, projectOf(ctx).id, args.buildId, args)
})

export const searchBuildLogsOp = defineOperation({
  name: 'search_build_logs',
  title: 'Search the logs of a build',
  description: 'Finds a regular expression (RE2 syntax, linear time) in every job log of a build in one call, or in one job with ' +
    'jobId, or in jobs whose name contains `job`: each match with its job, line number and `context` lines around it. Use it after ' +
    'get_build_failure_summary when you need more than its first error lines (e.g. q="TS\\d+", q="(?i)timeout"). At most ' +
    '`limit` matches (default 50) and `per_job` per job; pass next_cursor back as cursor (same arguments) for more.' + budgetNote('get_job_log', '10 by default'),
  path: '/projects/:projectId/builds/:buildId/log-search',
  bucket: 'get_job_log',
  rpm: 'log',
  params: BuildParams,
  input: BuildLogSearchQuery,
  output: LogSearchResult,
  untrusted: true,
  run: async (ctx, args) => await searchBuildLogs(ctx.services.db, projectOf(ctx).id, args.buildId, args)
})

export const compareBuildsOp = defineOperation({
  name: 'compare_builds',
  title: 'What changed since the last passing build?',
  description: 'Compares a build with the last passing (green) build of its branch, or with the build given as `with`: the commits ' +
    'between them, jobs whose state changed, tests newly failing and newly passing, and error lines present now but not then. ' +
    'Answers "which tests fail now that passed before?" and "what broke it?" in one call; buildId may be latest_failed (with `branch`).' +
    budgetNote('list_builds', '30 by default'),
  path: '/projects/:projectId/builds/:buildId/compare',
  bucket: 'list_builds',
  rpm: 'default',
  params: BuildRefParams,
  input: CompareQuery,
  output: CompareResult,
  // not idempotent: a running build changes
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  untrusted: true,
  run: async (ctx, args) => await compareBuilds(ctx.services.db, projectOf(ctx).id, args.buildId, args)
})
