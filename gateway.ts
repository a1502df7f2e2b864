// The gateway as one Fastify plugin: token administration (session) and the MCP chain, under the prefix it is given.
import { fileURLToPath } from 'node:url'
import autoload from '@fastify/autoload'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { Kysely } from 'kysely'
import type { PostgresDb } from '@fastify/postgres'
import { loadConfig, sessionAllowedOrigins, type Config } from './config.js'
import type { Database } from './db/schema.js'
import { kyselyOverPool } from './db/connect.js'
import { detectInfraboxSchema } from './db/infrabox-version.js'
import type { Metrics } from './core/metrics.js'
import { createServices, type BucketLimits, type GatewayServices } from './core/services.js'
import { pgListenConnector, type ListenConnector } from './core/notifier.js'
import type { RedisClient } from './core/limiter.js'
import { jwtSessionAuthenticator, loadSessionKeys, type SessionAuthenticator, type SessionKeys } from './core/session.js'
import { errorHandler } from './plugins/errors.js'
import { gatewayNotFoundHandler } from './plugins/not-found.js'
import auditStep from './plugins/audit.js'
import sessionAuth from './plugins/session-auth.js'
import sessionCsrf from './plugins/session-csrf.js'
import mcpAuth from './plugins/mcp-auth.js'
import rateLimit from './plugins/rate-limit.js'
import { projectAccess, triggerAccess } from './plugins/project-access.js'
import { announceGateway } from './plugins/token-guard.js'
import { mcpEndpoint } from './mcp/endpoint.js'
import { oauthOffPaths } from './mcp/well-known.js'
import { mcpCorsPreflight, mcpOriginGuard } from './plugins/mcp-origin.js'
import { mcpOAuth } from './oauth/routes.js'
import { resourceMetadataChallenge } from './oauth/discovery.js'
import { oauthSettings, oauthUrls, type OAuthOptions } from './oauth/settings.js'
import { openapiDocument } from './plugins/openapi.js'
import { mcpRouteConfig } from './core/route-config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** the gateway's services: config, databases, limiter, audit writer, metrics */
    mcpGateway: GatewayServices
    /** where the gateway is mounted (e.g. /api/v1/mcp); set inside the gateway's own scope only */
    mcpPrefix: string
  }
}

export interface McpGatewayOptions {
  /** a fully built set of services (the standalone server makes one); otherwise built from the fields below */
  services?: GatewayServices
  /** InfraBox's database; default: a Kysely over the host's `fastify.pg` pool (@fastify/postgres), which stays the host's */
  db?: Kysely<Database>
  /** connections for the audit writer (default: db) */
  auditDb?: Kysely<Database>
  /** connections for the chain's token lookups and last_used_at writes (default: db); a small pool of their own keeps them apart from the handlers' statements */
  authDb?: Kysely<Database>
  /** the limiter's Redis, an ioredis client or Cluster (createRedisClient / createRedisClusterClient); default: the host's `fastify.redis` (@fastify/redis) when registered, else the in-process limiter (also with null) */
  redis?: RedisClient | null
  /** replaces InfraBox's JWT session check on the token routes */
  authenticateSession?: SessionAuthenticator
  /** InfraBox's session key; default: read from INFRABOX_RSA_PUBLIC_KEY_PATH / SESSION_JWT_PUBLIC_KEY */
  sessionKeys?: SessionKeys
  limits?: Partial<BucketLimits>
  /** settings over the environment's (the gateway reads the same variables as the standalone service) */
  config?: Partial<Config>
  metrics?: Metrics
  /** Redis key prefix of the limiter (default ib_mcp_rl) */
  limiterKeyPrefix?: string
  /**
   * How wait_for_build listens for InfraBox's job notifications: e.g. `pgListenConnector(DATABASE_URL)` (one
   * dedicated connection). Without it, waiters are re-checked once a second by one process-wide timer.
   */
  listen?: ListenConnector
  /**
   * The OAuth server (SPEC §12): on when a public base URL is known (this option's or config PUBLIC_BASE_URL);
   * false keeps it off. The host then registers `mcpWellKnown` at its root with `{ oauth: oauthAddress(publicBaseUrl, prefix) }`.
   */
  oauth?: OAuthOptions | false
}

