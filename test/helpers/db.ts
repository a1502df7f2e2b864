// Test databases: one fresh PostgreSQL database per test file on the machine's real server, dropped after.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { sql, type Kysely } from 'kysely'
import { kyselyWithOwnPool } from '../../db/connect.js'
import { applyInfraboxSubset, migrateGateway } from '../../db/migrate.js'
import type { Database } from '../../db/schema.js'

/**
 * The X-Request-Id a test sent, as the audit row keeps it: `details.client_request_id` (the row's `request_id` is the
 * gateway's own id, SPEC §13.12). Select it `.as('request_id')` or filter on it.
 */
export const clientRequestId = sql<string | null>`details->>'client_request_id'`

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export interface TestDatabase {
  name: string
  url: string
  db: Kysely<Database>
  drop: () => Promise<void>
}

interface Teardown { teardown: (fn: () => unknown) => void }

function urlFor (name: string): string {
  const u = new URL(TEST_DATABASE_URL)
  u.pathname = `/${name}`
  return u.toString()
}

async function admin<T> (fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: TEST_DATABASE_URL })
  await c.connect()
  try { return await fn(c) } finally { await c.end() }
}

/**
 * Creates an empty database, then (unless `bare`) the InfraBox subset and the gateway's migrations.
 * Registers its own removal on `t` when given.
 */
export async function createTestDatabase (t?: Teardown, opts: { bare?: boolean, migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `mcp_test_${process.pid}_${randomBytes(4).toString('hex')}`
  await admin(async c => { await c.query(`CREATE DATABASE ${name}`) })
  const url = urlFor(name)
  const db = kyselyWithOwnPool({ connectionString: url, max: 5 })
  if (opts.bare !== true) {
    await applyInfraboxSubset(db)
    if (opts.migrate !== false) await migrateGateway(db)
  }
  let dropped = false
  const drop = async (): Promise<void> => {
    if (dropped) return
    dropped = true
    await db.destroy()
    await admin(async c => {
      // pg-pool's end() resolves before its sockets close; a FORCE drop would kill a closing connection
      // whose 'error' then crashes the test process. Wait (bounded) until the server saw them all go.
      for (let i = 0; i < 100; i++) {
        const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name])
        if (rows[0]?.n === 0) break
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    })
  }
  t?.teardown(drop)
  return { name, url, db, drop }
}

/** Polls `probe` until it returns true or `ms` pass (for work done off the request path, e.g. audit batches). */
export async function eventually (probe: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await probe()) return true
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  return await probe()
}
