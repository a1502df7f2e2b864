// GET /projects/:projectId/builds: newest first, with status (list_builds).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../operation-route.js'
import { listBuildsOp } from '../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, listBuildsOp))
}
