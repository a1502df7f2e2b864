// compare_builds over real HTTP and the SDK's MCP client, on the demo story: against the last passing build, a given build, and a build with no passing ancestor.
import t from 'tap'
import { Value } from 'typebox/value'
import { FIXTURE } from '../../db/seed.js'
import { STORY, seedStory } from '../../db/seed-story.js'
import { CompareResult } from '../../schemas/agent.js'
import { connectV2, mintToken, rowsOnce, startMcpApp, textOf } from '../helpers/mcp.js'

const LIMITS = { default: 10_000, log: 10_000, artifact: 10_000, trigger: 10_000, introspect: 10_000 }
const { app, database, endpoint, session } = await startMcpApp(t, {
  limits: LIMITS,
  seed: async ({ db }) => { await seedStory(db, { ownerId: FIXTURE.users.demo }) }
})
const { token } = await mintToken(app, await session(FIXTURE.users.demo), { name: 'compare' })

async function compare (buildId: string, query = ''): Promise<{ status: number, headers: Headers, body: any }> {
  const res = await fetch(`${endpoint}/projects/${STORY.project}/builds/${buildId}/compare${query}`, { headers: { authorization: `Bearer ${token}` } })
  return { status: res.status, headers: res.headers, body: await res.json() }
}
const names = (tests: Array<{ name: string }>): string[] => tests.map(x => x.name).sort()

t.test('the failing build against the last passing one: commits, jobs, tests, new error lines', async t => {
  const res = await compare(STORY.failing)
  t.equal(res.status, 200)
  t.same([...Value.Errors(CompareResult, res.body)].slice(0, 3), [])
  t.equal(res.headers.get('ratelimit-policy'), `"list_builds";q=${LIMITS.default};w=60`, 'spends list_builds')
  const c = res.body
  t.match(c, { build: { id: STORY.failing, build_number: 6 }, base: { id: STORY.lastGreen, build_number: 4, status: 'finished' }, base_reason: /last_passing/ })
  t.same(c.commits.map((x: { sha: string }) => x.sha), [STORY.commits[5], STORY.commits[6]], 'the commits of #5 and #6, oldest first')
  t.same(c.jobs_changed, [{ name: 'build/compile', before: 'finished', after: 'failure' }, { name: 'test/unit', before: 'finished', after: 'failure' }])
  t.same(names(c.tests_newly_failing), names([STORY.tests.new, STORY.tests.known, STORY.tests.flaky]))
  t.ok(c.tests_newly_failing.every((x: { before: string }) => x.before === 'ok'))
  t.same(c.tests_newly_passing, [])
  t.ok(c.new_error_lines.some((l: { job_name: string, kind: string, text: string }) => l.job_name === 'build/compile' && l.kind === 'compiler' && l.text.includes('TS2322')))
  t.equal(c.truncated, false)
})

t.test('against a given build (#5): only what changed since then', async t => {
  const c = (await compare(STORY.failing, `?with=${STORY.builds[5]}`)).body
  t.equal(c.base.build_number, 5)
  t.equal(c.base_reason, 'the build given by with')
  t.same(c.commits.map((x: { sha: string }) => x.sha), [STORY.commits[6]])
  t.same(c.jobs_changed, [{ name: 'build/compile', before: 'finished', after: 'failure' }], 'test/unit failed in both')
  t.same(names(c.tests_newly_failing), [STORY.tests.new.name], 'the known and flaky tests failed in #5 too')
  t.ok(c.new_error_lines.some((l: { job_name: string, text: string }) => l.job_name === 'test/unit' && l.text.includes('3 failing')), '#5\'s test log had no error line, so #6\'s are new')
})

t.test('latest_failed with a branch; a build with no passing ancestor; refusals', async t => {
  const latest = (await compare('latest_failed', '?branch=main')).body
  t.equal(latest.build.id, STORY.failing)
  t.equal(latest.base.id, STORY.lastGreen)
  const first = await compare(STORY.builds[1])
  t.equal(first.status, 200)
  t.match(first.body, { base: null, base_reason: /no build of branch main before #1 passed/, commits: [], tests_newly_failing: [] })
  const recovered = (await compare(STORY.builds[3], `?with=${STORY.builds[2]}`)).body
  t.same(names(recovered.tests_newly_passing), [STORY.tests.flaky.name], '#3 fixed what failed in #2')
  t.equal((await compare(STORY.failing, `?with=${FIXTURE.builds.b1}`)).status, 404, 'a build of another project')
  t.equal((await compare(STORY.failing, '?with=yesterday')).status, 400)
})

t.test('over MCP (SDK client, real HTTP): scenario (b) in one call, audited under the tool\'s name', async t => {
  const mcp = await connectV2(t, endpoint, token, 'legacy')
  const result = await mcp.call('compare_builds', { projectId: STORY.project, buildId: 'latest_failed', branch: 'main' })
  t.notOk(result.isError, textOf(result).slice(0, 200))
  t.same(names(result.structuredContent?.tests_newly_failing as Array<{ name: string }>), names([STORY.tests.new, STORY.tests.known, STORY.tests.flaky]))
  t.ok(Buffer.byteLength(textOf(result)) < 16 * 1024, `${Buffer.byteLength(textOf(result))} bytes`)
  const rows = await rowsOnce(app, database.db, r => r.action === 'compare_builds' && r.via === 'mcp', 1)
  t.equal(rows[0]?.project_id, STORY.project)
})
