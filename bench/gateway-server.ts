// Benchmark variant G: the whole service (app.ts: auth → rate limit → project access → handler → audit) on the bench database and Redis.
// Env: DATABASE_URL, REDIS_URL, SESSION_JWT_PUBLIC_KEY, LOG_LEVEL, BENCH_LIMITER_PREFIX, as the service reads them.
import Fastify from 'fastify'
import app, { serverOptions } from '../app.js'
import { loadConfig } from '../config.js'
import { serve } from './serve.js'
import { RedisSlidingWindow } from '../core/limiter.js'

const config = loadConfig(process.env)
const fastify = Fastify(serverOptions(config))
// Limits high enough never to refuse: the benchmark measures the cost of the checks, not refusals.
const NEVER = 1_000_000_000
await fastify.register(app, {
  config,
  limiterKeyPrefix: process.env.BENCH_LIMITER_PREFIX ?? 'bench_rl',
  limits: { default: NEVER, log: NEVER, artifact: NEVER, trigger: NEVER }
})
await serve(fastify, {
  counters: async () => {
    const services = fastify.mcpGateway as typeof fastify.mcpGateway & { tokenLookups?: { statements: number, lookups: number } }
    return {
      failOpen: (await services.metrics.rateLimitFailOpen.get()).values[0]?.value ?? 0,
      // coalesced auth lookups, when the build has them: lookups / statements = requests per auth query
      ...(services.tokenLookups !== undefined ? { authStatements: services.tokenLookups.statements, authLookups: services.tokenLookups.lookups } : {}),
      // batched limiter hits: limiterHits / limiterCalls = hits per Redis call
      ...(services.limiter instanceof RedisSlidingWindow ? { limiterCalls: services.limiter.calls, limiterHits: services.limiter.hits } : {})
    }
  }
})
