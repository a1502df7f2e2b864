// GET /projects/:projectId/jobs/:jobId/log-search?q=…: one job's log searched (REST twin of search_build_logs with jobId).
import type { FastifyInstance } from 'fastify'
import { ErrorBody } from '../../../../../../schemas/common.js'
import { JobParams, type JobParams as Params } from '../../../../../../schemas/data.js'
import { JobLogSearchQuery, LogSearchResult, type JobLogSearchQuery as Query } from '../../../../../../schemas/agent.js'
import { searchJobLog } from '../../../../../../core/log-search.js'
import { searchBuildLogsOp } from '../../../../../../core/operations/index.js'
import { mcpRouteConfig } from '../../../../../../core/route-config.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.get<{ Params: Params, Querystring: Query }>('/', {
    schema: {
      summary: 'Search one job\'s log',
      description: 'search_build_logs within one job: a regular expression (RE2 syntax, linear time; 400 for a pattern the engine refuses), ' +
        'each match with its line number and context lines, a cursor for more. Audited as search_build_logs, in its budget (get_job_log).',
      tags: ['mcp'],
      operationId: 'search_job_log',
      security: [{ mcpToken: [] }],
      params: JobParams,
      querystring: JobLogSearchQuery,
      response: { 200: LogSearchResult, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 410: ErrorBody, 429: ErrorBody, 503: ErrorBody }
    },
    // search_build_logs' twin: the same audit action and budget
    config: mcpRouteConfig({ action: searchBuildLogsOp.name, bucket: searchBuildLogsOp.bucket, rpm: searchBuildLogsOp.rpm })
  }, async (request) => await searchJobLog(fastify.mcpGateway.db, request.mcpProject.id, request.params.jobId, request.query))
}
