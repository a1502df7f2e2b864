// Chain steps 3 and 4 (preHandler): the project in the token's scope and the owner's live rights; then the trigger right.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { authorizePrefetched, authorizeProject, authorizeTrigger, type ProjectGrant } from '../core/access.js'
import { UUID } from '../lib/ids.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** the project the URL names, once the token may reach it */
    mcpProject: ProjectGrant
  }
}

export const projectAccess = fp(async function projectAccess (fastify: FastifyInstance) {
  fastify.decorateRequest('mcpProject', null as unknown as ProjectGrant)
  // A callback hook: the project fetched with the token (the common case) is judged without a promise.
  fastify.addHook('preHandler', (request, _reply, done) => {
    const projectId = (request.params as { projectId?: string } | undefined)?.projectId
    if (projectId === undefined) { done(); return }
    // only a canonical UUID reaches the audit's uuid column (the params schema refuses anything else first)
    if (UUID.test(projectId)) request.mcpAudit.projectId = projectId.toLowerCase()
    const grant = authorizePrefetched(request.mcpPrincipal, projectId, request.mcpPrefetchedProject)
    if (grant !== null) {
      request.mcpProject = grant
      done()
      return
    }
    authorizeProject(fastify.mcpGateway, request.mcpPrincipal, projectId).then(project => {
      request.mcpProject = project
      done()
    }, done)
  })
}, { name: 'mcp-project-access', dependencies: ['mcp-auth'] })

export const triggerAccess = fp(async function triggerAccess (fastify: FastifyInstance) {
  fastify.addHook('preHandler', (request, _reply, done) => {
    if (request.routeOptions.config.mcp?.trigger === true) authorizeTrigger(request.mcpPrincipal, request.mcpProject)
    done()
  })
}, { name: 'mcp-trigger-access', dependencies: ['mcp-project-access'] })
