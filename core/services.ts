// Everything one gateway instance holds: config, database, limiter store, audit writer, metrics, session check.
import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import { artifactRoot, type Config } from '../config.js'
import { FsArtifactStore, S3ArtifactStore, type ArtifactStore } from './artifact-store.js'
import type { Database } from '../db/schema.js'
import { SCHEMA_47_COLUMNS, type InfraboxColumns } from '../db/infrabox-version.js'
import { AuditWriter } from './audit-writer.js'
import { MemorySlidingWindow, RedisSlidingWindow, type RateLimitStore, type RedisClient } from './limiter.js'
import { LimiterHealth, type BucketLimits, type BudgetDeps } from './budget.js'
import { createMetrics, type Metrics } from './metrics.js'
import type { SessionAuthenticator } from './session.js'
import type { TokenPolicy } from './token-admin.js'
import { TokenUsage } from './token-usage.js'
import { TokenLookups } from './token-lookup.js'
import { CONSOLE_UPDATE, JOB_UPDATE, Notifier, type ListenConnector } from './notifier.js'
import { BuildWaiters } from './build-waiter.js'
import { DigestWarmer } from './digest-warmer.js'
import { AnonymousRefusals } from './anonymous-refusals.js'

export type { BucketLimits }

export interface GatewayServices extends BudgetDeps {
  config: Config
  db: Kysely<Database>
  /** which InfraBox columns the queries read and write (detected once at start; SPEC §2) */
  infrabox: InfraboxColumns
  redis: RedisClient | null
  limiterKind: 'redis' | 'memory'
  audit: AuditWriter
  /** the per-address budget of refusals before a user is known, and their aggregated audit rows */
  anonymous: AnonymousRefusals
  /** last_used_at writes, coalesced */
  usage: TokenUsage
  /** the auth step's live token (+ project) lookups, coalesced per turn of the event loop */
  tokenLookups: TokenLookups
  artifacts: ArtifactStore
  /** the process's one listening connection (InfraBox's job notifications); null when the host gave no way to LISTEN */
  notifier: Notifier | null
  /** wait_for_build's waiters, woken by the notifier */
  waiters: BuildWaiters
  /** digests large failed logs when InfraBox announces the failure (LOG_DIGEST_WARM_BYTES); null without a notifier or when off */
  warmer: DigestWarmer | null
  authenticateSession: SessionAuthenticator
  tokenPolicy: TokenPolicy
  /** ends what these services own (not the db or redis handed in) */
  close: () => Promise<void>
}

export interface ServiceInputs {
  config: Config
  db: Kysely<Database>
  /** connections for the audit writer; defaults to `db` */
  auditDb?: Kysely<Database>
  /** connections for the chain's token lookups and last_used_at writes; defaults to `db` */
  authDb?: Kysely<Database>
  redis?: RedisClient | null
  authenticateSession: SessionAuthenticator
  limits?: Partial<BucketLimits>
  metrics?: Metrics
  log: FastifyBaseLogger
  /** default: from ARTIFACT_STORAGE and its settings */
  artifactStore?: ArtifactStore
  /** default ib_mcp_rl; tests give each file its own */
  limiterKeyPrefix?: string
  /** how to LISTEN for InfraBox's notifications (a dedicated connection); without it waiters are re-checked once a second by one process-wide timer */
  listen?: ListenConnector
  /** the InfraBox columns found at start (detectInfraboxSchema); default: schema 47's */
  infrabox?: InfraboxColumns
  /**
   * digest large failed logs ahead (LOG_DIGEST_WARM_BYTES); default true. The embedded mode turns it off: PGlite has
   * one connection for everything, and a background read would hold it.
   */
  warmDigests?: boolean
}

