// Chain steps 3 and 4 (preHandler): the project in the token's scope and the owner's live rights; then the trigger right.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { authorizeProject, authorizeTrigger, type ProjectGrant } from '../core/access.js'
import { UUID } from '../lib/ids.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** the project the URL names, once the token may reach it */
    mcpProject: ProjectGrant
  }
}

export const projectAccess = fp(async function projectAccess (fastify: FastifyInstance) {
  fastify.decorateRequest('mcpProject', null as unknown as ProjectGrant)
  fastify.addHook('preHandler', async (request) => {
    const projectId = (request.params as { projectId?: string } | undefined)?.projectId
    if (projectId === undefined) return
    // only a canonical UUID reaches the audit's uuid column (the params schema refuses anything else first)
    if (UUID.test(projectId)) request.mcpAudit.projectId = projectId.toLowerCase()
    request.mcpProject = await authorizeProject(fastify.mcpGateway, request.mcpPrincipal, projectId, request.mcpPrefetchedProject)
  })
}, { name: 'mcp-project-access', dependencies: ['mcp-auth'] })

export const triggerAccess = fp(async function triggerAccess (fastify: FastifyInstance) {
  fastify.addHook('preHandler', async (request) => {
    if (request.routeOptions.config.mcp?.trigger !== true) return
    authorizeTrigger(request.mcpPrincipal, request.mcpProject)
  })
}, { name: 'mcp-trigger-access', dependencies: ['mcp-project-access'] })
