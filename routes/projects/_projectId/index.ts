// GET /projects/:projectId (get_project).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../operation-route.js'
import { getProjectOp } from '../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, getProjectOp))
}
