// Chain steps 3 and 4 (preHandler): the project in the token's scope and the owner's live rights; then the trigger right.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { authorizeProject, authorizeTrigger, type ProjectGrant } from '../core/access.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the route starts builds: the token needs allow_trigger */
    trigger?: boolean
  }
  interface FastifyRequest {
    project: ProjectGrant
  }
}

export const projectAccess = fp(async function projectAccess (fastify: FastifyInstance) {
  fastify.decorateRequest('project', null as unknown as ProjectGrant)
  fastify.addHook('preHandler', async (request) => {
    const projectId = (request.params as { projectId?: string } | undefined)?.projectId
    if (projectId === undefined) return
    request.audit.projectId = projectId.toLowerCase()
    request.project = await authorizeProject(fastify.mcp, request.principal, projectId, request.prefetchedProject)
  })
}, { name: 'mcp-project-access', dependencies: ['mcp-auth'] })

export const triggerAccess = fp(async function triggerAccess (fastify: FastifyInstance) {
  fastify.addHook('preHandler', async (request) => {
    if (request.routeOptions.config.trigger !== true) return
    authorizeTrigger(request.principal, request.project)
  })
}, { name: 'mcp-trigger-access', dependencies: ['mcp-project-access'] })
