// GET /projects: the projects this token can read (list_projects).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../operation-route.js'
import { listProjectsOp } from '../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, listProjectsOp))
}
