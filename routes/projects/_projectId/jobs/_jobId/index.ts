// GET /projects/:projectId/jobs/:jobId (get_job).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../plugins/operation-route.js'
import { getJobOp } from '../../../../../core/operations.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, getJobOp))
}
