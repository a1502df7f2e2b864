// POST /projects/:projectId/builds/:buildId/restart: a new build of the same commit and number, as InfraBox restarts one (restart_build).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { restartBuildOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, restartBuildOp))
}
