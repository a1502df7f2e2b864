// get_build_failure_summary over real HTTP (REST) and the SDK's MCP client: the demo story's failing build, latest_failed, a killed job, a log without a recognisable error, bounds.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Value } from 'typebox/value'
import { FIXTURE } from '../../db/seed.js'
import { STORY, seedStory } from '../../db/seed-story.js'
import { FailureSummary } from '../../schemas/agent.js'
import { UNTRUSTED_META } from '../../mcp/tools.js'
import { connectV2, mintToken, rowsOnce, startMcpApp, textOf } from '../helpers/mcp.js'

const LIMITS = { default: 10_000, log: 10_000, artifact: 10_000, trigger: 10_000, introspect: 10_000 }
const P = FIXTURE.projects
const extra = { build: randomUUID(), killed: randomUUID(), plain: randomUUID(), green: randomUUID() }

const { app, database, endpoint, session } = await startMcpApp(t, {
  limits: LIMITS,
  seed: async ({ db }) => {
    await seedStory(db, { ownerId: FIXTURE.users.demo })
    // a build of another project: a killed job and a failed job whose log names no error
    await db.insertInto('build').values({ id: extra.build, build_number: 900, restart_counter: 1, project_id: P.github }).execute()
    const job = (id: string, name: string, state: 'killed' | 'failure' | 'finished', console: string, message: string | null) => ({
      id,
      name,
      state,
      message,
      console,
      type: 'run_project_container' as const,
      build_id: extra.build,
      project_id: P.github,
      definition: '{}',
      start_date: new Date('2024-01-01T00:00:00Z'),
      end_date: new Date('2024-01-01T00:01:30Z')
    })
    await db.insertInto('job').values([
      job(extra.green, 'lint', 'finished', '12:00:01|all good\n', null),
      job(extra.killed, 'e2e', 'killed', '12:00:01|starting browsers\n12:00:02|running 40 specs\n', 'Aborted by demo'),
      job(extra.plain, 'deploy', 'failure', Array.from({ length: 100 }, (_, i) => `12:00:${String(i % 60).padStart(2, '0')}|uploading part ${i}`).join('\n') + '\n', null)
    ]).execute()
  }
})
const { token } = await mintToken(app, await session(FIXTURE.users.demo), { name: 'failures' })
const auth = { authorization: `Bearer ${token}` }

async function get (path: string): Promise<{ status: number, headers: Headers, text: string, body: any }> {
  const res = await fetch(`${endpoint}${path}`, { headers: auth })
  const text = await res.text()
  return { status: res.status, headers: res.headers, text, body: JSON.parse(text) }
}

t.test('the story\'s failing build: compile error, failing tests marked new, known and flaky, within 32 KiB', async t => {
  const res = await get(`/projects/${STORY.project}/builds/${STORY.failing}/failures`)
  t.equal(res.status, 200)
  t.same([...Value.Errors(FailureSummary, res.body)].slice(0, 3), [], 'matches its schema')
  t.ok(Buffer.byteLength(res.text) <= 32 * 1024, `${Buffer.byteLength(res.text)} bytes`)
  t.equal(res.headers.get('ratelimit-policy'), `"get_job_log";q=${LIMITS.log};w=60`, 'spends get_job_log')
  const s = res.body
  t.match(s.build, { id: STORY.failing, build_number: 6, status: 'failure', branch: 'main', commit_message: 'Cart: keep totals in cents' })
  t.same(s.job_states, { finished: 1, failure: 2 })
  const [compile, test] = s.failed_jobs
  t.match(compile, { id: STORY.jobs.compile, name: 'build/compile', state: 'failure', message: 'container exited with code 2', failing_tests: [] })
  const lines = (await import('../../db/seed-story.js')).STORY_COMPILE_LOG.split('\n')
  const tsError = lines.findIndex(l => l.includes('TS2322')) + 1
  t.same(compile.error_lines[0], { line_number: tsError, kind: 'compiler', text: "src/cart/total.ts:42:7 - error TS2322: Type 'string' is not assignable to type 'number'." }, 'the first error line: prefix and colours gone, its number in the stored log')
  t.same(compile.error_lines.map((l: { kind: string }) => l.kind), ['compiler', 'compiler', 'npm', 'npm', 'exit_code'])
  t.equal(compile.tail.length, 30)
  t.equal(compile.tail.at(-1).line_number, compile.log.total_lines)
  t.notOk(compile.tail.some((l: { text: string }) => /^\d\d:\d\d:\d\d\|/.test(l.text)), 'no InfraBox prefixes shown')
  t.equal(compile.log.total_lines, lines.length - 1, 'the final newline ends the last line')
  t.same(test.failing_tests.map((f: { name: string, verdict: string }) => [f.name, f.verdict]), [
    [STORY.tests.new.name, 'new'], [STORY.tests.known.name, 'known'], [STORY.tests.flaky.name, 'flaky']
  ].sort((a, b) => a[0] === STORY.tests.new.name ? -1 : b[0] === STORY.tests.new.name ? 1 : 0))
  const flaky = test.failing_tests.find((f: { name: string }) => f.name === STORY.tests.flaky.name)
  t.equal(flaky.history, '.F..FF', 'outcomes of builds 1-6 of main')
  t.match(flaky, { suite: 'search', state: 'failure', message: 'timeout of 2000ms exceeded' })
  t.equal(test.failing_test_count, 3)
  t.ok(test.error_lines.some((l: { text: string }) => l.text.includes('3 failing')))
})