const routesDir = (sub: string): string => fileURLToPath(new URL(`./routes/${sub}`, import.meta.url))

/** The host's `@fastify/postgres` pool (its default one, not a named one), when it registered the plugin. */
function hostPool (fastify: FastifyInstance): PostgresDb['pool'] | undefined {
  return fastify.hasDecorator('pg') ? fastify.pg.pool : undefined
}

const isRedisClient = (value: unknown): value is RedisClient =>
  typeof value === 'object' && value !== null &&
  typeof Reflect.get(value, 'defineCommand') === 'function' && typeof Reflect.get(value, 'evalsha') === 'function'

/** The host's `@fastify/redis` client (its default one), when it registered the plugin. */
function hostRedis (fastify: FastifyInstance): RedisClient | undefined {
  if (!fastify.hasDecorator('redis')) return undefined
  const client: unknown = Reflect.get(fastify, 'redis')
  if (isRedisClient(client)) return client
  // only named (namespaced) clients: which one is the limiter's is the host's choice (the `redis` option)
  fastify.log.warn('mcpGateway: fastify.redis holds no default client (only named ones); the limiter runs in-process unless `redis` is given')
  return undefined
}

async function servicesFrom (fastify: FastifyInstance, opts: McpGatewayOptions): Promise<GatewayServices> {
  // The gateway's settings (budgets, token limits, OAuth addresses…) come from the environment, as in the standalone service.
  const config = { ...loadConfig(process.env), ...opts.config }
  const pool = opts.db === undefined ? hostPool(fastify) : undefined
  const db = opts.db ?? (pool !== undefined ? kyselyOverPool(pool, { preparedStatements: config.DB_PREPARED_STATEMENTS }) : undefined)
  if (db === undefined) throw new Error('mcpGateway needs `db` (a Kysely<Database>), `services`, or @fastify/postgres registered on the host before it')
  const sessionKeys = opts.sessionKeys ?? (opts.authenticateSession === undefined
    ? await loadSessionKeys({ publicKeyPem: config.SESSION_JWT_PUBLIC_KEY, publicKeyPath: config.INFRABOX_RSA_PUBLIC_KEY_PATH }) ?? undefined
    : undefined)
  const authenticateSession = opts.authenticateSession ??
    (sessionKeys !== undefined ? jwtSessionAuthenticator(sessionKeys, db) : undefined)
  if (authenticateSession === undefined) {
    throw new Error('mcpGateway needs `authenticateSession`, `sessionKeys`, or INFRABOX_RSA_PUBLIC_KEY_PATH / SESSION_JWT_PUBLIC_KEY for the token routes')
  }
  const infrabox = await detectInfraboxSchema(db)
  fastify.log.info({ infraboxSchema: infrabox.version, recorded: infrabox.recorded, columns: infrabox.columns }, 'InfraBox schema found')
  // wait_for_build listens on a connection of its own to the host's database when the pool says where that is.
  const connectionString = pool?.options.connectionString
  const listen = opts.listen ?? (typeof connectionString === 'string' ? pgListenConnector(connectionString) : undefined)
  return createServices({
    config,
    db,
    auditDb: opts.auditDb ?? db,
    authDb: opts.authDb ?? db,
    infrabox: infrabox.columns,
    // explicit options win; `redis: null` keeps the in-process limiter even beside a host's client
    redis: opts.redis !== undefined ? opts.redis : hostRedis(fastify) ?? null,
    authenticateSession,
    limits: opts.limits ?? {},
    ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
    ...(opts.limiterKeyPrefix !== undefined ? { limiterKeyPrefix: opts.limiterKeyPrefix } : {}),
    ...(listen !== undefined ? { listen } : {}),
    log: fastify.log
  })
}

