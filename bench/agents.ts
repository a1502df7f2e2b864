// `npm run bench:agents` (and the end of `npm run bench`), SPEC §9/§11: scripted agents answer three questions over MCP; calls, bytes, ≈tokens and time per answer, today's tools beside the new ones.
//
// One gateway (app.ts, in this process) on a fresh PostgreSQL database seeded with the demo story (db/seed-story.ts) and
// the machine's Redis, driven by the official MCP SDK client over real HTTP. Each scenario is a fixed script: the calls
// an agent makes to answer the question, reading what it needs from each answer, without a model in the loop (so the
// run is deterministic). Counted per answer: tool calls, response bytes (the UTF-8 text blocks a model would read),
// bytes/4 as a token estimate, and wall time. A scenario whose tools are not on this build says so instead of a row.
//   (a) why did the newest failed build of branch main fail?
//   (b) which tests fail now that passed in the last green build?
//   (c) trigger a build of main and report how it ended (the script plays InfraBox's scheduler in the database)
//   (d) the build failed on a flaky test: retry it and report the outcome (runs last: it retries the story's failed build)
// Flags (or env BENCH_<NAME>): --only a,b,c,d  --redis-url URL  --json FILE
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import pg from 'pg'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import type { Static, TSchema } from '@fastify/type-provider-typebox'
import { Value } from 'typebox/value'
import { BuildDetail, BuildPage, JobLog, ProjectPage, TestRunPage, TriggerResult } from '../schemas/data.js'
import { CompareResult, FailureSummary, WaitResult } from '../schemas/agent.js'
import { RestartedJobs } from '../schemas/control.js'
import app, { serverOptions } from '../app.js'
import { loadConfig } from '../config.js'
import { kyselyWithOwnPool } from '../db/connect.js'
import { applyInfraboxSubset, migrateGateway } from '../db/migrate.js'
import { seedDemo } from '../db/seed.js'
import { STORY } from '../db/seed-story.js'
import { DEFAULT_ADMIN_URL } from './seed.js'

const argv = process.argv.slice(2)
const opt = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] ?? fallback : process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? fallback
}
const only = new Set(opt('only', 'a,b,c,d').split(',').map(s => s.trim()))
const redisUrl = opt('redis-url', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')

// ------------------------------------------------------------------ the gateway on a fresh, seeded database

const dbName = `mcp_bench_agents_${randomBytes(4).toString('hex')}`
const admin = new pg.Client({ connectionString: DEFAULT_ADMIN_URL })
await admin.connect()
await admin.query(`CREATE DATABASE ${dbName}`)
const dbUrl = new URL(DEFAULT_ADMIN_URL)
dbUrl.pathname = `/${dbName}`
const db = kyselyWithOwnPool({ connectionString: dbUrl.toString(), max: 2 })
const sandbox = await mkdtemp(join(tmpdir(), 'mcp-bench-agents-'))
await applyInfraboxSubset(db)
await migrateGateway(db)
await seedDemo(db, { artifactRoot: join(sandbox, 'artifacts') })

// The session is signed here as InfraBox signs one (PyJWT's RS256 over {"user": {"id"}, "type": "user"}), by
// node:crypto, not by the gateway's own signSession: the benchmark logs in the way a real InfraBox user does.
const keys = generateKeyPairSync('rsa', { modulusLength: 2048 })
const b64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url')
function infraboxSession (userId: string): string {
  const input = `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ user: { id: userId }, type: 'user' }))}`
  return `${input}.${b64url(sign('sha256', Buffer.from(input), keys.privateKey))}`
}
const NEVER = 1_000_000_000
const config = loadConfig({
  DATABASE_URL: dbUrl.toString(),
  REDIS_URL: redisUrl,
  SESSION_JWT_PUBLIC_KEY: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  ARTIFACT_FS_ROOT: join(sandbox, 'artifacts'),
  LOG_LEVEL: 'warn'
})
const fastify = Fastify(serverOptions(config))
const limiterPrefix = `bench_agents_${randomBytes(3).toString('hex')}`
await fastify.register(app, { config, limiterKeyPrefix: limiterPrefix, limits: { default: NEVER, log: NEVER, artifact: NEVER, trigger: NEVER, introspect: NEVER } })
await fastify.listen({ host: '127.0.0.1', port: 0 })
const address = fastify.server.address()
const port = typeof address === 'object' && address !== null ? address.port : 0
const endpoint = `http://127.0.0.1:${port}/api/v1/mcp`
const session = infraboxSession('00000000-0000-4000-8000-000100000001')
const minted = await fastify.inject({ method: 'POST', url: '/api/v1/mcp/tokens', headers: { authorization: `Bearer ${session}` }, payload: { name: 'bench agent', allow_trigger: true } })
const { token } = minted.json<{ token: string }>()

const client = new Client({ name: 'infrabox-bench-agent', version: '1.0.0' })
await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { requestInit: { headers: { authorization: `Bearer ${token}` } } }))
const available = new Set((await client.listTools()).tools.map(tool => tool.name))

