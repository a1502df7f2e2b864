// OPERATIONS, the only list of what an agent can do: the MCP tool list, the REST routes' config and the README tables derive from it.
import type { AnyOperation } from './define.js'
import {
  getArtifactOp, getBuildOp, getJobLogOp, getJobOp, getProjectOp, listArtifactsOp, listBuildsOp, listJobsOp, listProjectsOp,
  listTestRunsOp, triggerBuildOp
} from './data.js'
import { getTokenInfoOp, waitForBuildOp } from './agent.js'

export * from './define.js'
export * from './data.js'
export * from './agent.js'

/** Every operation, in the order tools/list shows them (SPEC §5/§7 order first). */
export const OPERATIONS: readonly AnyOperation[] = [
  listProjectsOp, getProjectOp, listBuildsOp, getBuildOp, listJobsOp, getJobOp, listTestRunsOp, getJobLogOp, listArtifactsOp,
  getArtifactOp, triggerBuildOp, waitForBuildOp, getTokenInfoOp
]

export const OPERATIONS_BY_NAME: ReadonlyMap<string, AnyOperation> = new Map(OPERATIONS.map(op => [op.name, op]))
