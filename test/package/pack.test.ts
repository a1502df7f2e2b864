// SPEC §8, the installable package: `npm pack` (prepare builds), the tarball's file list, and a host project that
// installs the tarball beside fastify and the host plugins, type-checks strictly (declaration files included, so the
// gateway's type augmentations meet @fastify/rate-limit's and @fastify/cookie's) and runs, calling gateway routes.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { exportSPKI, generateKeyPair } from 'jose'
import { createTestDatabase } from '../helpers/db.js'
import { withoutCoverage } from '../helpers/coverage.js'
import { seedFixture, FIXTURE } from '../../db/seed.js'
import { signSession } from '../../core/session.js'

const run = promisify(execFile)
const root = new URL('../..', import.meta.url).pathname
const work = await mkdtemp(join(tmpdir(), 'mcp-pack-'))
t.teardown(async () => { await rm(work, { recursive: true, force: true }) })
t.setTimeout(15 * 60_000) // the build, an install and a strict type-check on a loaded 2-core machine

/** npm without the variables of an enclosing `npm test` (its lifecycle settings would leak into these runs). */
function npmEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const k of Object.keys(env)) if (k.startsWith('npm_') || k === 'NODE_OPTIONS') delete env[k]
  return withoutCoverage(env) // the packed copy is not measured (mcr.config.js)
}

/** The version this checkout has installed, so the host installs from the npm cache what the gateway was tested with. */
async function installed (name: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
  return `${name}@${manifest.version}`
}

interface Packed { filename: string, files: Array<{ path: string }> }
let tarball = ''

t.test('npm pack: dist (ESM .js and .d.ts), README, LICENSE; nothing from test/, bench/ or scripts/', async t => {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, env: npmEnv(), maxBuffer: 64 * 1024 * 1024, timeout: 10 * 60_000 })
  // prepare's build output comes first; the JSON report is the last thing printed
  const packed = (JSON.parse(stdout.slice(stdout.lastIndexOf('\n[') + 1)) as Packed[])[0]
  if (packed === undefined) throw new Error(`no pack report:\n${stdout}`)
  tarball = join(work, packed.filename)
  const files = packed.files.map(f => f.path).sort()
  t.comment(`${files.length} files`)
  for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/gateway.js', 'dist/gateway.d.ts', 'dist/server.js', 'dist/db/infrabox-schema/infrabox.sql']) {
    t.ok(files.includes(f), `holds ${f}`)
  }
  t.same(files.filter(f => /^(test|bench|scripts|src)\/|^dist\/(test|bench|scripts)\/|\.map$|\.ts$(?<!\.d\.ts)|tsbuildinfo/.test(f)), [], 'no tests, benchmarks, scripts, sources or maps')
  t.same(files.filter(f => !/^dist\/|^(LICENSE|README\.md|package\.json)$/.test(f)), [], 'nothing beside dist/, LICENSE, README.md and package.json')
  for (const f of files.filter(f => f.startsWith('dist/') && f.endsWith('.js'))) {
    if (!files.includes(f.replace(/\.js$/, '.d.ts'))) t.fail(`${f} has no declaration file`)
  }
  const license = await readFile(join(root, 'LICENSE'), 'utf8')
  t.match(license, /Apache License\s+Version 2\.0, January 2004/)
  t.match(license, /END OF TERMS AND CONDITIONS/, 'the full text')
})

