// GET /projects/:projectId/jobs/:jobId/artifacts/text?filename=…: a window of a text artifact of any size (REST twin of get_artifact's window arguments).
import type { FastifyInstance } from 'fastify'
import { JobParams, type JobParams as Params } from '../../../../../../../schemas/data.js'
import { ArtifactText, ArtifactTextQuery, type ArtifactTextQuery as Query } from '../../../../../../../schemas/agent.js'
import { readJobArtifactText } from '../../../../../../../core/artifact-text.js'
import { getArtifactOp } from '../../../../../../../core/operations/index.js'
import { mcpRouteConfig, OPENAPI_TAGS } from '../../../../../../../core/route-config.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.get<{ Params: Params, Querystring: Query }>('/', {
    schema: {
      summary: 'Read a window of a text artifact',
      description: 'offset+length bytes (default: the first 64 KiB), tail (the last N lines) or grep (lines matching an RE2 regular expression, ' +
        'with line numbers); read by range from storage, never the whole object for a window. Binary files are refused (422). ' +
        'The MCP tool get_artifact takes the same window arguments.',
      tags: [OPENAPI_TAGS.agent.name],
      operationId: 'get_artifact_text',
      params: JobParams,
      querystring: ArtifactTextQuery,
      response: { 200: ArtifactText }
    },
    // get_artifact's twin: the same audit action and budget
    config: mcpRouteConfig({
      action: getArtifactOp.name,
      bucket: getArtifactOp.bucket,
      rpm: getArtifactOp.rpm,
      refusals: {
        400: 'MCP_BAD_REQUEST: more than one window, ignore_case or max_matches without grep, or a grep pattern the RE2 engine refuses',
        404: 'MCP_NOT_FOUND: the job has no artifact of that name, or storage does not hold it',
        422: 'MCP_UNPROCESSABLE: the artifact is a binary file (by its media type, or a NUL byte or invalid UTF-8 in its first 8 KiB)'
      }
    })
  }, async (request) => {
    const { filename, ...window } = request.query
    return await readJobArtifactText(fastify.mcpGateway, request.mcpProject.id, request.params.jobId, filename, window)
  })
}
