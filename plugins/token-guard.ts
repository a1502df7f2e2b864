// The token guard: an `ib_mcp_` credential is refused (403 MCP_FORBIDDEN_PATH) everywhere but the MCP namespace.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Server } from 'node:http'
import { carriesMcpCredential, credentialsFrom, isWellFormedToken, tokenIdOf } from '../core/token.js'
import type { GatewayServices } from '../core/services.js'
import { cookieValue } from '../core/session.js'
import { errorBody, GatewayError } from '../lib/errors.js'
import { newAuditContext, recordAudit } from '../core/audit.js'

export interface TokenGuardOptions {
  /** where the gateway is mounted; default /api/v1/mcp */
  prefix?: string
}

/**
 * Gateways announce themselves per HTTP server, so the guard (registered at the host's root, possibly
 * before the gateway) can write its audit rows through the gateway's writer whatever the order.
 */
const gateways = new WeakMap<object, GatewayServices>()
export function announceGateway (server: Server | object, services: GatewayServices): void { gateways.set(server, services) }

function decodedPath (url: string): string {
  const path = url.split('?')[0] ?? ''
  try { return decodeURIComponent(path) } catch { return path }
}

/** Is this path the MCP namespace (the endpoint and everything below it, except the token administration)? */
export function inMcpNamespace (path: string, prefix: string): boolean {
  const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
  if (p !== prefix && !p.startsWith(prefix + '/')) return false
  if (p.split('/').includes('..')) return false
  const rest = p.slice(prefix.length)
  return rest !== '/tokens' && !rest.startsWith('/tokens/')
}

const presentedTokenId = (request: FastifyRequest): string | null => {
  const candidates = [...credentialsFrom(request.headers.authorization), cookieValue(request.headers.cookie, 'token')]
  const token = candidates.find(c => c !== null && isWellFormedToken(c))
  return token === undefined || token === null ? null : tokenIdOf(token)
}

export const mcpTokenGuard = fp(async function tokenGuard (fastify: FastifyInstance, opts: TokenGuardOptions) {
  const prefix = (opts.prefix ?? '/api/v1/mcp').replace(/\/$/, '')
  fastify.addHook('onRequest', async (request, reply) => {
    if (!carriesMcpCredential(request.headers.authorization, request.headers.cookie)) return
    // A matched route of the chain is inside by construction, and OAuth endpoints take a client that still carries an
    // old token (it is how that client learns to get a new one); otherwise judge the (decoded) path.
    const config = request.routeOptions.config.mcp
    if (config?.chain === true || config?.oauth !== undefined) return
    if (request.routeOptions.url === undefined && inMcpNamespace(decodedPath(request.url), prefix)) return
    const message = 'MCP tokens are only accepted under ' + prefix + ' (not on the token administration or any other route)'
    const services = gateways.get(fastify.server)
    if (services !== undefined) {
      // past the per-address budget of refusals: 429 and one aggregated row instead of a row each (SPEC §13.4)
      try {
        await services.anonymous.spend(request, 'forbidden_path', false)
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err
        return await reply.code(err.statusCode).headers(err.headers).send(errorBody(err.statusCode, err.code, err.message))
      }
    }
    await reply.code(403).send(errorBody(403, 'MCP_FORBIDDEN_PATH', message))
    if (services === undefined) {
      request.log.warn('MCP token refused outside the namespace; no gateway registered to audit it')
      return reply
    }
    recordAudit(services, request, reply, 'forbidden_path', { ...newAuditContext(), tokenId: presentedTokenId(request), error: message })
    return reply
  })
}, { name: 'mcp-token-guard', fastify: '5.x' })

export default mcpTokenGuard
