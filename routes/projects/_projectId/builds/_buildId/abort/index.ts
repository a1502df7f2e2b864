// POST /projects/:projectId/builds/:buildId/abort: InfraBox's scheduler asked to kill every job still queued, scheduled or running (abort_build).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { abortBuildOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, abortBuildOp))
}
