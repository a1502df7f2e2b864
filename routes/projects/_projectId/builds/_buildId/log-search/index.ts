// GET /projects/:projectId/builds/:buildId/log-search?q=…: every job log of a build searched in one call (search_build_logs).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { searchBuildLogsOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, searchBuildLogsOp))
}