t.test('latest_failed: the newest failed build, of a branch or of the project', async t => {
  const res = await get(`/projects/${STORY.project}/builds/latest_failed/failures?branch=main&tail=0`)
  t.equal(res.body.build.id, STORY.failing)
  t.same(res.body.failed_jobs[0].tail, [])
  t.equal((await get(`/projects/${STORY.project}/builds/latest_failed/failures?branch=nope`)).status, 404)
  t.equal((await get(`/projects/${STORY.project}/builds/latest/failures`)).status, 400, 'anything else than a uuid or latest_failed')
})

t.test('a killed job and a failed job whose log names no error; a passing job is not listed', async t => {
  const res = await get(`/projects/${P.github}/builds/${extra.build}/failures?tail=5`)
  t.equal(res.status, 200)
  const byId = (id: string): any => res.body.failed_jobs.find((j: { id: string }) => j.id === id)
  const killed = byId(extra.killed)
  const plain = byId(extra.plain)
  t.equal(res.body.failed_jobs.length, 2)
  t.match(killed, { id: extra.killed, state: 'killed', message: 'Aborted by demo', duration_seconds: 90, error_lines: [], log: { total_lines: 2 } })
  t.same(killed.tail.map((l: { text: string }) => l.text), ['starting browsers', 'running 40 specs'])
  t.match(plain, { id: extra.plain, state: 'failure', error_lines: [], log: { total_lines: 100, error_line_count: 0 } })
  t.same(plain.tail.map((l: { line_number: number }) => l.line_number), [96, 97, 98, 99, 100], 'with no error line, the tail is the evidence')
})

t.test('a passing build: no failed jobs; a running one says so', async t => {
  const green = await get(`/projects/${STORY.project}/builds/${STORY.lastGreen}/failures`)
  t.same(green.body.failed_jobs, [])
  const running = await get(`/projects/${STORY.project}/builds/${STORY.running}/failures`)
  t.match(running.body, { build: { status: 'running' }, failed_jobs: [], next_steps: /wait_for_build/ })
})

t.test('max_bytes bounds the answer; what was cut is flagged', async t => {
  const res = await get(`/projects/${STORY.project}/builds/${STORY.failing}/failures?max_bytes=4096&tail=200&max_error_lines=100`)
  t.ok(Buffer.byteLength(res.text) <= 4096, `${Buffer.byteLength(res.text)} bytes`)
  t.equal(res.body.truncated, true)
  t.ok(res.body.failed_jobs.some((j: { truncated: boolean }) => j.truncated))
  t.equal((await get(`/projects/${STORY.project}/builds/${STORY.failing}/failures?tail=201`)).status, 400)
  t.equal((await get(`/projects/${P.github}/builds/${STORY.failing}/failures`)).status, 404, 'a build of another project')
})

t.test('over MCP (SDK client, real HTTP): structured content, _meta marks CI text, audited under the tool\'s name', async t => {
  const mcp = await connectV2(t, endpoint, token, 'legacy')
  const tools = await mcp.list()
  const tool = tools.find(x => x.name === 'get_build_failure_summary')
  t.match(tool?.description, /START HERE/)
  const result = await mcp.call('get_build_failure_summary', { projectId: STORY.project, buildId: 'latest_failed', branch: 'main' })
  t.notOk(result.isError, textOf(result).slice(0, 200))
  t.match(result.structuredContent, { build: { id: STORY.failing } })
  t.equal((result as { _meta?: Record<string, unknown> })._meta?.[UNTRUSTED_META], true)
  t.ok(Buffer.byteLength(textOf(result)) < 16 * 1024, 'under 16 KiB for the agent scenario')
  const rows = await rowsOnce(app, database.db, r => r.action === 'get_build_failure_summary' && r.via === 'mcp', 1)
  t.equal(rows[0]?.project_id, STORY.project)
})
