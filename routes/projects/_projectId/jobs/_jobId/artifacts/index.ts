// GET /projects/:projectId/jobs/:jobId/artifacts: job.archive (list_artifacts).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../../plugins/operation-route.js'
import { listArtifactsOp } from '../../../../../../core/operations.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, listArtifactsOp))
}
