// Chain step 1 (onRequest): the MCP token, checked offline for shape, then live in one query that also fetches the named project.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { authenticate, invalidToken, type PrefetchedProject, type Principal } from '../core/access.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal
    /** the project named in the URL, fetched with the token (see core/access.ts) */
    prefetchedProject: PrefetchedProject
  }
}

export default fp(async function mcpAuth (fastify: FastifyInstance) {
  fastify.decorateRequest('principal', null as unknown as Principal)
  fastify.decorateRequest('prefetchedProject', undefined)
  fastify.addHook('onRequest', async (request) => {
    const projectId = (request.params as { projectId?: unknown } | undefined)?.projectId
    const auth = await authenticate(fastify.mcp, request.headers.authorization, typeof projectId === 'string' ? projectId : null)
    request.audit.tokenId = auth.presentedTokenId
    if (auth.principal === null || auth.row === null) throw invalidToken(auth.credentialSent)
    request.principal = auth.principal
    request.prefetchedProject = auth.project
    request.audit.userId = auth.principal.userId
    fastify.mcp.usage.touch(auth.row)
  })
}, { name: 'mcp-auth' })
