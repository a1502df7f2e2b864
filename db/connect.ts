// Opens the gateway's Kysely instances: over a pg Pool (PostgreSQL) or over PGlite (the embedded default).
import pg from 'pg'
import { Kysely, PostgresDialect } from 'kysely'
import type { Database } from './schema.js'

const TIMESTAMP_WITHOUT_TZ = 1114

/** `timestamp` columns hold UTC (INFRABOX_SCHEMA.md); pg would read them in the process's local zone. */
function parseUtcTimestamp (value: string): Date {
  return new Date(value.replace(' ', 'T') + 'Z')
}

export interface PoolSettings {
  connectionString: string
  max?: number
  /** ms to wait for a free connection or a TCP connect before failing (never hang a request). */
  connectionTimeoutMillis?: number
  /** server-side limit for one statement, ms */
  statementTimeoutMs?: number
  applicationName?: string
  /** told about connections that died (default: ignored; the query that used one fails on its own) */
  onError?: (err: Error) => void
  /** send the statements marked `prepared` as named prepared statements (DB_PREPARED_STATEMENTS; default true) */
  preparedStatements?: boolean
}

/** pg.Pool options that make every connection work in UTC and fail fast instead of hanging. */
export function poolConfig (s: PoolSettings): pg.PoolConfig {
  return {
    connectionString: s.connectionString,
    max: s.max ?? 10,
    connectionTimeoutMillis: s.connectionTimeoutMillis ?? 3000,
    idleTimeoutMillis: 30_000,
    application_name: s.applicationName ?? 'infrabox-mcp-gateway',
    options: `-c TimeZone=UTC -c statement_timeout=${s.statementTimeoutMs ?? 10_000}`,
    // The server-side timeout cannot fire when the network to it is cut: bound the wait on our side too.
    query_timeout: (s.statementTimeoutMs ?? 10_000) + 2000,
    keepAlive: true,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === TIMESTAMP_WITHOUT_TZ && format !== 'binary'
          ? parseUtcTimestamp
          : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser']
    }
  }
}

/**
 * Keeps a dead connection from killing the process. When a socket dies (PostgreSQL restarted, network cut), pg emits
 * 'error' on its Client; pg-pool listens only while the client is idle in the pool, so a client checked out for a
 * query has no listener and the 'error' becomes an uncaught exception. The query itself is failed with the same
 * error (and answered 503 by the error handler); these listeners only note it.
 */
export function survivePoolErrors (pool: pg.Pool, onError: (err: Error) => void = () => {}): pg.Pool {
  pool.on('error', onError) // idle clients (pg-pool re-emits their errors here)
  pool.on('connect', (client) => { client.on('error', onError) }) // every client, checked out or not
  return pool
}

/**
 * Marks a statement to be sent as a named prepared statement: `${prepared('name')}SELECT …`. PostgreSQL then
 * parses and plans it once per connection instead of on every execution (for the chain's hot statements that
 * is most of their server-side cost: docs/performance.md). Only for statements whose text never changes (values are parameters)
 * and whose result columns are listed (a `*` would break when a column is added). On PGlite it is a comment.
 */
export const prepared = (name: string): string => `/* prepared ${name} */ `
const PREPARED = /^\/\* prepared ([A-Za-z0-9_]{1,60}) \*\/ /
const PREPARING = Symbol('ib-mcp-prepared-statements')

type QueryFn = (config: unknown, values?: unknown, callback?: unknown) => unknown
const SLASH = 47

/**
 * `Date` parameters as UTC ISO strings. pg writes a Date in the process's local zone with its offset, and a
 * `timestamp` column (InfraBox's, all UTC) drops the offset: on a TZ=Asia/Tokyo host a 1-day token was stored 33 h
 * ahead (SPEC §13.6). An ISO string with `Z` is read as the same instant by timestamptz and as UTC wall time by
 * timestamp, whatever the host's zone. (pg's own switch, `defaults.parseInputDatesAsUTC`, is process-wide and
 * would change an embedding host's queries too.)
 */
function utcDates (values: unknown[]): unknown[] {
  for (let i = 0; i < values.length; i++) {
    if (values[i] instanceof Date) return values.map(v => v instanceof Date ? (Number.isNaN(v.getTime()) ? null : v.toISOString()) : v)
  }
  return values
}

