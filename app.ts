// The standalone service as a plugin: wires storage, migrations, session keys, Redis, health and the guard, then mounts the gateway at /api/v1/mcp.
import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import type { Server } from 'node:http'
import type { FastifyHttpOptions, FastifyInstance } from 'fastify'
import { artifactRoot, parseTrustProxy, type Config } from './config.js'
import { applyInfraboxSubset, migrateGateway } from './db/migrate.js'
import { detectInfraboxSchema } from './db/infrabox-version.js'
import { createRedisClient, createRedisClusterClient, type RedisClient } from './core/limiter.js'
import { createMetrics } from './core/metrics.js'
import { createServices, type BucketLimits, type GatewayServices } from './core/services.js'
import { jwtSessionAuthenticator, loadSessionKeys, signSession, type SessionAuthenticator } from './core/session.js'
import { ConfigError } from './config.js'
import { clientErrorHandler, errorHandler, frameworkErrorHandler, notFoundHandler } from './plugins/errors.js'
import { redactTokens } from './core/token.js'
import { mcpTokenGuard } from './plugins/token-guard.js'
import storageStep from './plugins/storage.js'
import health from './plugins/health.js'
import { OneLineRequestLog } from './lib/request-log.js'
import { mcpGateway } from './gateway.js'
import { mcpWellKnown } from './mcp/well-known.js'
import { listeningBaseUrl, oauthSettings, type OAuthOptions } from './oauth/settings.js'

export const MCP_PREFIX = '/api/v1/mcp'

export interface AppOptions {
  config: Config
  /** Redis key prefix of the limiter (tests isolate themselves with it) */
  limiterKeyPrefix?: string
  limits?: Partial<BucketLimits>
  authenticateSession?: SessionAuthenticator
  /** OAuth server options beyond the configuration (e.g. a CA trusted for client metadata documents) */
  oauth?: OAuthOptions
}

/** What the embedded mode prints at start so a newcomer can try the gateway at once. */
export interface DemoInfo {
  userId: string
  sessionToken: string
  /** the demo story's failing build (db/seed-story.ts), for the printed failure-summary line */
  story: { projectId: string, failingBuildId: string }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** the embedded demo's user and session (null outside the embedded mode) */
    mcpDemo: DemoInfo | null
  }
}

/** Fastify's own options for this service: limits, logging with secrets redacted, request ids, proxies. */
export function serverOptions (config: Config): FastifyHttpOptions<Server> {
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
    logController: new OneLineRequestLog(),
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    bodyLimit: 1024 * 1024,
    // SPEC §13.9: a request must arrive whole within requestTimeout (a body trickled a byte at a time is cut with 408)
    // and a silent socket is closed after connectionTimeout. Node checks requestTimeout every
    // connectionsCheckingInterval (default 30 s): check often enough that the timeout means what it says.
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    connectionTimeout: config.CONNECTION_TIMEOUT_MS,
    // (Node applies requestTimeout only when given to the http server's constructor, hence `http` as well)
    http: {
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(config.REQUEST_TIMEOUT_MS / 10)))
    },
    trustProxy: parseTrustProxy(config.TRUST_PROXY),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    requestIdHeader: false,
    // The gateway's own id, whatever the client sends: it is the audit row's request_id and the response's
    // X-Request-Id (a well-formed client X-Request-Id is kept in the row's details as client_request_id).
    genReqId: () => randomUUID(),
    // During a graceful close a request already on an open connection is served as usual (Fastify adds
    // `Connection: close`, so the client moves on) and audited; new connections are refused by the closed listener.
    // true would answer those with Fastify's own 503, whose body carries no `code` and which leaves no audit row.
    return503OnClosing: false,
    // the embedded first start creates a PGlite cluster (5-11 s here) and seeds it
    pluginTimeout: 120_000,
    forceCloseConnections: 'idle'
  }
}

async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  const { config } = opts
  await fastify.register(storageStep, { config })
  const storage = fastify.mcpStorage

  if (storage.embedded) await applyInfraboxSubset(storage.db, storage.exec)
  if (config.MIGRATE_ON_START) {
    const { applied } = await migrateGateway(storage.db)
    if (applied.length > 0) fastify.log.info({ applied }, 'gateway migrations applied')
  }

  // Which InfraBox this is (SPEC §2): read once; a missing required column stops the start with one line.
  const infrabox = await detectInfraboxSchema(storage.db)
  fastify.log.info({ infraboxSchema: infrabox.version, recorded: infrabox.recorded, columns: infrabox.columns }, 'InfraBox schema found')

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
    const { STORY } = await import('./db/seed-story.js')
    await seedDemo(storage.db, { artifactRoot: artifactRoot(config) })
    const userId = FIXTURE.users.demo
    const story = { projectId: STORY.project, failingBuildId: STORY.failing }
    if (keys?.privateKey != null) demo = { userId, sessionToken: await signSession(keys.privateKey, userId), story }
  }
  fastify.decorate('mcpDemo', demo)

  const onError = (): void => { /* the limiter reports failures when they matter */ }
  const redis: RedisClient | null = config.REDIS_URL === undefined
    ? null
    : config.REDIS_CLUSTER
      ? createRedisClusterClient(config.REDIS_URL, { onError })
      : createRedisClient(config.REDIS_URL, { onError })

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
    listen: storage.listen,
    warmDigests: !storage.embedded,
    infrabox: infrabox.columns,
    ...(opts.limiterKeyPrefix !== undefined ? { limiterKeyPrefix: opts.limiterKeyPrefix } : {})
  })

  // Teardown order matters: flush the audit buffer while the database is still open.
  fastify.addHook('onClose', async () => {
    await services.close()
    if (redis !== null) await redis.quit().catch(() => { redis.disconnect() })
  })

  fastify.decorate('mcpGateway', services)
  fastify.setErrorHandler(errorHandler)
  fastify.setNotFoundHandler(notFoundHandler)
  await fastify.register(mcpTokenGuard, { prefix: MCP_PREFIX })

  await fastify.register(health)
  // OAuth is on with PUBLIC_BASE_URL; the embedded demo turns it on at the address it listens on, with its demo login.
  const oauth: OAuthOptions = {
    ...(storage.embedded && config.PUBLIC_BASE_URL === undefined ? { publicBaseUrl: () => listeningBaseUrl(fastify.server, config.PORT) } : {}),
    ...(demo !== null && config.INFRABOX_LOGIN_URL === undefined ? { demoSessionToken: demo.sessionToken } : {}),
    ...opts.oauth
  }
  await fastify.register(mcpGateway, { prefix: MCP_PREFIX, services, oauth })
  // at the root, where clients look: the OAuth documents while it is on, else 404s
  await fastify.register(mcpWellKnown, { oauth: oauthSettings(config, MCP_PREFIX, oauth) })
}

/** Wrapped so its decorations (mcp, demo) and handlers belong to the server it is registered on. */
export default fp(app, { name: 'infrabox-mcp-gateway-app', fastify: '5.x' })
