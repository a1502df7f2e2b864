// POST /projects/:projectId/trigger: a build, exactly as InfraBox starts one (trigger_build).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../operation-route.js'
import { triggerBuildOp } from '../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, triggerBuildOp))
}
