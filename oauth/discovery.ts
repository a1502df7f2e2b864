// Discovery (SPEC §12): RFC 9728 protected-resource metadata, RFC 8414 authorization-server metadata, and the 401 challenge that points at them.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { oauthUrls, SCOPES, type OAuthAddress } from './settings.js'
import { mcpRouteConfig } from '../core/route-config.js'

export function protectedResourceMetadata (s: OAuthAddress) {
  const urls = oauthUrls(s)
  return {
    resource: urls.resource,
    authorization_servers: [urls.issuer],
    scopes_supported: [...SCOPES],
    bearer_methods_supported: ['header'],
    resource_name: 'InfraBox MCP Gateway'
  }
}

export function authorizationServerMetadata (s: OAuthAddress) {
  const urls = oauthUrls(s)
  return {
    issuer: urls.issuer,
    authorization_endpoint: urls.authorize,
    token_endpoint: urls.token,
    registration_endpoint: urls.register,
    revocation_endpoint: urls.revoke,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    scopes_supported: [...SCOPES],
    client_id_metadata_document_supported: true,
    authorization_response_iss_parameter_supported: true
  }
}

/** Browser-based clients (the MCP Inspector) read these documents cross-origin; they are public. */
export function allowAnyOrigin (reply: FastifyReply): FastifyReply {
  return reply.header('access-control-allow-origin', '*')
    .header('access-control-allow-methods', 'GET, POST, OPTIONS')
    .header('access-control-allow-headers', 'authorization, content-type, mcp-protocol-version')
    .header('access-control-max-age', '600')
}

/**
 * The documents at the server root (register without a prefix), where clients look for them: the protected resource
 * with and without the MCP path, the authorization server path-inserted (RFC 8414 §3.1) and bare.
 */
export async function oauthDiscovery (fastify: FastifyInstance, opts: { settings: OAuthAddress }): Promise<void> {
  const { settings } = opts
  const config = mcpRouteConfig({ oauth: 'json' as const, audit: false })
  const serve = (paths: string[], document: () => object, summary: string): void => {
    for (const url of paths) {
      fastify.get(url, { schema: { hide: true, summary }, config }, async (_request, reply) =>
        await allowAnyOrigin(reply).header('cache-control', 'public, max-age=300').send(document()))
      fastify.options(url, { schema: { hide: true }, config }, async (_request, reply) => await allowAnyOrigin(reply).code(204).send())
    }
  }
  serve(['/.well-known/oauth-protected-resource', `/.well-known/oauth-protected-resource${settings.prefix}`],
    () => protectedResourceMetadata(settings), 'OAuth protected resource metadata (RFC 9728)')
  serve(['/.well-known/oauth-authorization-server', `/.well-known/oauth-authorization-server${settings.prefix}/oauth`],
    () => authorizationServerMetadata(settings), 'OAuth authorization server metadata (RFC 8414)')
}

/**
 * Chain step of the MCP namespace while OAuth is on: every 401 names the protected-resource metadata in its
 * challenge (RFC 9728 §5.1), so a client can find the authorization server from the refusal alone.
 */
export const resourceMetadataChallenge = fp(async function resourceMetadataChallenge (fastify: FastifyInstance, opts: { settings: OAuthAddress }) {
  fastify.addHook('onSend', async (_request, reply, payload) => {
    if (reply.statusCode !== 401) return payload
    const challenge = reply.getHeader('www-authenticate')
    if (typeof challenge === 'string' && /^Bearer\b/i.test(challenge) && !challenge.includes('resource_metadata=')) {
      reply.header('www-authenticate', `${challenge}, resource_metadata="${oauthUrls(opts.settings).resourceMetadata}"`)
    }
    return payload
  })
}, { name: 'mcp-oauth-challenge' })
