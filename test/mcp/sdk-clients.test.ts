// SPEC §7 with the official SDK clients over real HTTP: both v2 eras and the v1 client list the tools, call each one on the fixture, get refusals as isError and leave one audit row per call.
import t, { type Test } from 'tap'
import type { TSchema } from '@fastify/type-provider-typebox'
import { Value } from 'typebox/value'
import { ARTIFACT_BINARY, ARTIFACT_TEXT, COMPILE_LOG, FIXTURE } from '../../db/seed.js'
import {
  getBuildOp, getJobLogOp, getJobOp, getProjectOp, listArtifactsOp, listBuildsOp, listJobsOp, listProjectsOp, listTestRunsOp, OPERATIONS, triggerBuildOp
} from '../../core/operations/index.js'
import { ArtifactContent } from '../../schemas/data.js'
import { TOOLS } from '../../mcp/server.js'
import { connectV1, connectV2, linksOf, mintToken, rowsOnce, startMcpApp, textOf, type CallResult, type McpSession } from '../helpers/mcp.js'

const { projects: P, builds: B, jobs: J } = FIXTURE
const TOOL_NAMES = ['list_projects', 'get_project', 'list_builds', 'get_build', 'list_jobs', 'get_job', 'list_test_runs', 'get_job_log', 'list_artifacts', 'get_artifact', 'trigger_build', 'wait_for_build', 'get_build_failure_summary', 'search_build_logs', 'compare_builds', 'get_token_info',
  'restart_build', 'restart_job', 'rerun_job', 'retry_failed_jobs', 'abort_build', 'abort_job', 'get_my_access_log']

const { app, database, endpoint, session } = await startMcpApp(t, { limits: { default: 10_000, log: 10_000, artifact: 10_000, trigger: 10_000 } })
const demoSession = await session(FIXTURE.users.demo)

/** JSON round trip: what the schemas describe, without TypeBox's own (non-enumerable) markers. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value))

/** Success: no isError, structuredContent valid against the operation's own schema, and the same JSON as text. */
function answered (t: Test, result: CallResult, schema: TSchema, what: string): Record<string, unknown> {
  t.notOk(result.isError, `${what}: not an error (${textOf(result).slice(0, 200)})`)
  const structured = result.structuredContent ?? {}
  t.same([...Value.Errors(schema, structured)].slice(0, 3), [], `${what}: structuredContent matches the output schema`)
  t.same(JSON.parse(textOf(result).split('\n')[0] ?? 'null'), structured, `${what}: the text block is the same JSON`)
  return structured
}

/** A refusal an agent can act on: isError, and the text names what was refused. */
function refused (t: Test, result: CallResult, pattern: RegExp, what: string): void {
  t.equal(result.isError, true, `${what}: isError`)
  t.match(textOf(result), pattern, `${what}: says what was refused`)
  t.equal(result.structuredContent, undefined, `${what}: no structuredContent`)
}

const connectors: Array<[string, (t: Test, token: string) => Promise<McpSession>, string]> = [
  ['v2 legacy', async (t, token) => await connectV2(t, endpoint, token, 'legacy'), '2025-11-25'],
  ['v2 modern', async (t, token) => await connectV2(t, endpoint, token, 'modern'), '2026-07-28'],
  ['v1', async (t, token) => await connectV1(t, endpoint, token), '2025-11-25']
]

t.test('the catalogue: every operation is a tool, in SPEC order', async t => {
  t.same(TOOLS.map(tool => tool.name), TOOL_NAMES)
  t.same(OPERATIONS.map(op => op.name), TOOL_NAMES, 'OPERATIONS is the list the tools come from')
})

