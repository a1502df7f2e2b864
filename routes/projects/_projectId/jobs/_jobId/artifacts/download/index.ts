// GET /projects/:projectId/jobs/:jobId/artifacts/download?filename=…: get_artifact's REST twin, the file's bytes streamed from storage.
import type { FastifyInstance } from 'fastify'
import { ArtifactDownloadQuery, type ArtifactDownloadQuery as Query, type JobParams as Params } from '../../../../../../../schemas/data.js'
import { contentDisposition, openArtifact } from '../../../../../../../core/artifacts.js'
import { getArtifactOp } from '../../../../../../../core/operations/index.js'
import { operationRoute } from '../../../../../../operation-route.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  const route = operationRoute(fastify, getArtifactOp)
  fastify.route<{ Params: Params, Querystring: Query }>({
    ...route,
    schema: {
      ...route.schema,
      summary: 'Download an artifact',
      description: 'The bytes of a file listed in the job\'s artifacts, streamed from storage. The MCP tool get_artifact answers with the text inline or a link here.',
      querystring: ArtifactDownloadQuery,
      // the bytes are streamed as storage holds them: documented in config.mcp.openapi, not serialised
      response: {}
    },
    config: {
      ...route.config,
      mcp: {
        ...route.config?.mcp,
        openapi: {
          responses: {
            200: {
              description: 'The file\'s bytes, with the media type of its name (or storage\'s), application/octet-stream when unknown',
              content: { '*/*': { type: 'string', contentMediaType: 'application/octet-stream' } },
              headers: ['Content-Disposition', 'Content-Length']
            }
          }
        }
      }
    },
    handler: async (request, reply) => {
      const { entry, object } = await openArtifact(fastify.mcpGateway, request.mcpProject.id, request.params.jobId, request.query.filename)
      const size = object.size ?? entry.size
      void reply
        .type(object.contentType ?? 'application/octet-stream')
        .header('content-disposition', contentDisposition(entry.filename))
        .header('x-content-type-options', 'nosniff')
      if (size !== null && size !== undefined) void reply.header('content-length', String(size))
      return await reply.send(object.stream)
    }
  })
}
