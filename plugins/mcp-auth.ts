// Chain step 1 (onRequest): the MCP token, checked offline for shape, then against its (cached) row.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { authenticate, invalidToken, type Principal } from '../core/access.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal
  }
}

export default fp(async function mcpAuth (fastify: FastifyInstance) {
  fastify.decorateRequest('principal', null as unknown as Principal)
  fastify.addHook('onRequest', async (request) => {
    const auth = await authenticate(fastify.mcp, request.headers.authorization)
    request.audit.tokenId = auth.presentedTokenId
    if (auth.principal === null || auth.row === null) throw invalidToken(auth.credentialSent)
    request.principal = auth.principal
    request.audit.userId = auth.principal.userId
    fastify.mcp.tokens.touch(auth.row)
  })
}, { name: 'mcp-auth' })
