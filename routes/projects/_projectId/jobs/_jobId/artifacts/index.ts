// GET /projects/:projectId/jobs/:jobId/artifacts: job.archive (list_artifacts).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../../../../../operation-route.js'
import { listArtifactsOp } from '../../../../../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, listArtifactsOp))
}