export const mcpGateway: FastifyPluginAsync<McpGatewayOptions> = async (fastify, opts) => {
  const services = opts.services ?? await servicesFrom(fastify, opts)
  if (opts.services === undefined) fastify.addHook('onClose', async () => { await services.close() })
  // Before the server waits for its in-flight requests: a waiting wait_for_build answers now (finished: false), and
  // answers sent from now on close their connection (Fastify marks only requests that arrive during the close), so
  // the server is not left waiting for a keep-alive socket of a request that was already in flight.
  let closing = false
  fastify.addHook('preClose', async () => {
    closing = true
    services.waiters.closing()
  })
  // (callback hooks where no work is awaited, here and in the chain's steps: no promise and no extra turn per request)
  fastify.addHook('onSend', (_request, reply, _payload, done) => {
    if (closing) void reply.header('connection', 'close')
    done()
  })
  // The standalone app decorates its root with the same services (for /readyz, /metrics); a host may not have.
  if (!fastify.hasDecorator('mcpGateway')) fastify.decorate('mcpGateway', services)
  fastify.decorate('mcpPrefix', fastify.prefix)
  announceGateway(fastify.server, services)
  const oauth = opts.oauth === false ? null : oauthSettings(services.config, fastify.prefix, opts.oauth)
  fastify.setErrorHandler(errorHandler)
  fastify.setNotFoundHandler(gatewayNotFoundHandler(services, fastify.prefix))

  // The OpenAPI 3.1 document of every route registered below (plugins/openapi.ts derives each route's refusals).
  await fastify.register(openapiDocument, {
    publicBaseUrl: () => oauth !== null ? oauth.baseUrl() : services.config.PUBLIC_BASE_URL ?? null,
    oauth: oauth === null ? null : () => { const urls = oauthUrls(oauth); return { authorizationUrl: urls.authorize, tokenUrl: urls.token } }
  })
  fastify.get('/openapi.json', { schema: { hide: true }, config: mcpRouteConfig({ audit: false }) }, async () => fastify.swagger())

  // Token administration: an InfraBox session, never an MCP token (the guard and the session step refuse those).
  await fastify.register(async function tokenAdministration (admin) {
    admin.addHook('onRoute', (route) => { route.config = { ...route.config, mcp: { ...route.config?.mcp, session: true } } })
    await admin.register(auditStep, { fallbackAction: 'mcp_token_admin' })
    await admin.register(sessionAuth)
    // a cookie session changes tokens only from the gateway's own origin (or SESSION_ALLOWED_ORIGINS), with JSON bodies
    await admin.register(sessionCsrf, { publicBaseUrl: services.config.PUBLIC_BASE_URL, allowedOrigins: sessionAllowedOrigins(services.config) })
    await admin.register(autoload, { dir: routesDir('tokens'), routeParams: true, options: { prefix: '/tokens' } })
  })

  // The OAuth server (SPEC §12): its own scope, its own audit step and per-address budgets; it mints ib_mcp_ tokens.
  if (oauth !== null) await fastify.register(mcpOAuth, { prefix: '/oauth', settings: oauth })
  else await fastify.register(oauthOffPaths) // the same 404 sentence as the discovery paths, token or not (SPEC §7)
  // browsers' CORS preflight of the MCP endpoint, outside the chain (a preflight carries no token)
  await fastify.register(mcpCorsPreflight)

  // The MCP chain, in the order of SPEC §4: audit context, auth, rate limit, project access, trigger access,
  // handler; the audit row is written in onResponse, after everything else.
  await fastify.register(async function mcpChain (chain) {
    chain.addHook('onRoute', (route) => { route.config = { ...route.config, mcp: { ...route.config?.mcp, chain: true } } })
    await chain.register(auditStep, { fallbackAction: 'mcp_request' })
    await chain.register(mcpOriginGuard) // the MCP endpoint's Origin check, before any token work
    if (oauth !== null) await chain.register(resourceMetadataChallenge, { settings: oauth }) // 401s name the metadata
    await chain.register(mcpAuth)
    await chain.register(rateLimit)
    await chain.register(projectAccess)
    await chain.register(triggerAccess)
    await chain.register(autoload, { dir: routesDir('projects'), routeParams: true, options: { prefix: '/projects' } })
    await chain.register(autoload, { dir: routesDir('me'), options: { prefix: '/me' } })
    await chain.register(mcpEndpoint) // native MCP at the prefix root (SPEC §7)
  })
}

export default mcpGateway
