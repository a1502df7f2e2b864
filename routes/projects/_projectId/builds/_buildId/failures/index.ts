// GET /projects/:projectId/builds/:buildId/failures: why a build failed, in one bounded answer (get_build_failure_summary).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { getBuildFailureSummaryOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, getBuildFailureSummaryOp))
}
