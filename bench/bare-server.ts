// Benchmark baselines: bare Fastify with the service's own server options (logger, request ids, router) and no chain.
//   BENCH_VARIANT=plain       (P) the builds list as one hand-written statement over pg (bench/plain-query.ts)
//   BENCH_VARIANT=query       (a) the builds list: the same listBuilds over a plain pg pool, the same route schemas
//   BENCH_VARIANT=rate-limit  (b) (a) + @fastify/rate-limit with its Redis store (fixed window, high max) on the route
//   BENCH_VARIANT=limiter     (d) (a) + the gateway's exact sliding window (RedisSlidingWindow via spendBudget)
//   BENCH_VARIANT=constant    (c) a constant small JSON body
//   BENCH_VARIANT=constant-rate-limit / constant-limiter  (e) / (f): (c) behind the limiter of (b) / (d), where
//                             the limiter is most of the work, so the two can be told apart at full resolution
// (b) and (d) key the budget on the presented token's id (one key per user, as the gateway's per-user key),
// (d) uses the gateway's ioredis client factory (createRedisClient); (b) a client as @fastify/rate-limit documents it
// (BENCH_RL_CLIENT=gateway: the gateway's).
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis as IORedis, type Redis } from 'ioredis'
import { serverOptions } from '../app.js'
import { loadConfig } from '../config.js'
import pg from 'pg'
import { kyselyWithOwnPool, poolConfig, survivePoolErrors } from '../db/connect.js'
import { plainBuilds } from './plain-query.js'
import { barePoolMax } from './pools.js'
import { listBuilds } from '../db/builds.js'
import { BuildPage, BuildsQuery, ProjectParams } from '../schemas/data.js'
import { createRedisClient, RedisSlidingWindow } from '../core/limiter.js'
import { LimiterHealth, spendBudget, type BudgetDeps } from '../core/budget.js'
import { createMetrics } from '../core/metrics.js'
import { credentialFrom, tokenIdOf } from '../core/token.js'
import { serve } from './serve.js'

const variant = process.env.BENCH_VARIANT ?? 'query'
const config = loadConfig(process.env)
// BENCH_LOGGER=off: no logger at all (the "bare Fastify, logger off" baselines); else the service's own
const fastify = Fastify({ ...serverOptions(config), ...(process.env.BENCH_LOGGER === 'off' ? { logger: false } : {}) })
const NEVER = 1_000_000_000
const ROUTE = '/api/v1/mcp/projects/:projectId/builds'

/** The presented token's id: the per-user budget key of (b) and (d). */
const keyOf = (authorization: string | undefined): string => {
  const credential = credentialFrom(authorization)
  return credential === null ? 'anonymous' : tokenIdOf(credential)
}

const closers: Array<() => Promise<void>> = []
let failOpen = async (): Promise<number> => 0
let limiterCounters = (): Record<string, number> => ({})

function redisClient (): Redis {
  if (config.REDIS_URL === undefined) throw new Error('REDIS_URL is required for this variant')
  const redis = createRedisClient(config.REDIS_URL)
  closers.push(async () => { await redis.quit().catch(() => { redis.disconnect() }) })
  return redis
}