/**
 * The gateway's statements on a pooled client: `Date` parameters in UTC (utcDates), and, when `named`, marked
 * statements (see `prepared`) sent by name; everything else passes through untouched.
 */
function preparingClient<T extends pg.PoolClient> (client: T, named = true): T {
  const c = client as T & { [PREPARING]?: true }
  if (c[PREPARING] === true) return client
  const query = client.query.bind(client) as QueryFn
  const wrapped: QueryFn = (config, values, callback) => {
    // (text, values) as Kysely sends them; the first character rules out almost every statement at once
    if (typeof config === 'string' && Array.isArray(values) && callback === undefined) {
      const utc = utcDates(values)
      const name = named && config.charCodeAt(0) === SLASH ? PREPARED.exec(config)?.[1] : undefined
      if (name !== undefined) return query({ name, text: config, values: utc })
      return query(config, utc)
    }
    return query(config, values, callback)
  }
  ;(client as unknown as { query: QueryFn }).query = wrapped
  c[PREPARING] = true
  return client
}

/**
 * The pg clients behind the Kysely instances made here, for the few reads that need pg itself (a COPY streamed row
 * by row: db/log-lines.ts). A Kysely instance not made here (PGlite, a host's own, a transaction) has none, and
 * those reads take their portable path.
 */
const RAW_CLIENTS = new WeakMap<Kysely<Database>, () => Promise<pg.PoolClient>>()

/** A pooled pg client of the same pool as `db` (release it), or undefined when `db` is not over a pg pool made here. */
export function rawClientSource (db: Kysely<Database>): (() => Promise<pg.PoolClient>) | undefined {
  return RAW_CLIENTS.get(db)
}

/**
 * A Kysely instance over a pool someone else owns: its destroy() leaves the pool open. `preparedStatements: false`
 * sends every statement unnamed, as a connection pooler in transaction mode needs (PgBouncer before 1.21).
 */
export function kyselyOverPool (pool: pg.Pool, opts: { preparedStatements?: boolean } = {}): Kysely<Database> {
  const named = opts.preparedStatements ?? true
  const borrowed = {
    connect: async () => preparingClient(await pool.connect(), named),
    end: async () => { /* the pool's owner (e.g. @fastify/postgres) ends it */ }
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: borrowed }) })
  RAW_CLIENTS.set(db, borrowed.connect)
  return db
}

/** A Kysely instance that owns its own pool (CLI, audit writer, tests): destroy() ends it. */
export function kyselyWithOwnPool (s: PoolSettings): Kysely<Database> {
  const pool = survivePoolErrors(new pg.Pool(poolConfig(s)), s.onError)
  const named = s.preparedStatements ?? true
  const owned = {
    connect: async () => preparingClient(await pool.connect(), named),
    end: async () => { await pool.end() }
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: owned }) })
  RAW_CLIENTS.set(db, owned.connect)
  return db
}

export interface EmbeddedDatabase {
  db: Kysely<Database>
  /** multi-statement scripts (PGlite's extended protocol takes one statement per query) */
  exec: (script: string) => Promise<unknown>
  /** PGlite's own LISTEN (in process) */
  listen: (channel: string, callback: (payload: string) => void) => Promise<() => Promise<void>>
  close: () => Promise<void>
}

/** PGlite (PostgreSQL in WASM) under `dataDir`, or in memory for `memory://`. Loaded lazily: production never pays for it. */
export async function openEmbedded (dataDir: string): Promise<EmbeddedDatabase> {
  const [{ PGlite }, { PGliteDialect }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('kysely-pglite-dialect')
  ])
  const { pgcrypto } = await import('@electric-sql/pglite/contrib/pgcrypto')
  const pglite = await PGlite.create({ dataDir, extensions: { pgcrypto } })
  await pglite.exec("SET TimeZone = 'UTC'")
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) })
  return {
    db,
    exec: async (script) => await pglite.exec(script),
    listen: async (channel, callback) => await pglite.listen(channel, callback),
    close: async () => {
      await db.destroy()
      if (!pglite.closed) await pglite.close()
    }
  }
}
