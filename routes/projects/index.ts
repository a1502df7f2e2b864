// GET /projects: the projects this token can read (list_projects).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../plugins/operation-route.js'
import { listProjectsOp } from '../../core/operations.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, listProjectsOp))
}