for (const [label, connect, version] of connectors) {
  t.test(label, async t => {
    // Tokens of their own, so this client's audit rows are told apart by token_id.
    const full = await mintToken(app, demoSession, { allow_trigger: true, name: `${label} full` })
    const scoped = await mintToken(app, demoSession, { enabled_projects: { [P.upload]: null }, name: `${label} scoped` })
    const client = await connect(t, full.token)
    const narrow = await connect(t, scoped.token)
    t.equal(client.protocolVersion, version, `${label} speaks ${version}`)
    const calls = new Map<string, number>()
    const call = async (c: McpSession, name: string, args?: Record<string, unknown>): Promise<CallResult> => {
      calls.set(`${c === client ? 'full' : 'scoped'}:${name}`, (calls.get(`${c === client ? 'full' : 'scoped'}:${name}`) ?? 0) + 1)
      return await c.call(name, args)
    }

    await t.test(`tools/list: all ${TOOL_NAMES.length} with titles, descriptions, schemas and all four annotations`, async t => {
      const listed = await client.list()
      t.same(listed.map(tool => tool.name), TOOL_NAMES)
      for (const tool of listed) {
        const ours = TOOLS.find(candidate => candidate.name === tool.name)
        if (ours === undefined) { t.fail(`unexpected tool ${tool.name}`); continue }
        t.equal(tool.title, ours.title, `${tool.name}: title`)
        t.ok((tool.description ?? '').length > 40, `${tool.name}: a description written for a model`)
        t.match(tool.description, /budget/, `${tool.name}: the description names its budget`)
        t.same(tool.inputSchema, plain(ours.inputSchema), `${tool.name}: input schema from the TypeBox schemas`)
        t.same(tool.outputSchema, plain(ours.outputSchema), `${tool.name}: output schema from the TypeBox schemas`)
        t.equal(tool.inputSchema['additionalProperties'], false, `${tool.name}: unknown arguments are refused`)
        const annotations = tool.annotations ?? {}
        for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint']) {
          t.type(annotations[hint], 'boolean', `${tool.name}: ${hint} set explicitly`)
        }
        t.equal(annotations['readOnlyHint'], !ours.trigger, `${tool.name}: readOnlyHint (false only for what changes builds)`)
        t.equal(annotations['openWorldHint'], false, `${tool.name}: openWorldHint`)
        t.equal(annotations['destructiveHint'], tool.name.startsWith('abort_'), `${tool.name}: destructiveHint (true only for aborts)`)
      }
      const builds = listed.find(tool => tool.name === 'list_builds')
      t.same(builds?.inputSchema['required'], ['projectId'], 'limit has a default, so only projectId is required')
    })

    await t.test('every tool on the fixture', async t => {
      const projects = answered(t, await call(client, 'list_projects'), listProjectsOp.output, 'list_projects')
      t.ok(Value.Check(listProjectsOp.output, projects) && projects.items.some(p => p.id === P.github), 'the github project is listed')
      t.notOk(Value.Check(listProjectsOp.output, projects) && projects.items.some(p => p.id === P.public), 'a project the owner does not collaborate on is not')

      const project = answered(t, await call(client, 'get_project', { projectId: P.github }), getProjectOp.output, 'get_project')
      t.match(project, { id: P.github, type: 'github', role: 'Owner' })

      const builds = answered(t, await call(client, 'list_builds', { projectId: P.github, limit: 3 }), listBuildsOp.output, 'list_builds')
      t.ok(Value.Check(listBuildsOp.output, builds) && builds.items.length === 3 && builds.next_cursor !== null, 'a page of 3 with a cursor')
      const failed = answered(t, await call(client, 'list_builds', { projectId: P.github, status: 'failure', branch: 'feature/login' }), listBuildsOp.output, 'list_builds filtered')
      t.ok(Value.Check(listBuildsOp.output, failed) && failed.items.every(b => b.status === 'failure' && b.branch === 'feature/login') && failed.items.length > 0, 'filters apply')

      const build = answered(t, await call(client, 'get_build', { projectId: P.github, buildId: B.b1 }), getBuildOp.output, 'get_build')
      t.ok(Value.Check(getBuildOp.output, build) && build.jobs.some(j => j.id === J.compile), 'the build with its jobs')

      const jobs = answered(t, await call(client, 'list_jobs', { projectId: P.github, buildId: B.b1 }), listJobsOp.output, 'list_jobs')
      t.ok(Value.Check(listJobsOp.output, jobs) && jobs.items.some(j => j.id === J.compile), 'the build\'s jobs')

      const job = answered(t, await call(client, 'get_job', { projectId: P.github, jobId: J.compile }), getJobOp.output, 'get_job')
      t.match(job, { id: J.compile, state: 'finished' })

      const runs = answered(t, await call(client, 'list_test_runs', { projectId: P.github, jobId: J.compile, state: 'failure' }), listTestRunsOp.output, 'list_test_runs')
      t.ok(Value.Check(listTestRunsOp.output, runs) && runs.items.length > 0 && runs.items.every(r => r.state === 'failure'), 'failed tests only')

      const log = answered(t, await call(client, 'get_job_log', { projectId: P.github, jobId: J.compile }), getJobLogOp.output, 'get_job_log')
      t.match(log, { log: COMPILE_LOG, offset: 0, truncated: false })
      const tail = answered(t, await call(client, 'get_job_log', { projectId: P.github, jobId: J.compile, tail: 1 }), getJobLogOp.output, 'get_job_log tail')
      t.match(tail, { log: '10:00:03|Build finished\n', truncated: true })

      const artifacts = answered(t, await call(client, 'list_artifacts', { projectId: P.github, jobId: J.compile }), listArtifactsOp.output, 'list_artifacts')
      t.ok(Value.Check(listArtifactsOp.output, artifacts) && artifacts.items.map(a => a.filename).includes('report.txt'), 'the job\'s files')

      const textResult = await call(client, 'get_artifact', { projectId: P.github, jobId: J.compile, filename: 'report.txt' })
      const text = answered(t, textResult, ArtifactContent, 'get_artifact (text)')
      t.match(text, { filename: 'report.txt', text: ARTIFACT_TEXT, content_type: /^text\/plain/ })
      t.same(linksOf(textResult), [], 'a small text file is inline, not linked')

      const binaryResult = await call(client, 'get_artifact', { projectId: P.github, jobId: J.compile, filename: 'coverage.bin' })
      const binary = answered(t, binaryResult, ArtifactContent, 'get_artifact (binary)')
      t.notOk('text' in binary, 'a binary file is not inline')
      const [link] = linksOf(binaryResult)
      t.equal(link?.uri, binary['download_url'], 'a resource_link to the download URL')
      t.equal(link?.uri, `${endpoint}/projects/${P.github}/jobs/${J.compile}/artifacts/download?filename=coverage.bin`, 'absolute, with the prefix')
      const download = await fetch(link?.uri ?? '', { headers: { authorization: `Bearer ${full.token}` } })
      t.equal(download.status, 200, 'the link works with the same token')
      t.same(Buffer.from(await download.arrayBuffer()), ARTIFACT_BINARY, 'and serves the bytes')

      const triggered = answered(t, await call(client, 'trigger_build', { projectId: P.github, branch: 'main' }), triggerBuildOp.output, 'trigger_build')
      const buildId = Value.Check(triggerBuildOp.output, triggered) ? triggered.build.id : ''
      const row = await database.db.selectFrom('build').select(['id', 'source']).where('id', '=', buildId).executeTakeFirst()
      t.same(row, { id: buildId, source: 'mcp' }, 'the build exists, started by mcp')
    })

    await t.test('refusals are tool results an agent can act on', async t => {
      refused(t, await call(narrow, 'list_builds', { projectId: P.github }), new RegExp(`project ${P.github}.*MCP_PROJECT_FORBIDDEN`), 'project outside the token\'s scope')
      refused(t, await call(client, 'get_project', { projectId: P.public }), new RegExp(`project ${P.public}.*MCP_PROJECT_FORBIDDEN`), 'public project the owner does not collaborate on')
      refused(t, await call(narrow, 'trigger_build', { projectId: P.upload }), new RegExp(`trigger builds of project ${P.upload}.*MCP_TRIGGER_FORBIDDEN`), 'trigger without allow_trigger')
      refused(t, await call(client, 'get_build', { projectId: P.github, buildId: '00000000-0000-4000-8000-00000000dead' }), /MCP_NOT_FOUND/, 'no such build')
      refused(t, await call(client, 'get_artifact', { projectId: P.github, jobId: J.compile, filename: 'nope.txt' }), /no artifact named "nope.txt"/, 'no such artifact')
      refused(t, await call(client, 'list_builds', { projectId: 'not-a-uuid' }), /invalid arguments for list_builds: projectId must match format "uuid"/, 'a malformed id')
      refused(t, await call(client, 'list_builds', { projectId: P.github, limit: 1000 }), /limit must be <= 100/, 'a limit out of range')
      refused(t, await call(client, 'list_builds', { projectId: P.github, page_size: 5 }), /unknown argument\(s\): page_size/, 'an unknown argument')
      refused(t, await call(client, 'list_builds', {}), /projectId/, 'a missing required argument')
      refused(t, await call(client, 'list_builds', { projectId: P.github, status: 'broken' }), /status must be one of running, failure/, 'a value outside its enumeration')
      // Like a query string over REST, a number sent as text is taken.
      answered(t, await call(client, 'list_builds', { projectId: P.github, limit: '2' }), listBuildsOp.output, 'limit "2"')
    })

    await t.test('an unknown tool is a JSON-RPC error (-32602), not a tool result', async t => {
      await t.rejects(client.call('delete_everything', {}), { code: -32602 })
    })

    await t.test('one audit row per tool call: via mcp, action = the tool, the status its REST twin would have', async t => {
      const expected = [...calls.values()].reduce((a, b) => a + b, 0)
      const toolRows = await rowsOnce(app, database.db, r => r.via === 'mcp' && r.action !== 'mcp_request' && (r.token_id === full.token_id || r.token_id === scoped.token_id), expected)
      const counted = new Map<string, number>()
      for (const r of toolRows) {
        const key = `${r.token_id === full.token_id ? 'full' : 'scoped'}:${r.action}`
        counted.set(key, (counted.get(key) ?? 0) + 1)
      }
      t.same(Object.fromEntries([...counted].sort()), Object.fromEntries([...calls].sort()), 'exactly one row per tool call, named after the tool')
      t.ok(toolRows.every(r => r.via === 'mcp' && r.user_id === FIXTURE.users.demo && r.method === 'POST' && r.path === '/api/v1/mcp'), 'via, user, method and path')
      const byStatus = (action: string, status: number) => toolRows.filter(r => r.action === action && r.status_code === status)
      t.ok(byStatus('trigger_build', 201).length === 1 && byStatus('trigger_build', 201)[0]?.project_id === P.github, 'a build started: 201 with the project')
      t.match(byStatus('trigger_build', 403)[0], { outcome: 'forbidden', project_id: P.upload, error: /may not trigger/ }, 'trigger refused: 403')
      t.match(byStatus('list_builds', 403)[0], { outcome: 'forbidden', project_id: P.github, token_id: scoped.token_id }, 'project refused: 403')
      t.match(byStatus('get_build', 404)[0], { outcome: 'not_found' }, 'no such build: 404')
      t.equal(byStatus('list_builds', 400).length, 5, 'five invalid calls of list_builds: 400')
      t.ok(byStatus('list_builds', 400).every(r => r.outcome === 'bad_request' && r.project_id === null), 'invalid arguments: no project id (as over REST, validation comes first)')
      t.ok(byStatus('get_job_log', 200).length === 2 && toolRows.filter(r => r.status_code === 200).every(r => r.outcome === 'success'), 'successes')
      const unknown = await rowsOnce(app, database.db, r => r.token_id === full.token_id && r.action === 'mcp_request' && r.status_code === 400, 1)
      t.match(unknown, [{ outcome: 'bad_request', error: 'unknown tool "delete_everything"' }], 'the unknown tool: one row of its own')
    })
  })
}
