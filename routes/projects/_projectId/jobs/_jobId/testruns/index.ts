// GET /projects/:projectId/jobs/:jobId/testruns (list_test_runs).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { listTestRunsOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, listTestRunsOp))
}
