// SPEC §1 configuration: defaults, coercion, and one clear line (exit 1) for a bad value.
import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { loadConfig, ConfigError, parseTrustProxy } from '../config.js'

const run = promisify(execFile)
const root = new URL('..', import.meta.url).pathname

t.test('defaults', async t => {
  const c = loadConfig({})
  t.equal(c.PORT, 8080)
  t.equal(c.HOST, '0.0.0.0')
  t.equal(c.MCP_RATE_LIMIT_DEFAULT_RPM, 30)
  t.equal(c.MCP_RATE_LIMIT_LOG_RPM, 10)
  t.equal(c.MCP_RATE_LIMIT_ARTIFACT_RPM, 10)
  t.equal(c.MCP_RATE_LIMIT_TRIGGER_RPM, 5)
  t.equal(c.RATE_LIMIT_REDIS_TIMEOUT_MS, 50)
  t.equal(c.MCP_TOKEN_MAX_EXPIRY_DAYS, 365)
  t.equal(c.MCP_TOKEN_MAX_PER_USER, 20)
  t.equal(c.AUDIT_FLUSH_MS, 100)
  t.equal(c.AUDIT_BUFFER_MAX, 100000)
  t.equal(c.ARTIFACT_STORAGE, 'fs')
  t.equal(c.DATA_DIR, './.data')
  t.equal(c.MIGRATE_ON_START, true)
  t.equal(c.DATABASE_URL, undefined)
})

t.test('coercion and empty values', async t => {
  const c = loadConfig({ PORT: ' 9000 ', MIGRATE_ON_START: 'false', REDIS_URL: '', S3_FORCE_PATH_STYLE: 'true' })
  t.equal(c.PORT, 9000)
  t.equal(c.MIGRATE_ON_START, false)
  t.equal(c.REDIS_URL, undefined, 'empty means unset')
  t.equal(c.S3_FORCE_PATH_STYLE, true)
})

t.test('a bad value names the variable', async t => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^invalid configuration: PORT .*"eighty"/],
    [{ PORT: '70000' }, /PORT/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    [{ REDIS_URL: 'localhost:6379' }, /REDIS_URL/],
    [{ MCP_RATE_LIMIT_TRIGGER_RPM: '0' }, /MCP_RATE_LIMIT_TRIGGER_RPM/],
    [{ ARTIFACT_STORAGE: 'gcs' }, /ARTIFACT_STORAGE/],
    [{ ARTIFACT_STORAGE: 's3' }, /S3_BUCKET/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ MIGRATE_ON_START: 'maybe' }, /MIGRATE_ON_START/],
    [{ REDIS_URL: 'redis://10.0.0.1:7000,redis://10.0.0.2:7000' }, /^invalid configuration: REDIS_URL lists several nodes; set REDIS_CLUSTER=true/],
    [{ REDIS_URL: 'redis://10.0.0.1:7000,10.0.0.2:7000', REDIS_CLUSTER: 'true' }, /^invalid configuration: REDIS_URL "10.0.0.2:7000" is not a redis/],
    [{ REDIS_CLUSTER: 'perhaps' }, /REDIS_CLUSTER/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'Error', message }, JSON.stringify(env))
    try { loadConfig(env) } catch (err) { t.ok(err instanceof ConfigError) }
  }
})

t.test('REDIS_CLUSTER: REDIS_URL holds the seed nodes', async t => {
  const c = loadConfig({ REDIS_URL: 'redis://:secret@10.0.0.1:7000, redis://10.0.0.2:7001', REDIS_CLUSTER: 'true' })
  t.equal(c.REDIS_CLUSTER, true)
  t.equal(loadConfig({}).REDIS_CLUSTER, false, 'off by default')
  const { clusterSeeds } = await import('../core/limiter.js')
  t.same(clusterSeeds(c.REDIS_URL ?? ''), { nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }], redisOptions: { password: 'secret' } })
  t.match(clusterSeeds('rediss://u:p@h').redisOptions, { username: 'u', password: 'p', tls: {} })
  t.same(clusterSeeds('redis://h').nodes, [{ host: 'h', port: 6379 }])
})

t.test('TRUST_PROXY forms', async t => {
  t.equal(parseTrustProxy('true'), true)
  t.equal(parseTrustProxy('false'), false)
  t.same(parseTrustProxy('10.0.0.1, 10.0.0.2'), ['10.0.0.1', '10.0.0.2'])
  const hops = parseTrustProxy('2')
  t.equal(typeof hops, 'function')
})

t.test('the server stops with one line and exit 1', async t => {
  const err = await run('node', ['dist/server.js'], { cwd: root, env: { ...process.env, PORT: 'eighty', DATABASE_URL: '' } })
    .then(() => null, (e: { code: number, stderr: string }) => e)
  t.ok(err !== null, 'exits non-zero')
  t.equal(err?.code, 1)
  const lines = (err?.stderr ?? '').trim().split('\n')
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], /^invalid configuration: PORT/)
})

t.test('.env.example lists every variable with its default', async t => {
  const { readFile } = await import('node:fs/promises')
  const { ConfigSchema } = await import('../config.js')
  const text = await readFile(new URL('../.env.example', import.meta.url), 'utf8')
  const listed = new Map(text.split('\n').filter(l => /^[A-Z0-9_]+=/.test(l)).map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
  for (const [name, schema] of Object.entries(ConfigSchema.properties)) {
    t.ok(listed.has(name), `${name} listed`)
    const def = (schema as { default?: unknown }).default
    if (def !== undefined) t.equal(listed.get(name), String(def), `${name} default`)
  }
  t.same(loadConfig(Object.fromEntries(listed)), loadConfig({}), 'the file as-is configures the defaults')
})
