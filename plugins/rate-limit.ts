// Chain step 2 (onRequest): one hit of the user's budget for the route's bucket, declared in the route's config.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { spendBudget } from '../core/budget.js'

export default fp(async function rateLimit (fastify: FastifyInstance) {
  // a callback hook: one promise per request (the limiter's), not a second one for the hook
  fastify.addHook('onRequest', (request, reply, done) => {
    const { bucket, rpm, failClosed } = request.routeOptions.config.mcp ?? {}
    if (bucket === undefined || rpm === undefined) { done(); return } // e.g. the MCP endpoint: each tool call spends its own bucket
    spendBudget(fastify.mcpGateway, request.mcpPrincipal.userId, { bucket, rpm, failClosed }).then(({ headers }) => {
      void reply.headers(headers)
      done()
    }, done)
  })
}, { name: 'mcp-rate-limit', dependencies: ['mcp-auth'] })
