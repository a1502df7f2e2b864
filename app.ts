// The standalone service as a plugin: owns the database, Redis and session keys, then mounts the gateway at /api/v1/mcp.
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import fastifyPostgres from '@fastify/postgres'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { sql, type Kysely } from 'kysely'
import type { Redis } from 'ioredis'
import { artifactRoot, parseTrustProxy, type Config } from './config.js'
import { kyselyOverPool, kyselyWithOwnPool, openEmbedded, poolConfig, survivePoolErrors } from './db/connect.js'
import { applyInfraboxSubset, migrateGateway, type ScriptRunner } from './db/migrate.js'
import type { Database } from './db/schema.js'
import { createRedisClient } from './core/limiter.js'
import { createMetrics } from './core/metrics.js'
import { createServices, type BucketLimits, type GatewayServices } from './core/services.js'
import { jwtSessionAuthenticator, loadSessionKeys, signSession, type SessionAuthenticator } from './core/session.js'
import { ConfigError } from './config.js'
import { clientErrorHandler, errorHandler, frameworkErrorHandler, notFoundHandler } from './plugins/errors.js'
import { redactTokens } from './core/token.js'
import { mcpTokenGuard } from './plugins/token-guard.js'
import { mcpGateway } from './gateway.js'
import { mcpWellKnown } from './mcp/well-known.js'

export const MCP_PREFIX = '/api/v1/mcp'

export interface AppOptions {
  config: Config
  /** Redis key prefix of the limiter (tests isolate themselves with it) */
  limiterKeyPrefix?: string
  limits?: Partial<BucketLimits>
  authenticateSession?: SessionAuthenticator
}

/** What the embedded mode prints at start so a newcomer can try the gateway at once. */
export interface DemoInfo { userId: string, sessionToken: string }

declare module 'fastify' {
  interface FastifyInstance {
    /** the embedded demo's user and session (null outside the embedded mode) */
    mcpDemo: DemoInfo | null
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/

/** Fastify's own options for this service: limits, logging with secrets redacted, request ids, proxies. */
export function serverOptions (config: Config): FastifyServerOptions {
  return {
    logger: {
      level: config.LOG_LEVEL,
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', 'headers.authorization', 'headers.cookie'], censor: '[redacted]' },
      // Fastify's request serializer, with any token a client put in the URL (query or path) masked.
      serializers: {
        req: (req: { method?: string, url?: string, host?: string, ip?: string, socket?: { remotePort?: number } }) => ({
          method: req.method,
          url: redactTokens(req.url ?? ''),
          host: req.host,
          remoteAddress: req.ip,
          remotePort: req.socket?.remotePort
        })
      }
    },
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    bodyLimit: 1024 * 1024,
    trustProxy: parseTrustProxy(config.TRUST_PROXY),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    // During a graceful close a request already on an open connection is served as usual (Fastify adds
    // `Connection: close`, so the client moves on) and audited; new connections are refused by the closed listener.
    // true would answer those with Fastify's own 503, whose body carries no `code` and which leaves no audit row.
    return503OnClosing: false,
    // the embedded first start creates a PGlite cluster (5-11 s here) and seeds it
    pluginTimeout: 120_000,
    forceCloseConnections: 'idle'
  }
}

/** Connections of the auth lookups: one statement answers every request of a turn of the event loop, so two carry thousands of requests a second. */
const AUTH_POOL_MAX = 2

interface Storage { db: Kysely<Database>, auditDb: Kysely<Database>, authDb: Kysely<Database>, embedded: boolean, exec?: ScriptRunner, close: () => Promise<void> }

async function openStorage (fastify: FastifyInstance, config: Config): Promise<Storage> {
  if (config.DATABASE_URL !== undefined) {
    await fastify.register(fastifyPostgres, poolConfig({ connectionString: config.DATABASE_URL, max: config.DB_POOL_MAX }))
    const lost = (pool: string) => (err: Error) => { fastify.log.warn({ pool, err: err.message }, 'database connection lost') }
    survivePoolErrors(fastify.pg.pool, lost('requests'))
    const preparedStatements = config.DB_PREPARED_STATEMENTS
    const url = config.DATABASE_URL
    const ownPool = (role: 'audit' | 'auth', max: number): Kysely<Database> => kyselyWithOwnPool({
      connectionString: url, max, applicationName: `infrabox-mcp-gateway-${role}`, onError: lost(role), preparedStatements
    })
    // The audit writer has connections of its own: a busy or locked request pool never holds it back.
    const auditDb = ownPool('audit', 2)
    // So do the chain's token lookups and last_used_at writes: the request pool then runs only the handlers'
    // statements. A backend that has run a named prepared statement or an UPDATE spends about a third more CPU on
    // every later builds list (measured: docs/performance.md), and a burst of handler queries never delays an
    // auth check.
    const authDb = ownPool('auth', AUTH_POOL_MAX)
    return {
      db: kyselyOverPool(fastify.pg.pool, { preparedStatements }),
      auditDb,
      authDb,
      embedded: false,
      close: async () => { await Promise.all([auditDb.destroy(), authDb.destroy()]) }
    }
  }
  const embedded = await openEmbedded(join(config.DATA_DIR, 'pglite'))
  return { db: embedded.db, auditDb: embedded.db, authDb: embedded.db, embedded: true, exec: embedded.exec, close: embedded.close }
}

async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  const { config } = opts
  const storage = await openStorage(fastify, config)

