// The endpoint's direct path for 2025-era tools/call (mcp/endpoint.ts directCall): the same answer, row and
// budget as the SDK gives the same call, and every message it does not own still reaches the SDK.
import t from 'tap'
import { FIXTURE } from '../../db/seed.js'
import { classifyInboundRequest, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/server'
import { isPlainLegacyCall } from '../../mcp/endpoint.js'
import { mcpRows, mintToken, post, startMcpApp } from '../helpers/mcp.js'

const { app, endpoint, database, session } = await startMcpApp(t)
const { token } = await mintToken(app, await session(FIXTURE.users.demo), { enabled_projects: { [FIXTURE.projects.github]: null } })
const auth = { authorization: `Bearer ${token}`, 'mcp-protocol-version': '2025-11-25' }

/** The call as the direct path takes it, and the same call with an extra params key (which only the SDK serves). */
async function bothWays (name: string, args: Record<string, unknown>): Promise<{ direct: Awaited<ReturnType<typeof post>>, sdk: Awaited<ReturnType<typeof post>> }> {
  const direct = await post(endpoint, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }, auth)
  const sdk = await post(endpoint, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args, via: 'sdk' } }, auth)
  return { direct, sdk }
}

/** The result of a tools/call answer (the test reads the fields it checks). */
interface CallResult { structuredContent?: { commit?: { message: string | null } }, content: Array<{ type: string, text?: string }> }
const resultOf = (answer: { messages: unknown[] }): CallResult => (answer.messages[0] as { result: CallResult }).result

const cases: Array<[string, string, Record<string, unknown>]> = [
  ['a success', 'list_builds', { projectId: FIXTURE.projects.github, limit: 2 }],
  ['a detail', 'get_build', { projectId: FIXTURE.projects.github, buildId: FIXTURE.builds.b1 }],
  ['invalid arguments', 'list_builds', { projectId: 'not-a-uuid' }],
  ['a project out of the token\'s scope', 'list_builds', { projectId: FIXTURE.projects.gerrit }],
  ['a trigger the token may not make', 'trigger_build', { projectId: FIXTURE.projects.github, branch: 'main' }]
]

for (const [what, name, args] of cases) {
  t.test(`${what}: ${name} answers the same on both paths`, async t => {
    const { direct, sdk } = await bothWays(name, args)
    t.equal(direct.status, 200)
    t.equal(sdk.status, 200)
    t.equal(direct.headers.get('content-type'), sdk.headers.get('content-type'), 'framed as the SDK frames it')
    t.equal(direct.headers.get('cache-control'), sdk.headers.get('cache-control'))
    t.same(direct.messages, sdk.messages, 'the same JSON-RPC message')
    t.equal(direct.messages.length, 1)
  })
}

t.test('the direct answer is JSON.stringify of its message, byte for byte, its text block that of the structured content', async t => {
  for (const [, name, args] of cases) {
    const { direct } = await bothWays(name, args)
    t.equal(direct.body, `event: message\ndata: ${JSON.stringify(direct.messages[0])}\n\n`, name)
    const result = resultOf(direct)
    if (result.structuredContent !== undefined) t.equal(result.content[0]?.text, JSON.stringify(result.structuredContent), `${name}: text twin`)
  }
})

t.test('CI text with escapes and controls: cleaned in both twins, the same on both paths', async t => {
  const dirty = '\u001b[31mred\u001b[0m fix\r\n\u202eevil\u0007 "quoted" \\r done'
  const clean = 'red fix\nevil "quoted" \\r done'
  await database.db.updateTable('commit').set({ message: dirty })
    .where('id', '=', FIXTURE.commits.main1).where('project_id', '=', FIXTURE.projects.github).execute()
  const { direct, sdk } = await bothWays('get_build', { projectId: FIXTURE.projects.github, buildId: FIXTURE.builds.b1 })
  t.same(direct.messages, sdk.messages, 'the same JSON-RPC message')
  const result = resultOf(direct)
  t.equal(result.structuredContent?.commit?.message, clean)
  t.equal(result.content[0]?.text, JSON.stringify(result.structuredContent), 'the text twin is the cleaned structured content')
  t.equal(direct.body, `event: message\ndata: ${JSON.stringify(direct.messages[0])}\n\n`)
})

