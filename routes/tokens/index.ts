// GET/POST /tokens: list and create the logged-in user's MCP tokens.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@fastify/type-provider-typebox'
import { ErrorBody } from '../../schemas/common.js'
import { CreatedToken, CreateTokenBody, ListTokensQuery, TokenView } from '../../schemas/tokens.js'
import { createToken, listTokenViews } from '../../core/token-admin.js'
import { mcpRouteConfig } from '../../core/route-config.js'

const tokens: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    schema: {
      summary: 'List your MCP tokens, newest first',
      tags: ['tokens'],
      querystring: ListTokensQuery,
      response: { 200: Type.Array(TokenView), 401: ErrorBody }
    },
    config: mcpRouteConfig({ action: 'list_mcp_tokens', audit: false })
  }, async (request) => {
    return await listTokenViews(fastify.mcpGateway.db, request.mcpSessionUser.id, request.query.include === 'revoked')
  })

  fastify.post('/', {
    schema: {
      summary: 'Create an MCP token; the secret is in this response only',
      tags: ['tokens'],
      body: CreateTokenBody,
      response: { 201: CreatedToken, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody }
    },
    config: mcpRouteConfig({ action: 'create_mcp_token' })
  }, async (request, reply) => {
    const created = await createToken(fastify.mcpGateway.db, fastify.mcpGateway.tokenPolicy, request.mcpSessionUser.id, request.body)
    request.mcpAudit.tokenId = created.token_id
    request.mcpAudit.details = { name: created.name, enabled_projects: created.enabled_projects, allow_trigger: created.allow_trigger, expires_at: created.expires_at }
    return await reply.code(201).header('cache-control', 'no-store').send(created)
  })
}

export default tokens