  if (storage.embedded) await applyInfraboxSubset(storage.db, storage.exec)
  if (config.MIGRATE_ON_START) {
    const { applied } = await migrateGateway(storage.db)
    if (applied.length > 0) fastify.log.info({ applied }, 'gateway migrations applied')
  }

  const keys = await loadSessionKeys({
    publicKeyPem: config.SESSION_JWT_PUBLIC_KEY,
    publicKeyPath: config.INFRABOX_RSA_PUBLIC_KEY_PATH,
    privateKeyPath: config.INFRABOX_RSA_PRIVATE_KEY_PATH,
    generateUnder: storage.embedded ? config.DATA_DIR : undefined
  })
  if (keys === null && opts.authenticateSession === undefined) {
    throw new ConfigError('invalid configuration: INFRABOX_RSA_PUBLIC_KEY_PATH or SESSION_JWT_PUBLIC_KEY is required with DATABASE_URL')
  }

  let demo: DemoInfo | null = null
  if (storage.embedded && config.SEED_DEMO) {
    const { seedDemo, FIXTURE } = await import('./db/seed.js')
    await seedDemo(storage.db, { artifactRoot: artifactRoot(config) })
    const userId = FIXTURE.users.demo
    if (keys?.privateKey != null) demo = { userId, sessionToken: await signSession(keys.privateKey, userId) }
  }
  fastify.decorate('mcpDemo', demo)

  const redis: Redis | null = config.REDIS_URL === undefined
    ? null
    : createRedisClient(config.REDIS_URL, { onError: () => { /* the limiter reports failures when they matter */ } })

  const authenticateSession = opts.authenticateSession ?? jwtSessionAuthenticator(keys as NonNullable<typeof keys>, storage.db)
  const services: GatewayServices = createServices({
    config,
    db: storage.db,
    auditDb: storage.auditDb,
    authDb: storage.authDb,
    redis,
    authenticateSession,
    limits: opts.limits ?? {},
    metrics: createMetrics({ defaultMetrics: true }),
    log: fastify.log,
    ...(opts.limiterKeyPrefix !== undefined ? { limiterKeyPrefix: opts.limiterKeyPrefix } : {})
  })

  // Teardown order matters: flush the audit buffer while the database is still open.
  fastify.addHook('onClose', async () => {
    await services.close()
    if (redis !== null) await redis.quit().catch(() => { redis.disconnect() })
    await storage.close()
  })

  fastify.decorate('mcpGateway', services)
  fastify.setErrorHandler(errorHandler)
  fastify.setNotFoundHandler(notFoundHandler)
  await fastify.register(mcpTokenGuard, { prefix: MCP_PREFIX })

  fastify.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }))

  fastify.get('/readyz', { logLevel: 'warn' }, async (_request, reply) => {
    const database = await Promise.race([
      sql`select 1`.execute(storage.db).then(() => 'ok' as const, () => 'unreachable' as const),
      new Promise<'unreachable'>(resolve => setTimeout(() => resolve('unreachable'), 1000).unref())
    ])
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

  await fastify.register(mcpGateway, { prefix: MCP_PREFIX, services })
  await fastify.register(mcpWellKnown) // 404 on the OAuth discovery paths, at the root where clients look
}

/** Wrapped so its decorations (mcp, demo) and handlers belong to the server it is registered on. */
export default fp(app, { name: 'infrabox-mcp-gateway-app', fastify: '5.x' })
