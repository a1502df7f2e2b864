// Builds the real service (app.ts) for a test: its own database, its own Redis key prefix, a session key pair.
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { loadConfig, type Config } from '../../config.js'
import app, { serverOptions, type AppOptions } from '../../app.js'
import { createTestDatabase, type TestDatabase } from './db.js'
import { sharedInfraboxKeys, signInfraboxSession } from './infrabox.js'

process.env.FASTIFY_AUTOLOAD_TYPESCRIPT = '1'

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface TestApp {
  app: FastifyInstance
  database: TestDatabase
  config: Config
  keyPrefix: string
  /** a session JWT for the user, signed as InfraBox signs them, by node:crypto (test/helpers/infrabox.ts), not the product */
  session: (userId: string) => Promise<string>
}

export interface BuildOptions {
  env?: Record<string, string>
  /** false: no Redis (in-process limiter); default true */
  redis?: boolean
  database?: TestDatabase
  limits?: AppOptions['limits']
  /** seed hook run on the fresh database before the app starts */
  seed?: (db: TestDatabase) => Promise<void>
  /** receives the app's log lines (pino NDJSON); set env LOG_LEVEL too, the default here is silent */
  logStream?: { write: (line: string) => void }
  /** registers more on the server before it is ready (e.g. a test-only route in a scope of its own) */
  extend?: (fastify: FastifyInstance) => Promise<void>
  /** OAuth server options beyond the environment (AppOptions.oauth) */
  oauth?: AppOptions['oauth']
}

/** The app on a fresh PostgreSQL database (or the one given) and the machine's Redis, closed and removed in teardown. */
export async function buildApp (t: Teardown, opts: BuildOptions = {}): Promise<TestApp> {
  const database = opts.database ?? await createTestDatabase(t)
  if (opts.seed !== undefined) await opts.seed(database)
  const keys = sharedInfraboxKeys() // made by openssl; the service reads the public half from its file, as in production
  const keyPrefix = `test_rl_${process.pid}_${randomBytes(4).toString('hex')}`
  const config = loadConfig({
    DATABASE_URL: database.url,
    INFRABOX_RSA_PUBLIC_KEY_PATH: keys.spkiPath,
    LOG_LEVEL: 'silent',
    AUDIT_FLUSH_MS: '20',
    ...(opts.redis === false ? {} : { REDIS_URL: TEST_REDIS_URL }),
    ...opts.env
  })
  const options = serverOptions(config)
  if (opts.logStream !== undefined) options.logger = { ...(options.logger as object), stream: opts.logStream }
  const fastify = Fastify(options)
  await fastify.register(app, {
    config,
    limiterKeyPrefix: keyPrefix,
    ...(opts.limits !== undefined ? { limits: opts.limits } : {}),
    ...(opts.oauth !== undefined ? { oauth: opts.oauth } : {})
  })
  if (opts.extend !== undefined) await opts.extend(fastify)
  await fastify.ready()
  t.teardown(async () => {
    await fastify.close()
    if (opts.redis !== false) await deleteKeys(keyPrefix)
  })
  return { app: fastify, database, config, keyPrefix, session: async (userId) => signInfraboxSession(keys.privatePath, userId) }
}

/** Removes a test's Redis keys (SCAN by prefix). */
export async function deleteKeys (prefix: string): Promise<void> {
  const { Redis } = await import('ioredis')
  const r = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await r.connect()
    let cursor = '0'
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await r.del(...keys)
    } while (cursor !== '0')
  } finally {
    r.disconnect()
  }
}

/** Waits until the audit writer has written everything recorded so far. */
export async function auditSettled (app: FastifyInstance): Promise<void> {
  await app.mcpGateway.audit.flush()
}
