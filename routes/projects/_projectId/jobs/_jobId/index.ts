// GET /projects/:projectId/jobs/:jobId (get_job).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../operation-route.js'
import { getJobOp } from '../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, getJobOp))
}