// ------------------------------------------------------------------ a counted agent

interface Tally { calls: number, bytes: number, started: number }

type Call = <T extends TSchema>(name: string, args: Record<string, unknown>, schema: T) => Promise<Static<T>>

/** One scripted agent: every call counted, the JSON answer (the text block, as a model reads it) checked against its schema. */
function agent (): { call: Call, tally: Tally } {
  const tally: Tally = { calls: 0, bytes: 0, started: performance.now() }
  return {
    tally,
    call: async (name, args, schema) => {
      tally.calls++
      const result = await client.callTool({ name, arguments: args })
      const blocks = Array.isArray(result.content) ? result.content : []
      const text = blocks.map(b => typeof b === 'object' && b !== null && 'text' in b && typeof b.text === 'string' ? b.text : '').join('\n')
      tally.bytes += Buffer.byteLength(text)
      if (result.isError === true) throw new Error(`${name} refused: ${text}`)
      const answer: unknown = JSON.parse(text.split('\n')[0] ?? 'null')
      if (!Value.Check(schema, answer)) throw new Error(`${name} answered outside its schema: ${text.slice(0, 300)}`)
      return answer
    }
  }
}

interface Row { scenario: string, tools: string, calls: number, bytes: number, tokens: number, ms: number, answer: string, ok: boolean, note?: string }
const rows: Row[] = []
function record (scenario: string, tools: string, tally: Tally, answer: string, ok: boolean, note?: string): void {
  rows.push({ scenario, tools, calls: tally.calls, bytes: tally.bytes, tokens: Math.round(tally.bytes / 4), ms: Math.round(performance.now() - tally.started), answer, ok, ...(note === undefined ? {} : { note }) })
}
function missing (scenario: string, tools: string, needs: string[]): boolean {
  const absent = needs.filter(n => !available.has(n))
  if (absent.length === 0) return false
  rows.push({ scenario, tools, calls: 0, bytes: 0, tokens: 0, ms: 0, answer: '', ok: false, note: `not on this build: ${absent.join(', ')}` })
  return true
}

const project = STORY.project
type BuildItem = Static<typeof BuildPage>['items'][number]
const testName = (r: { suite: string | null, name: string | null }): string => `${r.suite ?? ''} › ${r.name ?? ''}`

/** The scripts start the same way: find the project and the branch's newest failed build. */
async function newestFailed (call: Call): Promise<BuildItem> {
  const projects = await call('list_projects', {}, ProjectPage)
  if (!projects.items.some(p => p.id === project)) throw new Error('demo-shop not listed')
  const failed = await call('list_builds', { projectId: project, branch: STORY.branch, status: 'failure', limit: 1 }, BuildPage)
  const build = failed.items[0]
  if (build === undefined) throw new Error('no failed build on the branch')
  return build
}

