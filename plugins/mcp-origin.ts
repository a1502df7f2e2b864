// Chain step 0 of the MCP endpoint: a browser page's Origin must be allowed (MCP_ALLOWED_ORIGINS), checked before any token work.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { allowedOrigins } from '../config.js'
import { GatewayError } from '../lib/errors.js'

/** Origins as browsers send them: scheme://host[:port], lowercase, no trailing slash. */
const normalizeOrigin = (origin: string): string => origin.trim().toLowerCase().replace(/\/+$/, '')

/**
 * Registered in the chain between the audit context and mcp-auth (gateway.ts), so a refused page gets its
 * 403 (and audit row) whether or not it sent a token, and a forged request never reaches the token lookup.
 * Only the MCP endpoint is guarded: requests without Origin (agents, CLIs) pass untouched.
 */
export const mcpOriginGuard = fp(async function mcpOriginGuard (fastify: FastifyInstance) {
  const allowed = new Set([...allowedOrigins(fastify.mcpGateway.config)].map(normalizeOrigin))
  fastify.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.mcp?.endpoint !== true) return
    request.mcpAudit.via = 'mcp'
    const origin = request.headers.origin
    if (origin === undefined || allowed.has(normalizeOrigin(origin))) return
    throw new GatewayError(403, 'MCP_ORIGIN_FORBIDDEN',
      `requests from origin ${JSON.stringify(origin.slice(0, 200))} may not use the MCP endpoint (allowed origins are set by MCP_ALLOWED_ORIGINS)`)
  })
}, { name: 'mcp-origin-guard', dependencies: ['mcp-audit-step'] })
