// POST /projects/:projectId/jobs/:jobId/rerun: the job alone cloned, its dependents pointed at the clone (rerun_job).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { rerunJobOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, rerunJobOp))
}
