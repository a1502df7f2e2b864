// `npm run migrate`: applies the gateway's migrations to DATABASE_URL and exits (never touches InfraBox's tables).
import { ConfigError, loadConfig } from '../config.js'
import { kyselyWithOwnPool } from './connect.js'
import { migrateGateway } from './migrate.js'

try { process.loadEnvFile() } catch { /* no .env */ }

try {
  const config = loadConfig(process.env)
  if (config.DATABASE_URL === undefined) throw new ConfigError('invalid configuration: DATABASE_URL is required for npm run migrate (the embedded mode migrates at start)')
  const db = kyselyWithOwnPool({ connectionString: config.DATABASE_URL, max: 1, applicationName: 'infrabox-mcp-gateway-migrate' })
  try {
    const { applied } = await migrateGateway(db)
    console.log(applied.length === 0 ? 'gateway migrations: up to date' : `gateway migrations applied: ${applied.join(', ')}`)
  } finally {
    await db.destroy()
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err))
  process.exit(1)
}