t.test('every call leaves one row named after its tool, the same on both paths', async t => {
  const rows = (await mcpRows(app, database.db)).filter(r => r.action !== 'mcp_request')
  t.equal(rows.length, cases.length * 4 + 2, 'the cases (twice: compared, then byte-checked) and the CI-text call')
  for (let i = 0; i < rows.length; i += 2) {
    const [direct, sdk] = [rows[i], rows[i + 1]]
    t.same([direct?.action, direct?.outcome, direct?.status_code, direct?.project_id], [sdk?.action, sdk?.outcome, sdk?.status_code, sdk?.project_id])
  }
})

t.test('what the direct path does not own still reaches the SDK and its refusals', async t => {
  const call = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'list_projects', arguments: {} } }
  const noSse = await post(endpoint, call, { ...auth, accept: 'application/json' })
  t.equal(noSse.status, 406, 'Accept without text/event-stream: the SDK\'s 406')
  const oldVersion = await post(endpoint, call, { ...auth, 'mcp-protocol-version': '1999-01-01' })
  t.equal(oldVersion.status, 400, 'an unsupported protocol version: the SDK\'s 400')
  const noId = await post(endpoint, { jsonrpc: '2.0', method: 'tools/call', params: { name: 'list_projects', arguments: {} } }, auth)
  t.equal(noId.status, 202, 'a notification (no id) is accepted without an answer, as the SDK does')
  const badArgs = await post(endpoint, { ...call, params: { name: 'list_projects', arguments: 'x' } }, auth)
  t.match(badArgs.messages[0], { error: { code: Number } }, 'arguments that are not an object: the SDK\'s JSON-RPC error')
})

t.test('the shortcut past the SDK\'s era classifier takes only calls the classifier judges legacy', async t => {
  const call = { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list_builds', arguments: { projectId: FIXTURE.projects.github } } }
  const bodies: Array<Record<string, unknown>> = [
    call,
    { ...call, id: 'abc' },
    { ...call, id: 1.5 },
    { ...call, id: null },
    { ...call, id: 2 ** 60 },
    { ...call, params: { name: 'list_builds' } },
    { ...call, params: { ...call.params, _meta: { progressToken: 1 } } },
    { ...call, params: { ...call.params, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } },
    { ...call, params: { name: 42, arguments: {} } },
    { ...call, method: 'initialize' },
    { ...call, result: {} },
    { ...call, error: { code: 1, message: 'x' } },
    { ...call, jsonrpc: '1.0' },
    { ...call, extra: true }
  ]
  const versions = [undefined, ...SUPPORTED_PROTOCOL_VERSIONS, '2099-01-01', ' 2025-11-25']
  let taken = 0
  for (const body of bodies) {
    for (const version of versions) {
      for (const [methodHeader, nameHeader] of [[undefined, undefined], ['tools/call', undefined], [undefined, 'list_builds']]) {
        const params = body['params'] as Record<string, unknown>
        if (!isPlainLegacyCall(body, params, version, methodHeader, nameHeader)) continue
        taken++
        const era = classifyInboundRequest({ httpMethod: 'POST', protocolVersionHeader: version, mcpMethodHeader: methodHeader, mcpNameHeader: nameHeader, body })
        t.equal(era.kind, 'legacy', `${JSON.stringify(body)} with version ${String(version)}`)
      }
    }
  }
  t.ok(isPlainLegacyCall(call, call.params, '2025-11-25', undefined, undefined), 'a plain call under a 2025 version header takes the shortcut')
  t.ok(isPlainLegacyCall(call, call.params, undefined, undefined, undefined), 'and one without the header')
  t.notOk(isPlainLegacyCall(call, call.params, '2026-07-28', undefined, undefined), 'a 2026-era header goes to the classifier')
  t.ok(taken >= 6, `${taken} combinations took the shortcut`)
})
