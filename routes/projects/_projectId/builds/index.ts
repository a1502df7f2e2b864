// GET /projects/:projectId/builds: newest first, with status (list_builds).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../plugins/operation-route.js'
import { listBuildsOp } from '../../../../core/operations.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, listBuildsOp))
}
