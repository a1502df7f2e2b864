// Chain step 1 (onRequest): the MCP token, checked offline for shape, then live in one query that also fetches the named project.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { authenticate, invalidToken, type PrefetchedProject, type Principal } from '../core/access.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** who the MCP token speaks for */
    mcpPrincipal: Principal
    /** the project named in the URL, fetched with the token (see core/access.ts) */
    mcpPrefetchedProject: PrefetchedProject
  }
}

export default fp(async function mcpAuth (fastify: FastifyInstance) {
  fastify.decorateRequest('mcpPrincipal', null as unknown as Principal)
  fastify.decorateRequest('mcpPrefetchedProject', undefined)
  fastify.addHook('onRequest', async (request) => {
    const projectId = (request.params as { projectId?: unknown } | undefined)?.projectId
    const auth = await authenticate(fastify.mcpGateway, request.headers.authorization, typeof projectId === 'string' ? projectId : null)
    request.mcpAudit.tokenId = auth.presentedTokenId
    if (auth.principal === null || auth.row === null) {
      await fastify.mcpGateway.anonymous.spend(request, 'unauthorized') // past the per-address budget: 429, aggregated
      throw invalidToken(auth.credentialSent)
    }
    request.mcpPrincipal = auth.principal
    request.mcpPrefetchedProject = auth.project
    request.mcpAudit.userId = auth.principal.userId
    fastify.mcpGateway.usage.touch(auth.row)
  })
}, { name: 'mcp-auth', dependencies: ['mcp-audit-step'] })
