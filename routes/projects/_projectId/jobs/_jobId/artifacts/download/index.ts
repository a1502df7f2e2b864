// GET /projects/:projectId/jobs/:jobId/artifacts/download?filename=…: get_artifact's REST twin, the file's bytes streamed from storage.
import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { ArtifactDownloadQuery, type ArtifactDownloadQuery as Query, type JobParams as Params } from '../../../../../../../schemas/data.js'
import { contentDisposition, openArtifact, statArtifact } from '../../../../../../../core/artifacts.js'
import { getArtifactOp } from '../../../../../../../core/operations/index.js'
import { operationRoute } from '../../../../../../operation-route.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  const route = operationRoute(fastify, getArtifactOp, {
    responses: {
      200: {
        description: 'The file\'s bytes, with the media type of its name (or storage\'s), application/octet-stream when unknown',
        content: { '*/*': { type: 'string', contentMediaType: 'application/octet-stream' } },
        headers: ['Content-Disposition', 'Content-Length']
      }
    }
  })
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
    handler: async (request, reply) => {
      if (request.method === 'HEAD') {
        // the headers a GET would send, from the store's metadata: the object is not opened, no byte is read
        const { entry, size, contentType } = await statArtifact(fastify.mcpGateway, request.mcpProject.id, request.params.jobId, request.query.filename)
        return await reply
          .type(contentType ?? 'application/octet-stream')
          .header('content-disposition', contentDisposition(entry.filename))
          .header('x-content-type-options', 'nosniff')
          .header('content-length', String(size))
          // an empty stream, not undefined: Fastify's HEAD handling keeps a stream's content-length, and resets it to 0 otherwise
          .send(Readable.from([]))
      }
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