// (a) ------------------------------------------------------------------
if (only.has('a')) {
  {
    const { call, tally } = agent()
    const build = await newestFailed(call)
    const detail = await call('get_build', { projectId: project, buildId: build.id }, BuildDetail)
    const failedJobs = detail.jobs.filter(j => ['failure', 'error', 'killed', 'unstable'].includes(j.state))
    const errors: string[] = []
    const tests: string[] = []
    for (const job of failedJobs) {
      const log = await call('get_job_log', { projectId: project, jobId: job.id }, JobLog)
      errors.push(...log.log.split('\n').filter(l => /error|ERR!|FAIL/i.test(l)).slice(0, 3))
      const runs = await call('list_test_runs', { projectId: project, jobId: job.id, state: 'failure', limit: 100 }, TestRunPage)
      tests.push(...runs.items.map(testName))
    }
    const ok = errors.some(l => l.includes('TS2322')) && tests.length === 3
    record('(a) why did the newest failed build of main fail?', 'today: list_builds, get_build, get_job_log + list_test_runs per failed job', tally, `${errors.length} error lines, ${tests.length} failing tests (new/known/flaky: not told)`, ok)
  }
  if (!missing('(a) why did the newest failed build of main fail?', 'new: get_build_failure_summary', ['get_build_failure_summary'])) {
    // one call: the project id is known from the question's context (as the demo prints it); latest_failed names the build
    const { call, tally } = agent()
    const summary = await call('get_build_failure_summary', { projectId: project, buildId: 'latest_failed', branch: STORY.branch }, FailureSummary)
    const errors = summary.failed_jobs.flatMap(j => j.error_lines)
    const verdicts = summary.failed_jobs.flatMap(j => j.failing_tests.map(f => f.verdict)).sort()
    const ok = errors.some(l => l.text.includes('TS2322')) && verdicts.join(',') === 'flaky,known,new'
    record('(a) why did the newest failed build of main fail?', 'new: get_build_failure_summary (buildId latest_failed)', tally, `${errors.length} error lines, 3 failing tests marked ${verdicts.join('/')}`, ok)
  }
}

// (b) ------------------------------------------------------------------
if (only.has('b')) {
  {
    const { call, tally } = agent()
    const builds = await call('list_builds', { projectId: project, branch: STORY.branch, limit: 20 }, BuildPage)
    const now = builds.items.find(b => b.status === 'failure')
    const green = builds.items.find(b => b.status === 'finished' && now !== undefined && b.build_number < now.build_number)
    const testsOf = async (b: BuildItem, state: 'ok' | 'failure'): Promise<Set<string>> => {
      const detail = await call('get_build', { projectId: project, buildId: b.id }, BuildDetail)
      const names = new Set<string>()
      for (const job of detail.jobs) {
        if (job.type === 'create_job_matrix') continue
        const runs = await call('list_test_runs', { projectId: project, jobId: job.id, limit: 100, state }, TestRunPage)
        for (const r of runs.items) names.add(testName(r))
      }
      return names
    }
    const failingNow = now === undefined ? new Set<string>() : await testsOf(now, 'failure')
    const passedThen = green === undefined ? new Set<string>() : await testsOf(green, 'ok')
    const answer = [...failingNow].filter(n => passedThen.has(n))
    record('(b) which tests fail now that passed in the last green build?', 'today: list_builds, get_build ×2, list_test_runs per job', tally, `${answer.length} tests`, answer.length === 3)
  }
  if (!missing('(b) which tests fail now that passed in the last green build?', 'new: compare_builds', ['compare_builds'])) {
    const { call, tally } = agent()
    const compared = await call('compare_builds', { projectId: project, buildId: 'latest_failed', branch: STORY.branch }, CompareResult)
    const answer = compared.tests_newly_failing.filter(x => x.before === 'ok').map(x => x.name)
    const expected = [STORY.tests.new.name, STORY.tests.known.name, STORY.tests.flaky.name]
    record('(b) which tests fail now that passed in the last green build?', 'new: compare_builds (latest_failed vs last_passing)', tally, `${answer.length} tests`, answer.length === 3 && expected.every(n => answer.includes(n)))
  }
}

