// The OAuth discovery paths at the server root: the real documents while OAuth is on (SPEC §12), else 404 so clients start no login flow (§7).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errorBody } from '../lib/errors.js'
import { oauthDiscovery } from '../oauth/discovery.js'
import type { OAuthAddress } from '../oauth/settings.js'
import { mcpRouteConfig } from '../core/route-config.js'

/** RFC 9728 (protected resource) and RFC 8414 (authorization server) documents, bare and path-suffixed. */
const DISCOVERY_DOCUMENTS = ['oauth-protected-resource', 'oauth-authorization-server']

const NOT_OAUTH = 'this gateway is not an OAuth server: send an InfraBox MCP token as "Authorization: Bearer ib_mcp_..." ' +
  '(create one in the InfraBox dashboard or with POST /api/v1/mcp/tokens)'
const NO_SUCH_DOCUMENT = 'no such discovery document here: the MCP endpoint\'s protected-resource metadata is at /.well-known/oauth-protected-resource<MCP path>'

export interface WellKnownOptions {
  /** where the OAuth server is while it is on (`oauthAddress(publicBaseUrl, prefix)`); absent or null: off */
  oauth?: OAuthAddress | null
}

/**
 * Register at the root of the server (no prefix): discovery paths sit outside the gateway's prefix. The
 * standalone app does (app.ts); a host that embeds the gateway registers it unless it is an OAuth server itself.
 */
/** While OAuth is off: the OAuth paths under the gateway's prefix (`/oauth/*`, `/register`) answer the same 404 sentence. */
export async function oauthOffPaths (fastify: FastifyInstance): Promise<void> {
  const config = mcpRouteConfig({ oauth: 'json' as const, audit: false })
  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    request.log.info({ path: request.url.split('?')[0] }, 'OAuth endpoint probed while OAuth is off: answered 404')
    return await reply.code(404).send(errorBody(404, 'MCP_NOT_FOUND', NOT_OAUTH))
  }
  for (const url of ['/register', '/oauth', '/oauth/*']) fastify.route({ method: ['GET', 'POST'], url, schema: { hide: true }, config, handler })
}

export async function mcpWellKnown (fastify: FastifyInstance, opts: WellKnownOptions = {}): Promise<void> {
  const settings = opts.oauth ?? null
  const message = settings === null ? NOT_OAUTH : NO_SUCH_DOCUMENT
  const notHere = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    // clients probe these after a 401: visible at info, so an operator sees why a client started (or did not start) a login
    request.log.info({ path: request.url.split('?')[0] }, 'OAuth discovery probe answered 404')
    return await reply.code(404).send(errorBody(404, 'MCP_NOT_FOUND', message))
  }
  // Clients that probe after a 401 carry their (old) token here: they get this answer, not a guard refusal.
  const config = mcpRouteConfig({ oauth: 'json' as const })
  for (const document of DISCOVERY_DOCUMENTS) {
    const urls = settings === null ? [`/.well-known/${document}`, `/.well-known/${document}/*`] : [`/.well-known/${document}/*`]
    for (const url of urls) fastify.get(url, { schema: { hide: true }, config }, notHere)
  }
  if (settings === null) {
    // OpenID discovery and registration at the root, which clients also try: the same sentence, token or not
    for (const url of ['/.well-known/openid-configuration', '/.well-known/openid-configuration/*']) fastify.get(url, { schema: { hide: true }, config }, notHere)
    fastify.route({ method: ['GET', 'POST'], url: '/register', schema: { hide: true }, config, handler: notHere })
  }
  if (settings !== null) await oauthDiscovery(fastify, { settings })
}

export default mcpWellKnown
