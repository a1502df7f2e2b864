// The OAuth discovery paths at the server root answer 404: the gateway is no OAuth server, so clients must not start a login flow.
import type { FastifyInstance, FastifyReply } from 'fastify'
import { errorBody } from '../lib/errors.js'

/** RFC 9728 (protected resource) and RFC 8414 (authorization server) documents, bare and path-suffixed. */
const DISCOVERY_DOCUMENTS = ['oauth-protected-resource', 'oauth-authorization-server']

const MESSAGE = 'this gateway is not an OAuth server: send an InfraBox MCP token as "Authorization: Bearer ib_mcp_..." ' +
  '(create one in the InfraBox dashboard or with POST /api/v1/mcp/tokens)'

/**
 * Register at the root of the server (no prefix): discovery paths sit outside the gateway's prefix. The
 * standalone app does (app.ts); a host that embeds the gateway registers it unless it is an OAuth server itself.
 */
export async function mcpWellKnown (fastify: FastifyInstance): Promise<void> {
  const notAnOAuthServer = async (_request: unknown, reply: FastifyReply): Promise<FastifyReply> =>
    await reply.code(404).send(errorBody(404, 'MCP_NOT_FOUND', MESSAGE))
  for (const document of DISCOVERY_DOCUMENTS) {
    for (const url of [`/.well-known/${document}`, `/.well-known/${document}/*`]) {
      fastify.get(url, { schema: { hide: true }, logLevel: 'warn' }, notAnOAuthServer)
    }
  }
}

export default mcpWellKnown