// (c) ------------------------------------------------------------------
/** InfraBox's scheduler, played in the database: the build's jobs run after `runAt` ms and end after `endAt` ms. */
async function schedule (buildId: string, runAt: number, endAt: number): Promise<void> {
  const scheduler = new pg.Client({ connectionString: dbUrl.toString() })
  await scheduler.connect()
  await new Promise(resolve => setTimeout(resolve, runAt))
  await scheduler.query("UPDATE job SET state = 'running', start_date = now() WHERE build_id = $1", [buildId])
  await new Promise(resolve => setTimeout(resolve, endAt - runAt))
  await scheduler.query("UPDATE job SET state = 'finished', end_date = now() WHERE build_id = $1", [buildId])
  await scheduler.end()
}

/** The most gateway backends of the bench database busy at once (not idle) while `during` runs, sampled every 50 ms. */
async function busyBackends (during: Promise<unknown>): Promise<number> {
  let most = 0
  const state = { done: false }
  void during.finally(() => { state.done = true })
  while (!state.done) {
    const { rows: r } = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state <> 'idle' AND application_name LIKE 'infrabox-mcp-gateway%' AND application_name <> 'infrabox-mcp-gateway-listen'", [dbName])
    most = Math.max(most, r[0]?.n ?? 0)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return most
}

if (only.has('c')) {
  const RUN_AT = 1000
  const END_AT = 3000
  {
    const { call, tally } = agent()
    const { build } = await call('trigger_build', { projectId: project, branch: STORY.branch }, TriggerResult)
    const driving = schedule(build.id, RUN_AT, END_AT)
    let status = 'running'
    // what an agent does with today's tools: poll get_build, once a second
    while (status === 'running') {
      await new Promise(resolve => setTimeout(resolve, 1000))
      status = (await call('get_build', { projectId: project, buildId: build.id }, BuildDetail)).status
    }
    await driving
    record('(c) trigger a build of main and report how it ended', 'today: trigger_build, then get_build once a second', tally, `build #${build.build_number}: ${status}`, status === 'finished')
  }
  if (!missing('(c) trigger a build of main and report how it ended', 'new: trigger_build + wait_for_build', ['wait_for_build'])) {
    const { call, tally } = agent()
    const { build } = await call('trigger_build', { projectId: project, branch: STORY.branch, idempotency_key: randomBytes(8).toString('hex') }, TriggerResult)
    const driving = schedule(build.id, RUN_AT, END_AT)
    let waited: { finished: boolean, build: { status: string } } = { finished: false, build: { status: 'running' } }
    const waits = (async () => {
      for (let i = 0; i < 2 && !waited.finished; i++) waited = await call('wait_for_build', { projectId: project, buildId: build.id, timeout: 45 }, WaitResult)
    })()
    const busy = await busyBackends(waits)
    await driving
    const waitCalls = tally.calls - 1
    record('(c) trigger a build of main and report how it ended', 'new: trigger_build + wait_for_build', tally, `build #${build.build_number}: ${waited.build.status}`, waited.finished && waitCalls <= 2, `${waitCalls} wait call(s); at most ${busy} gateway connection(s) busy while waiting`)
  }
}

// (d) ------------------------------------------------------------------
/** InfraBox's scheduler for the jobs a retry queued: they run after `runAt` ms and pass after `endAt` ms. */
async function scheduleJobs (jobIds: string[], runAt: number, endAt: number): Promise<void> {
  const scheduler = new pg.Client({ connectionString: dbUrl.toString() })
  await scheduler.connect()
  await new Promise(resolve => setTimeout(resolve, runAt))
  await scheduler.query("UPDATE job SET state = 'running', start_date = now() WHERE id = ANY($1::uuid[])", [jobIds])
  await new Promise(resolve => setTimeout(resolve, endAt - runAt))
  await scheduler.query("UPDATE job SET state = 'finished', end_date = now() WHERE id = ANY($1::uuid[])", [jobIds])
  await scheduler.end()
}

if (only.has('d')) {
  const D = '(d) the build failed on a flaky test: retry it and report the outcome'
  rows.push({ scenario: D, tools: 'today: read-only tools', calls: 0, bytes: 0, tokens: 0, ms: 0, answer: '', ok: false, note: 'no tool retries: the agent hands the retry to a person' })
  // The failure summary when this build has it (SPEC §11), else what an agent reads without it.
  const summarised = available.has('get_build_failure_summary')
  const tools = `new: ${summarised ? 'get_build_failure_summary' : 'get_build + list_test_runs per failed job'} → retry_failed_jobs → wait_for_build`
  if (!missing(D, tools, ['retry_failed_jobs', 'wait_for_build'])) {
    const { call, tally } = agent()
    const build = await newestFailed(call)
    let flaky = false
    if (summarised) {
      const summary = await call('get_build_failure_summary', { projectId: project, buildId: build.id }, FailureSummary)
      flaky = summary.failed_jobs.some(j => j.failing_tests.some(f => f.verdict === 'flaky'))
    } else {
      const detail = await call('get_build', { projectId: project, buildId: build.id }, BuildDetail)
      for (const job of detail.jobs.filter(j => ['failure', 'error', 'killed', 'unstable'].includes(j.state))) {
        const runs = await call('list_test_runs', { projectId: project, jobId: job.id, state: 'failure', limit: 100 }, TestRunPage)
        if (runs.items.some(r => r.name === STORY.tests.flaky.name)) flaky = true
      }
    }
    const retried = await call('retry_failed_jobs', { projectId: project, buildId: build.id }, RestartedJobs)
    const driving = scheduleJobs(retried.jobs.map(j => j.id), 1000, 3000)
    let waited: { finished: boolean, build: { status: string } } = { finished: false, build: { status: 'running' } }
    for (let i = 0; i < 2 && !waited.finished; i++) waited = await call('wait_for_build', { projectId: project, buildId: build.id, timeout: 45 }, WaitResult)
    await driving
    const names = retried.jobs.map(j => j.name).join(', ')
    record(D, tools, tally, `flaky test seen; retried ${names}; build #${build.build_number}: ${waited.build.status}`,
      flaky && waited.finished && waited.build.status === 'finished')
  }
}

// ------------------------------------------------------------------ report

const kib = (n: number): string => n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`
console.log('\nAgent scenarios over MCP (SDK client, real HTTP), demo story data: one answer each\n')
console.log('| scenario | tools | calls | response | ≈ tokens | time | answer |')
console.log('|---|---|---:|---:|---:|---:|---|')
for (const r of rows) {
  if (r.note !== undefined && r.calls === 0) {
    console.log(`| ${r.scenario} | ${r.tools} | – | – | – | – | ${r.note} |`)
    continue
  }
  console.log(`| ${r.scenario} | ${r.tools} | ${r.calls} | ${kib(r.bytes)} | ${r.tokens} | ${r.ms} ms | ${r.ok ? '✓' : '✗'} ${r.answer}${r.note === undefined ? '' : `; ${r.note}`} |`)
}
const json = opt('json', '')
if (json !== '') await writeFile(json, JSON.stringify(rows, null, 2))

await client.close()
await fastify.close()
await db.destroy()
await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
await admin.end()
await rm(sandbox, { recursive: true, force: true })
const failed = rows.filter(r => !r.ok && r.calls > 0)
if (failed.length > 0) {
  console.error(`\n${failed.length} scenario(s) did not reach their answer`)
  process.exitCode = 1
}
