// GET /projects/:projectId/jobs/:jobId/artifacts/download?filename=…: the file's bytes, streamed from storage (get_artifact).
import type { FastifyInstance } from 'fastify'
import { ErrorBody } from '../../../../../../../schemas/common.js'
import { ArtifactDownloadQuery, JobParams, type ArtifactDownloadQuery as Query, type JobParams as Params } from '../../../../../../../schemas/data.js'
import { contentDisposition, openArtifact } from '../../../../../../../core/artifacts.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.get<{ Params: Params, Querystring: Query }>('/', {
    schema: {
      summary: 'Download an artifact',
      description: 'The bytes of a file listed in the job\'s artifacts, streamed from storage.',
      tags: ['mcp'],
      operationId: 'get_artifact',
      security: [{ mcpToken: [] }],
      params: JobParams,
      querystring: ArtifactDownloadQuery,
      produces: ['application/octet-stream'],
      response: { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 429: ErrorBody }
    },
    config: { action: 'get_artifact', rateLimit: { bucket: 'list_job_artifacts', rpm: 'artifact' } }
  }, async (request, reply) => {
    const { entry, object } = await openArtifact(fastify.mcp, request.project.id, request.params.jobId, request.query.filename)
    const size = object.size ?? entry.size
    void reply
      .type(object.contentType ?? 'application/octet-stream')
      .header('content-disposition', contentDisposition(entry.filename))
      .header('x-content-type-options', 'nosniff')
    if (size !== null && size !== undefined) void reply.header('content-length', String(size))
    return await reply.send(object.stream)
  })
}
