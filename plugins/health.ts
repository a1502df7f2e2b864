// Operations routes of the standalone service, outside the namespace: /healthz (alive), /readyz (PostgreSQL reachable, limiter state), /metrics.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'

async function health (fastify: FastifyInstance): Promise<void> {
  const services = fastify.mcpGateway

  fastify.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }))

  fastify.get('/readyz', { logLevel: 'warn' }, async (_request, reply) => {
    const database = await Promise.race([
      sql`select 1`.execute(services.db).then(() => 'ok' as const, () => 'unreachable' as const),
      new Promise<'unreachable'>(resolve => setTimeout(() => resolve('unreachable'), 1000).unref())
    ])
    const redis = services.redis
    const limiter = redis === null
      ? 'in-process'
      : redis.status === 'ready' && !services.limiterHealth.degraded ? 'ok' : 'degraded'
    return await reply.code(database === 'ok' ? 200 : 503).send({
      status: database === 'ok' ? 'ready' : 'unavailable',
      database,
      redis: limiter,
      audit_buffer: services.audit.depth
    })
  })

  fastify.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    return await reply.type(services.metrics.registry.contentType).send(await services.metrics.registry.metrics())
  })
}

export default fp(health, { name: 'mcp-health', fastify: '5.x', decorators: { fastify: ['mcpGateway'] } })
