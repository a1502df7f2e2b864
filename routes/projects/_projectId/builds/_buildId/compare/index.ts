// GET /projects/:projectId/builds/:buildId/compare?with=…: what changed since the last passing build (compare_builds).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { compareBuildsOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, compareBuildsOp))
}
