// GET /projects/:projectId/jobs/:jobId/testruns (list_test_runs).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../../plugins/operation-route.js'
import { listTestRunsOp } from '../../../../../../core/operations.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, listTestRunsOp))
}
