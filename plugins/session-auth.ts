// Session step of the token administration: the logged-in InfraBox user, or 401.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { GatewayError } from '../core/errors.js'
import type { SessionUser } from '../core/session.js'

declare module 'fastify' {
  interface FastifyRequest {
    sessionUser: SessionUser
  }
}

export default fp(async function sessionAuth (fastify: FastifyInstance) {
  fastify.decorateRequest('sessionUser', null as unknown as SessionUser)
  fastify.addHook('onRequest', async (request) => {
    const user = await fastify.mcp.authenticateSession(request)
    if (user === null) {
      request.audit.skip = true // no user to attribute it to; the token admin audits changes, not anonymous probes
      throw new GatewayError(401, 'MCP_UNAUTHORIZED', 'log in to InfraBox first: a valid session is required')
    }
    request.sessionUser = user
    request.audit.userId = user.id
  })
}, { name: 'mcp-session-auth' })
