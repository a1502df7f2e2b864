// Stopgap for a race in createTestDatabase's drop: pg-pool's end() resolves before its sockets close, so
// DROP DATABASE ... WITH (FORCE) can kill a closing connection whose 'error' then crashes the test process.
import pg from 'pg'
import type { TestDatabase } from './db.js'
import { TEST_DATABASE_URL } from './db.js'

interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * Registers, after createTestDatabase(t) has registered its drop, a teardown that tap runs first
 * (teardowns run last-in, first-out): close the pool and wait until the server has no backend left
 * on the database. Remove once test/helpers/db.ts waits for this itself.
 */
export function settleBeforeDrop (t: Teardown, testDb: TestDatabase): void {
  t.teardown(async () => {
    await testDb.db.destroy()
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL })
    await admin.connect()
    try {
      for (let i = 0; i < 100; i++) {
        const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [testDb.name])
        if (rows[0]?.n === 0) return
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    } finally {
      await admin.end()
    }
  })
}
