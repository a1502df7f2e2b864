// POST /projects/:projectId/jobs/:jobId/restart: the job and its dependents cloned as queued jobs, as InfraBox restarts one (restart_job).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { restartJobOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, restartJobOp))
}
