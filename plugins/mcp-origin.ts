// Chain step 0 of the MCP endpoint: a browser page's Origin must be allowed (MCP_ALLOWED_ORIGINS), checked before any token work.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { allowedOrigins } from '../config.js'
import { errorBody, GatewayError } from '../lib/errors.js'
import { mcpRouteConfig } from '../core/route-config.js'

/** Origins as browsers send them: scheme://host[:port], lowercase, no trailing slash. */
const normalizeOrigin = (origin: string): string => origin.trim().toLowerCase().replace(/\/+$/, '')

/**
 * Registered in the chain between the audit context and mcp-auth (gateway.ts), so a refused page gets its
 * 403 (and audit row) whether or not it sent a token, and a forged request never reaches the token lookup.
 * Only the MCP endpoint is guarded: requests without Origin (agents, CLIs) pass untouched.
 */
export const mcpOriginGuard = fp(async function mcpOriginGuard (fastify: FastifyInstance) {
  const allowed = new Set([...allowedOrigins(fastify.mcpGateway.config)].map(normalizeOrigin))
  fastify.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.config.mcp?.endpoint !== true) { done(); return }
    request.mcpAudit.via = 'mcp'
    const origin = request.headers.origin
    if (origin === undefined) { done(); return }
    if (allowed.has(normalizeOrigin(origin))) {
      // CORS for an allowed page: it may read the answer and the headers a client acts on (SPEC §13.12)
      reply.header('access-control-allow-origin', origin).header('access-control-expose-headers', EXPOSED).header('vary', 'Origin')
      done()
      return
    }
    done(new GatewayError(403, 'MCP_ORIGIN_FORBIDDEN',
      `requests from origin ${JSON.stringify(origin.slice(0, 200))} may not use the MCP endpoint (allowed origins are set by MCP_ALLOWED_ORIGINS)`))
  })
}, { name: 'mcp-origin-guard', dependencies: ['mcp-audit-step'] })

/** Response headers an allowed browser page may read: the challenge, the budgets, the MCP session and version. */
const EXPOSED = ['www-authenticate', 'retry-after', 'ratelimit', 'ratelimit-policy', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'mcp-session-id', 'mcp-protocol-version', 'x-request-id'].join(', ')
/** Request headers an MCP client in a browser sends. */
const ALLOWED_HEADERS = ['authorization', 'content-type', 'accept', 'mcp-protocol-version', 'mcp-session-id', 'mcp-method', 'mcp-name', 'last-event-id', 'x-request-id'].join(', ')

/**
 * The CORS preflight (OPTIONS) of the MCP endpoint, registered beside the chain at the prefix root: an origin in
 * MCP_ALLOWED_ORIGINS gets 204 with what it may send; any other 403, as its real request would.
 */
export async function mcpCorsPreflight (fastify: FastifyInstance): Promise<void> {
  const allowed = new Set([...allowedOrigins(fastify.mcpGateway.config)].map(normalizeOrigin))
  fastify.options('/', { schema: { hide: true }, config: mcpRouteConfig({ audit: false }) }, async (request, reply) => {
    const origin = request.headers.origin
    if (origin === undefined || !allowed.has(normalizeOrigin(origin))) {
      return await reply.code(403).send(errorBody(403, 'MCP_ORIGIN_FORBIDDEN', 'this origin may not use the MCP endpoint (allowed origins are set by MCP_ALLOWED_ORIGINS)'))
    }
    return await reply.code(204)
      .header('access-control-allow-origin', origin)
      .header('access-control-allow-methods', 'POST, GET, DELETE, OPTIONS')
      .header('access-control-allow-headers', ALLOWED_HEADERS)
      .header('access-control-max-age', '600')
      .header('vary', 'Origin')
      .send()
  })
}
