// GET /tokens/:tokenId/access-log: the token's audit trail (its uses and the changes made to it).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AccessLogPage, AccessLogQuery, TokenParams } from '../../../../schemas/tokens.js'
import { findOwnToken } from '../../../../db/tokens.js'
import { listTokenAccessLog } from '../../../../db/access-log.js'
import { notFound } from '../../../../lib/errors.js'
import { mcpRouteConfig } from '../../../../core/route-config.js'

const accessLog: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    schema: {
      summary: 'A token\'s audit rows, newest first',
      params: TokenParams,
      querystring: AccessLogQuery,
      response: { 200: AccessLogPage }
    },
    config: mcpRouteConfig({ action: 'get_mcp_token_access_log', audit: false })
  }, async (request) => {
    const { tokenId } = request.params
    if (await findOwnToken(fastify.mcpGateway.db, request.mcpSessionUser.id, tokenId) === undefined) throw notFound(`no token ${tokenId}`)
    return await listTokenAccessLog(fastify.mcpGateway.db, tokenId, request.query)
  })
}

export default accessLog
