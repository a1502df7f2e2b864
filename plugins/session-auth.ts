// Session step of the token administration: the logged-in InfraBox user, or 401.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { GatewayError } from '../lib/errors.js'
import type { SessionUser } from '../core/session.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** the logged-in InfraBox user of a token administration request */
    mcpSessionUser: SessionUser
  }
}

export default fp(async function sessionAuth (fastify: FastifyInstance) {
  fastify.decorateRequest('mcpSessionUser', null as unknown as SessionUser)
  fastify.addHook('onRequest', async (request) => {
    const user = await fastify.mcpGateway.authenticateSession(request)
    if (user === null) {
      request.mcpAudit.skip = true // no user to attribute it to; the token admin audits changes, not anonymous probes
      throw new GatewayError(401, 'MCP_UNAUTHORIZED', 'log in to InfraBox first: a valid session is required')
    }
    request.mcpSessionUser = user
    request.mcpAudit.userId = user.id
  })
}, { name: 'mcp-session-auth', dependencies: ['mcp-audit-step'] })
