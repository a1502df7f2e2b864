// GET /projects/:projectId/builds/:buildId: the build, its commit and jobs (get_build).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../operation-route.js'
import { getBuildOp } from '../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, getBuildOp))
}
