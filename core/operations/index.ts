// OPERATIONS, the only list of what an agent can do: the MCP tool list, the REST routes' config and the README tables derive from it.
import { Type } from '@fastify/type-provider-typebox'
import { TokenInfo } from '../../schemas/agent.js'
import { tokenInfo } from '../token-info.js'
import { budgetNote, defineOperation, type AnyOperation } from './define.js'
import {
  getArtifactOp, getBuildOp, getJobLogOp, getJobOp, getProjectOp, listArtifactsOp, listBuildsOp, listJobsOp, listProjectsOp,
  listTestRunsOp, triggerBuildOp
} from './data.js'
import { compareBuildsOp, getBuildFailureSummaryOp, searchBuildLogsOp, waitForBuildOp } from './agent.js'
import { CONTROL_OPERATIONS, getMyAccessLogOp } from './control.js'

export * from './define.js'
export * from './data.js'
export * from './agent.js'
export * from './control.js'

/**
 * SPEC §11's token info. It sits with the list because its answer is every budget of the list, read with the
 * limiter's peek (core/token-info.ts) without spending any.
 */
export const getTokenInfoOp = defineOperation({
  name: 'get_token_info',
  title: 'Who am I, and what is left of my budgets',
  description: 'Who this token speaks for (token_id, owner), the projects it reaches with their expiry and your live role, ' +
    'allow_trigger, the token\'s expiry, and for every budget {limit, remaining, reset_seconds}, read without spending any of ' +
    'them. Call it when a call was refused, or before a burst of calls.' + budgetNote('introspect', '60 by default'),
  path: '/me',
  bucket: 'introspect',
  rpm: 'introspect',
  params: Type.Object({}),
  input: Type.Object({}, { additionalProperties: false }),
  output: TokenInfo,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  run: async (ctx) => await tokenInfo(ctx.services, ctx.principal, OPERATIONS.map(op => ({ bucket: op.bucket, rpm: op.rpm })))
})

/** Every operation, in the order tools/list shows them (SPEC §5/§7 order first). */
export const OPERATIONS: readonly AnyOperation[] = [
  listProjectsOp, getProjectOp, listBuildsOp, getBuildOp, listJobsOp, getJobOp, listTestRunsOp, getJobLogOp, listArtifactsOp,
  getArtifactOp, triggerBuildOp, waitForBuildOp, getBuildFailureSummaryOp, searchBuildLogsOp, compareBuildsOp, getTokenInfoOp, ...CONTROL_OPERATIONS, getMyAccessLogOp
]

export const OPERATIONS_BY_NAME: ReadonlyMap<string, AnyOperation> = new Map(OPERATIONS.map(op => [op.name, op]))