export function limitsFrom (config: Config, overrides: Partial<BucketLimits> = {}): BucketLimits {
  return {
    default: overrides.default ?? config.MCP_RATE_LIMIT_DEFAULT_RPM,
    log: overrides.log ?? config.MCP_RATE_LIMIT_LOG_RPM,
    artifact: overrides.artifact ?? config.MCP_RATE_LIMIT_ARTIFACT_RPM,
    trigger: overrides.trigger ?? config.MCP_RATE_LIMIT_TRIGGER_RPM,
    introspect: overrides.introspect ?? config.MCP_RATE_LIMIT_INTROSPECT_RPM,
    protocol: overrides.protocol ?? config.MCP_RATE_LIMIT_PROTOCOL_RPM,
    unauth: overrides.unauth ?? config.MCP_RATE_LIMIT_UNAUTH_RPM
  }
}

export function artifactStoreFrom (config: Config): ArtifactStore {
  if (config.ARTIFACT_STORAGE === 's3') {
    return new S3ArtifactStore({
      endpoint: config.S3_ENDPOINT,
      bucket: config.S3_BUCKET ?? '',
      region: config.S3_REGION,
      accessKeyId: config.S3_ACCESS_KEY_ID,
      secretAccessKey: config.S3_SECRET_ACCESS_KEY,
      forcePathStyle: config.S3_FORCE_PATH_STYLE
    })
  }
  return new FsArtifactStore(artifactRoot(config))
}

export function createServices (inp: ServiceInputs): GatewayServices {
  const metrics = inp.metrics ?? createMetrics()
  const redis = inp.redis ?? null
  const limiter: RateLimitStore = redis !== null
    ? new RedisSlidingWindow(redis, { timeoutMs: inp.config.RATE_LIMIT_REDIS_TIMEOUT_MS })
    : new MemorySlidingWindow()
  const audit = new AuditWriter(inp.auditDb ?? inp.db, {
    flushMs: inp.config.AUDIT_FLUSH_MS,
    bufferMax: inp.config.AUDIT_BUFFER_MAX,
    log: inp.log,
    metrics
  })
  // last_used_at writes go with the lookups: an UPDATE on a request-pool connection makes its later handler queries
  // dearer, as a named statement does (docs/performance.md)
  const usage = new TokenUsage(inp.authDb ?? inp.db, inp.log)
  const artifacts = inp.artifactStore ?? artifactStoreFrom(inp.config)
  const notifier = inp.listen === undefined ? null : new Notifier(inp.listen, [JOB_UPDATE, CONSOLE_UPDATE], { log: inp.log })
  const infrabox = inp.infrabox ?? SCHEMA_47_COLUMNS
  const waiters = new BuildWaiters(inp.db, notifier, { log: inp.log, infrabox })
  const warmer = notifier === null || inp.config.LOG_DIGEST_WARM_BYTES === 0 || inp.warmDigests === false
    ? null
    : new DigestWarmer(inp.db, notifier, { log: inp.log, minBytes: inp.config.LOG_DIGEST_WARM_BYTES, onOutcome: (_job, outcome) => { metrics.digestWarmups.inc({ outcome }) } })
  const limits = limitsFrom(inp.config, inp.limits)
  const limiterKeyPrefix = inp.limiterKeyPrefix ?? 'ib_mcp_rl'
  const limiterHealth = new LimiterHealth()
  const anonymous = new AnonymousRefusals({ limiter, limits, limiterHealth, limiterKeyPrefix, log: inp.log, metrics, audit }, limits.unauth)
  return {
    config: inp.config,
    db: inp.db,
    infrabox,
    redis,
    limiter,
    limiterKind: redis !== null ? 'redis' : 'memory',
    limiterHealth,
    limiterKeyPrefix,
    anonymous,
    log: inp.log,
    audit,
    usage,
    tokenLookups: new TokenLookups(inp.authDb ?? inp.db),
    artifacts,
    notifier,
    waiters,
    warmer,
    metrics,
    authenticateSession: inp.authenticateSession,
    tokenPolicy: { maxExpiryDays: inp.config.MCP_TOKEN_MAX_EXPIRY_DAYS, maxPerUser: inp.config.MCP_TOKEN_MAX_PER_USER },
    limits,
    close: async () => {
      waiters.close()
      await warmer?.close()
      await notifier?.close()
      await usage.close()
      anonymous.close() // its last rows go into the audit buffer before that is flushed
      await audit.close()
      await limiter.close()
      await artifacts.close?.()
    }
  }
}
