// `npm run bench` end to end, cut short: the harness seeds its database, starts the gateway and the baselines as
// child processes, drives them with autocannon, checks the audit table and writes its JSON. Only that it works
// and what it reports are checked here; speed is never asserted in a test (docs/performance.md has the numbers).
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { TEST_DATABASE_URL } from './helpers/db.js'
import { withoutCoverage } from './helpers/coverage.js'

const run = promisify(execFile)
const root = new URL('..', import.meta.url).pathname

interface BenchJson {
  summary: Array<{ variant: string, reqPerSec: number, non2xx: number, errors: number, stackCpuUsPerReq: number }>
  targets: Array<{ name: string, value: number | null, met: boolean | null }>
  audit: { rows: number, answered: number, ok: boolean }
  plans: Array<{ title: string, plan: string }>
}

/** as a user runs it: no tap loaders, no BENCH_ settings from the environment; the test PostgreSQL and Redis */
function benchEnv (): NodeJS.ProcessEnv {
  // DB_POOL_MAX 4: nine server processes with their pools (the bare ones as many connections as the gateway's three
  // pools) must stay well inside PostgreSQL's default max_connections (100) next to the other test files
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_ADMIN_URL: TEST_DATABASE_URL, REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', DB_POOL_MAX: '4' }
  delete env.NODE_OPTIONS
  withoutCoverage(env) // dist/ is not measured (mcr.config.js)
  for (const k of Object.keys(env)) if (k.startsWith('BENCH_') && k !== 'BENCH_ADMIN_URL') delete env[k]
  return env
}

t.test('the benchmark runs end to end and accounts for every request in the audit table', async t => {
  const out = join(tmpdir(), `ib-mcp-bench-${process.pid}.json`)
  t.teardown(async () => { await rm(out, { force: true }) })
  const { stdout } = await run('node', [
    'dist/bench/run.js', '--variants', 'G,M,A,P,S,Q,a,b,d', '--rounds', '1', '--duration', '1', '--warmup', '1',
    '--connections', '10', '--quiet-wait', '0', '--retries', '0', '--revoked-tokens', '1000', '--out', out
  ], { cwd: root, env: benchEnv(), timeout: 240_000, maxBuffer: 16 * 1024 * 1024 })

  t.match(stdout, /seeded mcp_bench_s1_\w+ \(scale 1\)/)
  t.match(stdout, /mcp_token 1100/, 'the revoked tokens were added')
  t.match(stdout, /exactly one row per request/)
  t.match(stdout, /chain req\/s ×\(a\)/)
  t.match(stdout, /gateway \(G\) ×\(A\) bare Fastify, logger off, same listBuilds/)
  t.match(stdout, /listBuilds \(A\) ×\(P\) the plain hand-written query/)
  t.match(stdout, /MCP tools\/call list_builds \(M\) ×\(G\) its REST twin/)
  t.match(stdout, /gateway \(G\) ×\(P\) the plain bare server/)
  t.match(stdout, /limiter alone \(d\) ×\(b\)/)
  t.match(stdout, /round 1 G: .*requests per auth query; [\d.]+ hits per Redis call/, 'the gateway reports its batched auth lookups and limiter calls')
  t.match(stdout, /round 1 d: .*[\d.]+ hits per Redis call/)

  const json = JSON.parse(await readFile(out, 'utf8')) as BenchJson
  t.same(json.summary.map(s => s.variant).sort(), ['A', 'G', 'M', 'P', 'Q', 'S', 'a', 'b', 'd'])
  for (const s of json.summary) {
    t.ok(s.reqPerSec > 0, `${s.variant} answered requests`)
    t.equal(s.non2xx + s.errors, 0, `${s.variant}: only 2xx`)
    t.ok(s.stackCpuUsPerReq > 0, `${s.variant}: CPU per request measured`)
  }
  // REST runs: one row per answered request; MCP runs (M) also audit the calls whose client hung up when the load stopped
  t.ok(json.audit.ok && json.audit.rows >= json.audit.answered && json.audit.rows > 0, `audit rows ${json.audit.rows} for ${json.audit.answered} answered, every run within its bounds`)
  t.same(json.plans.map(p => p.title.split(',')[0]?.split(':')[0]), ['builds list', 'the same page as the plain hand-written query (bench/plain-query.ts', 'auth', 'auth', 'audit'], 'EXPLAIN plans of the five statements')
  t.ok(json.plans.every(p => /Execution Time/.test(p.plan)))

  // nothing left behind: the seeded database is dropped
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL })
  await admin.connect()
  try {
    const name = /seeded (mcp_bench_s1_\w+)/.exec(stdout)?.[1]
    const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    t.equal(rows.length, 0, `${name ?? '?'} dropped`)
  } finally {
    await admin.end()
  }
})
