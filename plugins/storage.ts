// The standalone service's storage: InfraBox's PostgreSQL through @fastify/postgres (plus two small pools of the gateway's own), or embedded PGlite.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import fastifyPostgres from '@fastify/postgres'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Kysely } from 'kysely'
import type { Config } from '../config.js'
import { kyselyOverPool, kyselyWithOwnPool, openEmbedded, poolConfig, survivePoolErrors } from '../db/connect.js'
import type { ScriptRunner } from '../db/migrate.js'
import type { Database } from '../db/schema.js'
import { pgListenConnector, pgliteListenConnector, type ListenConnector } from '../core/notifier.js'

export interface Storage {
  /** the request pool: the handlers' statements */
  db: Kysely<Database>
  /** the audit writer's connections */
  auditDb: Kysely<Database>
  /** the chain's token lookups and last_used_at writes */
  authDb: Kysely<Database>
  /** PGlite under DATA_DIR (no DATABASE_URL) */
  embedded: boolean
  /** multi-statement scripts (PGlite takes one statement per query through Kysely) */
  exec?: ScriptRunner
  /** how wait_for_build listens for InfraBox's job notifications: a dedicated connection, or PGlite's own listen */
  listen: ListenConnector
}

declare module 'fastify' {
  interface FastifyInstance {
    /** the standalone service's databases (a host that embeds the gateway has its own) */
    mcpStorage: Storage
  }
}

/** Connections of the auth lookups: one statement answers every request of a turn of the event loop, so two carry thousands of requests a second. */
export const AUTH_POOL_MAX = 2
/** Connections of the audit writer: one batch a flush interval. */
export const AUDIT_POOL_MAX = 2

/**
 * The PostgreSQL connections the service may hold at most with DATABASE_URL, pool by pool (the bench gives its bare
 * variants the same total). The listening connection for InfraBox's job notifications (opened at start while
 * LOG_DIGEST_WARM_BYTES is not 0, else by the first waiter) is not counted.
 */
export function gatewayConnections (config: Pick<Config, 'DB_POOL_MAX'>): { requests: number, audit: number, auth: number, total: number } {
  const requests = config.DB_POOL_MAX
  return { requests, audit: AUDIT_POOL_MAX, auth: AUTH_POOL_MAX, total: requests + AUDIT_POOL_MAX + AUTH_POOL_MAX }
}

async function storage (fastify: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  if (config.DATABASE_URL !== undefined) {
    const sizes = gatewayConnections(config)
    await fastify.register(fastifyPostgres, poolConfig({ connectionString: config.DATABASE_URL, max: sizes.requests }))
    const lost = (pool: string) => (err: Error) => { fastify.log.warn({ pool, err: err.message }, 'database connection lost') }
    survivePoolErrors(fastify.pg.pool, lost('requests'))
    const ownPool = (role: 'audit' | 'auth', max: number): Kysely<Database> => kyselyWithOwnPool({
      connectionString: config.DATABASE_URL as string,
      max,
      applicationName: `infrabox-mcp-gateway-${role}`,
      onError: lost(role),
      preparedStatements: config.DB_PREPARED_STATEMENTS
    })
    // The audit writer has connections of its own, so a busy or locked request pool never holds it back; so do the
    // chain's token lookups and last_used_at writes, so the request pool runs only the handlers' statements
    // (docs/performance.md: why that matters for PostgreSQL's CPU per request).
    const auditDb = ownPool('audit', sizes.audit)
    const authDb = ownPool('auth', sizes.auth)
    fastify.decorate('mcpStorage', {
      db: kyselyOverPool(fastify.pg.pool, { preparedStatements: config.DB_PREPARED_STATEMENTS }),
      auditDb,
      authDb,
      embedded: false,
      listen: pgListenConnector(config.DATABASE_URL)
    })
    // @fastify/postgres ends the request pool itself; these two are ours.
    fastify.addHook('onClose', async () => { await Promise.all([auditDb.destroy(), authDb.destroy()]) })
    return
  }
  // A fresh clone has no DATA_DIR, and PGlite does not create parent directories.
  const dataDir = join(config.DATA_DIR, 'pglite')
  await mkdir(dataDir, { recursive: true })
  const embedded = await openEmbedded(dataDir)
  fastify.decorate('mcpStorage', { db: embedded.db, auditDb: embedded.db, authDb: embedded.db, embedded: true, exec: embedded.exec, listen: pgliteListenConnector(embedded) })
  fastify.addHook('onClose', async () => { await embedded.close() })
}

export default fp(storage, { name: 'mcp-storage', fastify: '5.x' })
