// POST /projects/:projectId/jobs/:jobId/abort: InfraBox's scheduler asked to kill the job (abort_job).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { abortJobOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, abortJobOp))
}
