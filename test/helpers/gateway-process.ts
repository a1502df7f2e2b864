// One gateway process for the replica tests: the real app on the environment's database and Redis, on a free port; prints `listening <port>`.
import Fastify from 'fastify'
import { loadConfig } from '../../config.js'
import app, { serverOptions } from '../../app.js'

process.env.FASTIFY_AUTOLOAD_TYPESCRIPT = '1'

const config = loadConfig(process.env)
const fastify = Fastify(serverOptions(config))
const keyPrefix = process.env.TEST_LIMITER_KEY_PREFIX
await fastify.register(app, { config, ...(keyPrefix !== undefined ? { limiterKeyPrefix: keyPrefix } : {}) })
await fastify.listen({ host: '127.0.0.1', port: 0 })
const address = fastify.server.address()
process.stdout.write(`listening ${typeof address === 'object' && address !== null ? address.port : 0}\n`)

// SIGTERM: finish, flush the audit buffer, close the pools, exit 0 (as server.ts does).
let closing = false
process.on('SIGTERM', () => {
  if (closing) return
  closing = true
  fastify.close().then(() => process.exit(0), () => process.exit(1))
})
