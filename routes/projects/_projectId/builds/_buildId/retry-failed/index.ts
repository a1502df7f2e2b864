// POST /projects/:projectId/builds/:buildId/retry-failed: every failed job of the build restarted with its dependents (retry_failed_jobs).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { retryFailedJobsOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, retryFailedJobsOp))
}
