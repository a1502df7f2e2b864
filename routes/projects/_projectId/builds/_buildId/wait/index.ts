// GET /projects/:projectId/builds/:buildId/wait?timeout=…: answers when the build stops running or the timeout passes (wait_for_build).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { waitForBuildOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, waitForBuildOp))
}
