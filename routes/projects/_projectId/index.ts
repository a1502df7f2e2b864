// GET /projects/:projectId (get_project).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../plugins/operation-route.js'
import { getProjectOp } from '../../../core/operations.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, getProjectOp))
}
