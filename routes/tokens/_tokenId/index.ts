// PATCH/DELETE /tokens/:tokenId: edit or revoke one of the user's tokens.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Done, TokenParams, UpdateTokenBody } from '../../../schemas/tokens.js'
import { revokeToken, updateToken } from '../../../core/token-admin.js'
import { mcpRouteConfig } from '../../../core/route-config.js'

const token: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.patch('/', {
    schema: {
      summary: 'Change name, scope, expiry or trigger right of a token (applies on the next request)',
      params: TokenParams,
      body: UpdateTokenBody,
      response: { 200: Done }
    },
    config: mcpRouteConfig({
      action: 'update_mcp_token',
      refusals: {
        400: 'MCP_BAD_REQUEST: nothing to update, a value out of range (as for creation), or expires_days on an OAuth grant',
        403: 'MCP_PROJECT_FORBIDDEN: a project in enabled_projects is not one you collaborate on'
      }
    })
  }, async (request) => {
    const { tokenId } = request.params
    request.mcpAudit.tokenId = tokenId
    const changed = await updateToken(fastify.mcpGateway.db, fastify.mcpGateway.tokenPolicy, request.mcpSessionUser.id, tokenId, request.body)
    request.mcpAudit.details = { changed }
    return { message: 'Token updated', status: 200 as const }
  })

  fastify.delete('/', {
    schema: {
      summary: 'Revoke a token (the row is kept for the audit trail)',
      params: TokenParams,
      response: { 200: Done }
    },
    config: mcpRouteConfig({ action: 'revoke_mcp_token' })
  }, async (request) => {
    const { tokenId } = request.params
    request.mcpAudit.tokenId = tokenId
    await revokeToken(fastify.mcpGateway.db, request.mcpSessionUser.id, tokenId)
    return { message: 'Token revoked', status: 200 as const }
  })
}

export default token
