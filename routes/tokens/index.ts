// GET/POST /tokens: list and create the logged-in user's MCP tokens.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@fastify/type-provider-typebox'
import { CreatedToken, CreateTokenBody, ListTokensQuery, TokenView } from '../../schemas/tokens.js'
import { createToken, listTokenViews } from '../../core/token-admin.js'
import { mcpRouteConfig } from '../../core/route-config.js'

const tokens: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    schema: {
      summary: 'List your MCP tokens, newest first',
      querystring: ListTokensQuery,
      response: { 200: Type.Array(TokenView) }
    },
    config: mcpRouteConfig({ action: 'list_mcp_tokens', audit: false })
  }, async (request) => {
    return await listTokenViews(fastify.mcpGateway.db, request.mcpSessionUser.id, request.query.include === 'revoked')
  })

  fastify.post('/', {
    schema: {
      summary: 'Create an MCP token; the secret is in this response only',
      body: CreateTokenBody,
      response: { 201: CreatedToken }
    },
    config: mcpRouteConfig({
      action: 'create_mcp_token',
      refusals: {
        400: 'MCP_BAD_REQUEST: a name outside 1-128 characters after trimming, expires_days out of range, or a project expiry that is not ISO 8601, in the past or later than the token\'s',
        403: 'MCP_PROJECT_FORBIDDEN: a project in enabled_projects is not one you collaborate on',
        409: 'MCP_CONFLICT: you already have MCP_TOKEN_MAX_PER_USER live tokens'
      },
      openapi: { headers: { 201: ['Cache-Control'] } }
    })
  }, async (request, reply) => {
    const created = await createToken(fastify.mcpGateway.db, fastify.mcpGateway.tokenPolicy, request.mcpSessionUser.id, request.body)
    request.mcpAudit.tokenId = created.token_id
    request.mcpAudit.details = { name: created.name, enabled_projects: created.enabled_projects, allow_trigger: created.allow_trigger, expires_at: created.expires_at }
    return await reply.code(201).header('cache-control', 'no-store').send(created)
  })
}

export default tokens
