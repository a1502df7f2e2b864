// Chain step 2 (onRequest): one hit of the user's budget for the route's bucket, declared in the route's config.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { spendBudget } from '../core/budget.js'

export default fp(async function rateLimit (fastify: FastifyInstance) {
  fastify.addHook('onRequest', async (request, reply) => {
    const { bucket, rpm, failClosed } = request.routeOptions.config.mcp ?? {}
    if (bucket === undefined || rpm === undefined) return // e.g. the MCP endpoint: each tool call spends its own bucket
    const { headers } = await spendBudget(fastify.mcpGateway, request.mcpPrincipal.userId, { bucket, rpm, failClosed })
    void reply.headers(headers)
  })
}, { name: 'mcp-rate-limit', dependencies: ['mcp-auth'] })
