// The audit step: every request in the scope leaves one mcp_access_log row, written off the request path.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { newAuditContext, recordAudit, type AuditContext } from '../core/audit.js'
import { TOKEN_ID_SHAPE } from '../core/token.js'
import '../core/route-config.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** what the chain learned about this request, for its audit row */
    mcpAudit: AuditContext
  }
}

/** Wrapped with fastify-plugin so its hooks belong to the scope that registers it. */
export default fp(async function auditStep (fastify: FastifyInstance, opts: { fallbackAction: string }) {
  fastify.decorateRequest('mcpAudit', null as unknown as AuditContext)
  // Callback hooks: nothing here is awaited (a row is handed to the writer synchronously).
  fastify.addHook('onRequest', (request, reply, done) => {
    request.mcpAudit = newAuditContext()
    // the id the audit row carries, so a caller can name its request to whoever reads the access log
    reply.header('x-request-id', request.id)
    // A change aimed at a token (PATCH/DELETE /tokens/:tokenId...) is in that token's trail even when it is refused
    // before its handler runs (a malformed body, 413, 415).
    const tokenId = (request.params as { tokenId?: unknown } | undefined)?.tokenId
    if (typeof tokenId === 'string' && TOKEN_ID_SHAPE.test(tokenId)) request.mcpAudit.tokenId = tokenId
    done()
  })
  fastify.addHook('onError', (request, _reply, error, done) => {
    request.mcpAudit.error = error.message.slice(0, 1000)
    done()
  })
  fastify.addHook('onResponse', (request, reply, done) => {
    const config = request.routeOptions.config.mcp
    if (!request.mcpAudit.skip && config?.audit !== false) {
      recordAudit(fastify.mcpGateway, request, reply, config?.action ?? opts.fallbackAction, request.mcpAudit)
    }
    done()
  })
}, { name: 'mcp-audit-step', decorators: { fastify: ['mcpGateway'] } })
