// The process: reads the configuration, builds the app, listens, and shuts down gracefully on SIGTERM/SIGINT.
import Fastify from 'fastify'
import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, type Config } from './config.js'
import app, { MCP_PREFIX, serverOptions, type DemoInfo } from './app.js'

function readConfig (): Config {
  try {
    process.loadEnvFile()
  } catch { /* no .env: the environment alone */ }
  try {
    return loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message)
      process.exit(1)
    }
    throw err
  }
}

const config = readConfig()
const fastify = Fastify(serverOptions(config))

let closing = false
closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  closing = true
  if (err !== undefined) fastify.log.error({ err }, 'shutting down after an error')
  else fastify.log.info({ signal }, 'shutting down: finishing requests, flushing the audit log')
  await fastify.close()
})

try {
  await fastify.register(app, { config })
  await fastify.ready()
  // A signal during start-up (migrations, seeding) closes the app: do not listen afterwards.
  if (closing) process.exit(0)
  const address = await fastify.listen({ host: config.HOST, port: config.PORT })
  if (fastify.mcpDemo !== null) printDemo(address, fastify.mcpDemo)
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(1)
  }
  fastify.log.fatal({ err }, 'could not start')
  process.exit(1)
}

function printDemo (address: string, demo: DemoInfo): void {
  const session = demo.sessionToken
  const base = address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1')
  const lines = [
    '',
    'InfraBox MCP Gateway is running in embedded demo mode (PGlite under DATA_DIR, in-process limiter).',
    '',
    `  export SESSION='${session}'`,
    '',
    '  # create an MCP token (shown once) as the demo user; each run of this export line mints a new token:',
    `  export MCP_TOKEN=$(curl -s -X POST ${base}${MCP_PREFIX}/tokens/ -H "Authorization: Bearer $SESSION" -H 'content-type: application/json' -d '{"name":"demo agent","allow_trigger":true}' | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).token')`,
    '',
    '  # use it:',
    `  curl -s ${base}${MCP_PREFIX}/projects -H "Authorization: Bearer $MCP_TOKEN"`,
    `  curl -s ${base}${MCP_PREFIX}/tokens/ -H "Authorization: Bearer $SESSION"`,
    '',
    '  # why did build #6 of demo-shop fail? one call: the compile error, and which failing tests are new, known or flaky',
    `  curl -s ${base}${MCP_PREFIX}/projects/${demo.story.projectId}/builds/${demo.story.failingBuildId}/failures -H "Authorization: Bearer $MCP_TOKEN"`,
    '  # or connect an MCP client that speaks OAuth (IDE, agent host, npx @modelcontextprotocol/inspector) to the URL alone;',
    '  # it registers itself, opens the consent page (demo login first) and receives an ib_mcp_ token:',
    `  ${base}${MCP_PREFIX}`,
    ''
  ]
  process.stdout.write(lines.join('\n') + '\n')
}