t.test('a strict TypeScript host installs the tarball, type-checks beside @fastify/rate-limit and runs', async t => {
  const host = join(work, 'host')
  await mkdir(host)
  await writeFile(join(host, 'package.json'), JSON.stringify({ name: 'gateway-host', private: true, type: 'module' }, null, 2))
  const deps = await Promise.all(['fastify', '@fastify/postgres', '@fastify/rate-limit', '@fastify/cookie', 'typescript', '@types/node'].map(installed))
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, ...deps], { cwd: host, env: npmEnv(), timeout: 10 * 60_000, maxBuffer: 16 * 1024 * 1024 })

  await writeFile(join(host, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      skipLibCheck: false, // the declaration files are checked too: that is where augmentations would clash
      types: ['node'],
      outDir: 'out'
    },
    files: ['host.ts', 'shims.d.ts']
  }, null, 2))
  // ioredis's own declarations import `redis-errors`, which ships no types: a host checking libraries declares it
  await writeFile(join(host, 'shims.d.ts'), "declare module 'redis-errors'\n")
  await writeFile(join(host, 'host.ts'), `// A host gateway: its plugins and routes, then the InfraBox MCP gateway from the package.
import Fastify, { type FastifyContextConfig, type FastifyRequest } from 'fastify'
import fastifyPostgres from '@fastify/postgres'
import fastifyRateLimit from '@fastify/rate-limit'
import fastifyCookie from '@fastify/cookie'
import { mcpGateway, mcpTokenGuard, isWellFormedToken, type McpGatewayOptions } from 'infrabox-mcp-gateway'

const app = Fastify({ logger: false })
await app.register(fastifyPostgres, { connectionString: process.env.HOST_DATABASE_URL ?? '' })
await app.register(fastifyRateLimit, { global: true, max: 2, timeWindow: '1 minute' })
await app.register(fastifyCookie)
app.get('/hello', { config: { rateLimit: { max: 1, timeWindow: '1 minute' } } }, async (request) => ({ hello: request.cookies.name ?? 'world' }))
await app.register(mcpTokenGuard)
const options: McpGatewayOptions = { limits: { default: 30 } }
await app.register(mcpGateway, { prefix: '/api/v1/mcp', ...options })
await app.ready()

// the gateway's declarations merge with the host plugins': route config beside rateLimit, request decorations
const routeConfig: FastifyContextConfig = { rateLimit: { max: 1 }, mcp: { audit: false } }
void routeConfig
const principalOf = (request: FastifyRequest): unknown => request.mcpPrincipal
void principalOf

const session = process.env.HOST_SESSION ?? ''
const created = await app.inject({ method: 'POST', url: '/api/v1/mcp/tokens', headers: { authorization: 'Bearer ' + session }, payload: { name: 'packed host' } })
const token = String(created.json().token)
const calls = []
for (let i = 0; i < 4; i++) {
  const res = await app.inject({ method: 'GET', url: '/api/v1/mcp/projects', headers: { authorization: 'Bearer ' + token } })
  calls.push({ status: res.statusCode, limit: res.headers['x-ratelimit-limit'], projects: res.json().items?.length })
}
const hello = [await app.inject({ url: '/hello', cookies: { name: 'host' } }), await app.inject({ url: '/hello' })]
process.stdout.write(JSON.stringify({
  created: created.statusCode,
  wellFormed: isWellFormedToken(token),
  calls,
  hello: hello.map(r => ({ status: r.statusCode, body: r.json() }))
}) + '\\n')
await app.close()
`)
  const tsc = join(host, 'node_modules', 'typescript', 'bin', 'tsc')
  await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: host, timeout: 5 * 60_000 }).catch((err: { stdout?: string }) => {
    throw new Error(`the host does not type-check:\n${err.stdout ?? String(err)}`)
  })
  t.pass('strict tsc (skipLibCheck: false) passes with @fastify/rate-limit, @fastify/cookie and @fastify/postgres beside the gateway')

  const database = await createTestDatabase(t)
  await seedFixture(database.db)
  const pair = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })
  const env = {
    ...npmEnv(),
    HOST_DATABASE_URL: database.url,
    HOST_SESSION: await signSession(pair.privateKey, FIXTURE.users.demo),
    SESSION_JWT_PUBLIC_KEY: await exportSPKI(pair.publicKey),
    LOG_LEVEL: 'silent'
  }
  for (const k of ['REDIS_URL', 'PUBLIC_BASE_URL', 'MCP_RATE_LIMIT_DEFAULT_RPM']) Reflect.deleteProperty(env, k)
  const { stdout } = await run(process.execPath, ['out/host.js'], { cwd: host, env, timeout: 120_000 })
  const report = JSON.parse(stdout) as {
    created: number
    wellFormed: boolean
    calls: Array<{ status: number, limit?: string, projects?: number }>,
    hello: Array<{ status: number, body: unknown }>
  }
  t.equal(report.created, 201, 'a token minted through the packed gateway, on the host\'s pool')
  t.ok(report.wellFormed)
  t.same(report.calls.map(c => c.status), [200, 200, 200, 200], 'four calls pass, past the host limiter\'s global max of 2')
  t.ok(report.calls.every(c => c.limit === '30' && (c.projects ?? 0) > 0), 'with the gateway\'s own limit headers')
  t.same(report.hello, [{ status: 200, body: { hello: 'host' } }, { status: 429, body: report.hello[1]?.body }], 'the host\'s route: its cookie parsed, its own limit applied')
})