function stockRedisClient (): Redis {
  if (config.REDIS_URL === undefined) throw new Error('REDIS_URL is required for this variant')
  const redis = new IORedis(config.REDIS_URL, { connectTimeout: 500, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  closers.push(async () => { await redis.quit().catch(() => { redis.disconnect() }) })
  return redis
}

async function waitReady (redis: Redis): Promise<void> {
  if (redis.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    redis.once('ready', () => { resolve() })
    setTimeout(() => { reject(new Error('Redis not ready')) }, 5000).unref()
  })
}

/** The builds route exactly as (a) serves it; (b) and (d) add their limiter around it. */
async function buildsRoute (scope: FastifyInstance): Promise<void> {
  if (config.DATABASE_URL === undefined) throw new Error('DATABASE_URL is required for this variant')
  // The same pool settings as the gateway's request pool, and as many connections as the gateway holds in all
  // (request + audit + auth pools, plugins/storage.ts): every variant may use the same number of PostgreSQL backends.
  const db = kyselyWithOwnPool({ connectionString: config.DATABASE_URL, max: barePoolMax(config) })
  // Handlers still waiting for a pool connection when the load generator hangs up outlive fastify.close()
  // (their sockets are gone): let them finish before the pool ends, so shutdown logs no errors.
  let inFlight = 0
  closers.push(async () => {
    // eslint-disable-next-line no-unmodified-loop-condition -- requests in flight change it between the waits
    for (let waited = 0; inFlight > 0 && waited < 5000; waited += 10) await new Promise(resolve => setTimeout(resolve, 10))
    await db.destroy()
  })
  scope.get<{ Params: { projectId: string }, Querystring: BuildsQuery }>(ROUTE, {
    schema: { params: ProjectParams, querystring: BuildsQuery, response: { 200: BuildPage } }
  }, async (request) => {
    const q = request.query
    inFlight++
    try {
      return await listBuilds(db, request.params.projectId.toLowerCase(), { branch: q.branch, status: q.status, limit: q.limit, cursor: q.cursor })
    } finally {
      inFlight--
    }
  })
}

/** The builds list as a hand-written statement sent with pg (bench/plain-query.ts): the floor the gateway is measured against. */
async function plainRoute (scope: FastifyInstance): Promise<void> {
  if (config.DATABASE_URL === undefined) throw new Error('DATABASE_URL is required for this variant')
  const pool = survivePoolErrors(new pg.Pool(poolConfig({ connectionString: config.DATABASE_URL, max: barePoolMax(config) })))
  closers.push(async () => { await pool.end() })
  scope.get<{ Params: { projectId: string }, Querystring: BuildsQuery }>(ROUTE, {
    schema: { params: ProjectParams, querystring: BuildsQuery, response: { 200: BuildPage } }
  }, async (request) => await plainBuilds(pool, request.params.projectId.toLowerCase(), request.query.limit))
}

async function constantRoute (scope: FastifyInstance): Promise<void> {
  scope.get(ROUTE, async () => ({ items: [], next_cursor: null }))
}

const route = variant.startsWith('constant') ? constantRoute : buildsRoute
switch (variant.replace(/^constant-?/, '')) {
  case '':
    await constantRoute(fastify)
    break
  case 'query':
    await buildsRoute(fastify)
    break
  case 'plain':
    await plainRoute(fastify)
    break
  case 'rate-limit': {
    // Its client as @fastify/rate-limit's README configures one; BENCH_RL_CLIENT=gateway gives it the gateway's
    // (createRedisClient: its fail-fast options) to compare the stores alone.
    const redis = process.env.BENCH_RL_CLIENT === 'gateway' ? redisClient() : stockRedisClient()
    await waitReady(redis)
    const { default: rateLimit } = await import('@fastify/rate-limit')
    await fastify.register(async (scope) => {
      await scope.register(rateLimit, {
        global: true,
        max: NEVER,
        timeWindow: 60_000,
        redis,
        nameSpace: `${process.env.BENCH_LIMITER_PREFIX ?? 'bench_frl'}:`,
        keyGenerator: (request) => keyOf(request.headers.authorization)
      })
      await route(scope)
    })
    break
  }
  case 'limiter': {
    const redis = redisClient()
    await waitReady(redis)
    const limiter = new RedisSlidingWindow(redis, { timeoutMs: config.RATE_LIMIT_REDIS_TIMEOUT_MS })
    limiterCounters = () => ({ limiterCalls: limiter.calls, limiterHits: limiter.hits })
    // the parts of the gateway's services that spendBudget reads
    const metrics = createMetrics()
    failOpen = async () => (await metrics.rateLimitFailOpen.get()).values[0]?.value ?? 0
    const services = {
      limiter,
      limits: { default: NEVER, log: NEVER, artifact: NEVER, trigger: NEVER, introspect: NEVER, protocol: NEVER, unauth: NEVER },
      limiterKeyPrefix: process.env.BENCH_LIMITER_PREFIX ?? 'bench_dl',
      limiterHealth: new LimiterHealth(),
      log: fastify.log,
      metrics
    } satisfies BudgetDeps
    const rule = { bucket: 'list_builds', rpm: 'default' as const }
    await fastify.register(async (scope) => {
      scope.addHook('onRequest', async (request, reply) => {
        const { headers } = await spendBudget(services, keyOf(request.headers.authorization), rule)
        void reply.headers(headers)
      })
      await route(scope)
    })
    break
  }
  default:
    throw new Error(`unknown BENCH_VARIANT ${variant}`)
}

await serve(fastify, { onClose: async () => { for (const close of closers) await close() }, counters: async () => ({ failOpen: await failOpen(), ...limiterCounters() }) })
