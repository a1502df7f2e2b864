// The gateway's 404: an unknown path inside the MCP namespace is a request of the chain too, so it leaves an audit row.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayServices } from '../core/services.js'
import { credentialFrom, isWellFormedToken, tokenIdOf } from '../core/token.js'
import { newAuditContext, recordAudit } from '../core/audit.js'
import { notFoundHandler } from './errors.js'
import { errorBody, GatewayError } from '../lib/errors.js'
import { inMcpNamespace } from './token-guard.js'

function decodedPath (url: string): string {
  const path = url.split('?')[0] ?? ''
  try { return decodeURIComponent(path) } catch { return path }
}

/**
 * Unmatched routes (a wrong path, a wrong method) under `prefix`: 404 MCP_NOT_FOUND as everywhere, plus an audit
 * row (action `unknown_route`, the presented token id when well-formed) when the path is in the MCP namespace.
 * No token lookup: a 404 needs no database work. The token administration's unknown paths are not audited
 * (it audits changes only, like its reads).
 */
export function gatewayNotFoundHandler (services: GatewayServices, prefix: string) {
  const base = prefix.replace(/\/$/, '')
  return async function gatewayNotFound (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (inMcpNamespace(decodedPath(request.url), base)) {
      // past the per-address budget of refusals: 429 and one aggregated row instead (SPEC §13.4)
      try {
        await services.anonymous.spend(request, 'unknown_route', false)
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err
        void reply.code(err.statusCode).headers(err.headers)
        return await reply.send(errorBody(err.statusCode, err.code, err.message))
      }
      void reply.code(404)
      const credential = credentialFrom(request.headers.authorization)
      const tokenId = credential !== null && isWellFormedToken(credential) ? tokenIdOf(credential) : null
      recordAudit(services, request, reply, 'unknown_route', { ...newAuditContext(), tokenId, error: 'no such route' })
    }
    notFoundHandler(request, reply)
    return await reply
  }
}
