// search_build_logs over real HTTP (both REST routes) and the SDK's MCP client: matches with context, filters, per-job caps, cursors, refused and catastrophic patterns.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Value } from 'typebox/value'
import { FIXTURE } from '../../db/seed.js'
import { STORY, STORY_COMPILE_LOG, seedStory } from '../../db/seed-story.js'
import { LogSearchResult } from '../../schemas/agent.js'
import { UNTRUSTED_META } from '../../mcp/tools.js'
import { connectV2, mintToken, rowsOnce, startMcpApp, textOf } from '../helpers/mcp.js'

const LIMITS = { default: 10_000, log: 10_000, artifact: 10_000, trigger: 10_000, introspect: 10_000 }
const P = FIXTURE.projects
const evil = { build: randomUUID(), job: randomUUID() }
/** Lines that make a backtracking engine run (a+)+$ for ever: long runs of a's that end in b. */
const EVIL_LOG = Array.from({ length: 20 }, (_, i) => `12:00:00|${'a'.repeat(5000 + i)}b`).join('\n') + '\n12:00:01|aaaa\n'

const { app, database, endpoint, session } = await startMcpApp(t, {
  limits: LIMITS,
  seed: async ({ db }) => {
    await seedStory(db, { ownerId: FIXTURE.users.demo })
    await db.insertInto('build').values({ id: evil.build, build_number: 902, restart_counter: 1, project_id: P.github }).execute()
    await db.insertInto('job').values({ id: evil.job, name: 'evil', state: 'failure', type: 'run_project_container', build_id: evil.build, project_id: P.github, definition: '{}', console: EVIL_LOG }).execute()
  }
})
const { token } = await mintToken(app, await session(FIXTURE.users.demo), { name: 'search' })

async function get (path: string): Promise<{ status: number, headers: Headers, body: any }> {
  const res = await fetch(`${endpoint}${path}`, { headers: { authorization: `Bearer ${token}` } })
  return { status: res.status, headers: res.headers, body: await res.json() }
}
const search = (query: string): Promise<{ status: number, headers: Headers, body: any }> => get(`/projects/${STORY.project}/builds/${STORY.failing}/log-search?${query}`)

t.test('a pattern over the whole build: the match, its line number and its context', async t => {
  const res = await search('q=TS%5Cd%2B&context=2')
  t.equal(res.status, 200)
  t.same([...Value.Errors(LogSearchResult, res.body)].slice(0, 3), [])
  t.equal(res.headers.get('ratelimit-policy'), `"get_job_log";q=${LIMITS.log};w=60`)
  const lines = STORY_COMPILE_LOG.split('\n')
  const n = lines.findIndex(l => l.includes('TS2322')) + 1
  t.same(res.body.matches, [{
    job_id: STORY.jobs.compile,
    job_name: 'build/compile',
    line_number: n,
    text: "src/cart/total.ts:42:7 - error TS2322: Type 'string' is not assignable to type 'number'.",
    before: ['> shop@2.3.0 build', '> tsc -p tsconfig.build.json'],
    after: ['', '42       total: formatCents(sum),']
  }])
  t.equal(res.body.next_cursor, null)
  t.same(res.body.jobs_searched.map((j: { name: string }) => j.name), ['Create Jobs', 'build/compile', 'test/unit'])
})

t.test('limit and cursor: the pages together are the single answer, exactly', async t => {
  const all = await search('q=error&ignore_case=true&context=1&limit=500')
  t.ok(all.body.matches.length >= 6, `${all.body.matches.length} matches`)
  t.equal(all.body.next_cursor, null)
  const paged: unknown[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const res = await search(`q=error&ignore_case=true&context=1&limit=2${cursor === null ? '' : `&cursor=${cursor}`}`)
    t.equal(res.status, 200)
    paged.push(...res.body.matches)
    cursor = res.body.next_cursor
    pages++
  } while (cursor !== null && pages < 20)
  t.same(paged, all.body.matches)
  t.ok(pages >= 3)
  t.equal((await search('q=error&cursor=bm9wZQ')).status, 400, 'a cursor it did not issue')
})

t.test('filters: a job name, one job (MCP argument and REST route), per-job caps', async t => {
  const named = await search('q=failing&job=UNIT')
  t.same(named.body.jobs_searched.map((j: { name: string }) => j.name), ['test/unit'])
  t.equal(named.body.matches.length, 1)
  const one = await get(`/projects/${STORY.project}/jobs/${STORY.jobs.test}/log-search?q=Error%3A&context=0`)
  t.equal(one.status, 200)
  t.same(one.body.matches.map((m: { text: string }) => m.text.trim()), ['AssertionError: expected 9000 to equal 10000', 'Error: refund was not issued: gateway answered 502', 'Error: Timeout of 2000ms exceeded.'])
  t.equal(one.body.build_id, STORY.failing)
  const capped = await search('q=%E2%9C%93&per_job=5&context=0')
  t.same(capped.body.capped_jobs, [STORY.jobs.test], 'the job with 601 passing marks was cut at 5')
  t.equal(capped.body.matches.length, 5)
  t.equal((await get(`/projects/${P.github}/jobs/${STORY.jobs.test}/log-search?q=x`)).status, 404, 'a job of another project')
  t.equal((await search(`q=x&jobId=${randomUUID()}`)).status, 404)
})

t.test('patterns a linear-time engine refuses are 400; a catastrophic one for backtracking engines answers', async t => {
  for (const q of ['(a)\\1', '(?<=a)b', '(unclosed']) {
    const res = await search(`q=${encodeURIComponent(q)}`)
    t.equal(res.status, 400, q)
    t.match(res.body, { code: 'MCP_BAD_REQUEST', message: /linear-time engine/ })
  }
  t.equal((await search('q=x&context=11')).status, 400)
  const started = performance.now()
  const res = await get(`/projects/${P.github}/builds/${evil.build}/log-search?q=${encodeURIComponent('^(a+)+$')}&context=0`)
  t.equal(res.status, 200)
  t.same(res.body.matches.map((m: { line_number: number }) => m.line_number), [21], 'only the line of a\'s alone matches')
  t.comment(`(a+)+$ over 20 lines of 5 000 a's ending in b: ${(performance.now() - started).toFixed(0)} ms (a backtracking engine needs ~2^5000 steps per line)`)
})

t.test('over MCP (SDK client, real HTTP): one job by jobId, _meta, audited under the tool\'s name', async t => {
  const mcp = await connectV2(t, endpoint, token, 'legacy')
  const result = await mcp.call('search_build_logs', { projectId: STORY.project, buildId: STORY.failing, jobId: STORY.jobs.compile, q: 'npm ERR!', context: 0 })
  t.notOk(result.isError, textOf(result).slice(0, 200))
  t.same((result.structuredContent?.matches as Array<{ text: string }>).map(m => m.text), ['npm ERR! code 2', 'npm ERR! Lifecycle script `build` failed with error: tsc -p tsconfig.build.json'])
  t.equal((result as { _meta?: Record<string, unknown> })._meta?.[UNTRUSTED_META], true)
  const refused = await mcp.call('search_build_logs', { projectId: STORY.project, buildId: STORY.failing, q: '(a)\\1' })
  t.equal(refused.isError, true)
  const rows = await rowsOnce(app, database.db, r => r.action === 'search_build_logs', 8)
  t.ok(rows.some(r => r.via === 'mcp') && rows.some(r => r.via === 'rest' && r.path?.includes('/jobs/') === true), 'both routes and the tool audited as search_build_logs')
})
