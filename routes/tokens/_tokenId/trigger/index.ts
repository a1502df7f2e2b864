// POST/DELETE /tokens/:tokenId/trigger: grant or withdraw the right to trigger builds.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Done, TokenParams } from '../../../../schemas/tokens.js'
import { setTrigger } from '../../../../core/token-admin.js'
import { mcpRouteConfig } from '../../../../core/route-config.js'

const trigger: FastifyPluginAsyncTypebox = async (fastify) => {
  for (const [method, allow, action] of [['POST', true, 'grant_mcp_trigger'], ['DELETE', false, 'revoke_mcp_trigger']] as const) {
    fastify.route({
      method,
      url: '/',
      schema: {
        summary: allow ? 'Allow the token to trigger builds' : 'Withdraw the token\'s right to trigger builds',
        // no body schema: the dashboard sends `{}`, other clients nothing at all; either is fine
        params: TokenParams,
        response: { 200: Done }
      },
      config: mcpRouteConfig({ action }),
      handler: async (request) => {
        const { tokenId } = request.params
        request.mcpAudit.tokenId = tokenId
        await setTrigger(fastify.mcpGateway.db, request.mcpSessionUser.id, tokenId, allow)
        return { message: allow ? 'Trigger allowed' : 'Trigger revoked', status: 200 as const }
      }
    })
  }
}

export default trigger
