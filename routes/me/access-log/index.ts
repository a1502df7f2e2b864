// GET /me/access-log: the presented token's own recent calls from mcp_access_log, newest first, paged (get_my_access_log).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../operation-route.js'
import { getMyAccessLogOp } from '../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, getMyAccessLogOp))
}
