// A second, independent client: raw JSON-RPC over fetch written from the transport spec's text (not the SDK that serves the endpoint), in both protocol eras.
import t, { type Test } from 'tap'
import { Value } from 'typebox/value'
import { FIXTURE } from '../../db/seed.js'
import { listBuildsOp, listProjectsOp, OPERATIONS } from '../../core/operations/index.js'
import { mintToken, post, startMcpApp, type HttpAnswer } from '../helpers/mcp.js'

const { projects: P } = FIXTURE
const LEGACY = '2025-11-25'
const MODERN = '2026-07-28'
/** What a token without allow_trigger is shown (SPEC §14): every tool but those that change builds. */
const TOOL_COUNT = OPERATIONS.filter(op => !op.trigger).length

// TRUST_PROXY: the artifact links below are built from X-Forwarded-Proto/Host when the proxy is trusted.
const { app, endpoint, session } = await startMcpApp(t, { env: { TRUST_PROXY: 'true' } })
const { token } = await mintToken(app, await session(FIXTURE.users.demo))
const auth = { authorization: `Bearer ${token}` }

/** The one JSON-RPC response of an answer (JSON body or the SSE event carrying the response with this id). */
function response (t: Test, answer: HttpAnswer, id: number): Record<string, unknown> {
  const found = answer.messages.find((m): m is Record<string, unknown> => typeof m === 'object' && m !== null && 'id' in m && m.id === id)
  t.ok(found !== undefined, `a JSON-RPC response with id ${id} (HTTP ${answer.status}: ${answer.body.slice(0, 200)})`)
  t.equal(found?.['jsonrpc'], '2.0', 'jsonrpc 2.0')
  return found ?? {}
}

/** The `result` object of a response (the test fails when the response is an error). */
function result (t: Test, answer: HttpAnswer, id: number): Record<string, unknown> {
  const r = response(t, answer, id)['result']
  t.ok(typeof r === 'object' && r !== null, 'a result, not an error')
  return typeof r === 'object' && r !== null ? { ...r } : {}
}

/** The `error` object of a response. */
function error (t: Test, answer: HttpAnswer, id: number): { code?: unknown, message?: unknown } {
  const e = response(t, answer, id)['error']
  t.ok(typeof e === 'object' && e !== null, 'a JSON-RPC error')
  return typeof e === 'object' && e !== null ? { ...e } : {}
}

const toolsOf = (r: Record<string, unknown>): Array<Record<string, unknown>> =>
  Array.isArray(r['tools']) ? r['tools'].filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : []

t.test('2025-11-25: initialize, notifications/initialized, tools/list, tools/call (MCP-Protocol-Version header after the handshake)', async t => {
  const init = await post(endpoint, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: 'raw-fetch', version: '1.0.0' } }
  }, auth)
  t.equal(init.status, 200)
  t.match(init.headers.get('content-type'), /^(application\/json|text\/event-stream)/, 'JSON or an SSE stream, as the spec allows')
  t.equal(init.headers.get('mcp-session-id'), null, 'stateless: no session id')
  const initialized = result(t, init, 1)
  t.equal(initialized['protocolVersion'], LEGACY, 'the version we asked for')
  t.match(initialized, { serverInfo: { name: 'infrabox-mcp-gateway' }, capabilities: { tools: { listChanged: false } }, instructions: /InfraBox/ })

  const v = { ...auth, 'mcp-protocol-version': LEGACY }
  const note = await post(endpoint, { jsonrpc: '2.0', method: 'notifications/initialized' }, v)
  t.equal(note.status, 202, 'a notification: 202 Accepted')
  t.equal(note.body, '', 'with no body')

  const list = await post(endpoint, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }, v)
  const tools = toolsOf(result(t, list, 2))
  t.equal(tools.length, TOOL_COUNT, `${TOOL_COUNT} tools`)
  t.ok(tools.every(tool => typeof tool['inputSchema'] === 'object' && typeof tool['outputSchema'] === 'object'), 'each with input and output schemas')

  const call = await post(endpoint, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list_builds', arguments: { projectId: P.github, limit: 2 } } }, v)
  const called = result(t, call, 3)
  t.equal(called['isError'], undefined, 'not an error')
  t.ok(Value.Check(listBuildsOp.output, called['structuredContent']), 'structuredContent matches the schema')
  t.match(called['content'], [{ type: 'text' }])

  t.test('refusals', async t => {
    const nameless = await post(endpoint, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { arguments: {} } }, v)
    t.equal(error(t, nameless, 4).code, -32602, 'a call without a name: JSON-RPC Invalid params')
    const unknown = await post(endpoint, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'drop_database', arguments: {} } }, v)
    t.match(error(t, unknown, 5), { code: -32602, message: /drop_database/ }, 'an unknown tool: JSON-RPC Invalid params naming it')
    const bad = await post(endpoint, { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'list_builds', arguments: { projectId: 42 } } }, v)
    t.match(result(t, bad, 6), { isError: true, content: [{ type: 'text', text: /invalid arguments for list_builds/ }] }, 'invalid arguments: a tool error the model can correct')
    const accept = await post(endpoint, { jsonrpc: '2.0', id: 7, method: 'tools/list' }, { ...v, accept: 'application/json' })
    t.equal(accept.status, 406, 'an Accept without text/event-stream is refused, as the 2025-11-25 transport requires')
  })
})

t.test('2026-07-28: no handshake; every request carries the _meta envelope and the Mcp-Method/Mcp-Name headers', async t => {
  const envelope = {
    'io.modelcontextprotocol/protocolVersion': MODERN,
    'io.modelcontextprotocol/clientInfo': { name: 'raw-fetch', version: '1.0.0' },
    'io.modelcontextprotocol/clientCapabilities': {}
  }
  const modern = async (id: number, method: string, params: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<HttpAnswer> => {
    const name: Record<string, string> = typeof params['name'] === 'string' ? { 'mcp-name': params['name'] } : {}
    return await post(endpoint, { jsonrpc: '2.0', id, method, params: { ...params, _meta: envelope } },
      { ...auth, 'mcp-protocol-version': MODERN, 'mcp-method': method, ...name, ...headers })
  }

  const discover = await modern(1, 'server/discover')
  t.equal(discover.status, 200)
  const discovered = result(t, discover, 1)
  t.ok(Array.isArray(discovered['supportedVersions']) && discovered['supportedVersions'].includes(MODERN), `server/discover lists ${MODERN}`)
  t.match(discovered, { capabilities: { tools: { listChanged: false } }, _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'infrabox-mcp-gateway' } } })

  const list = await modern(2, 'tools/list')
  const tools = toolsOf(result(t, list, 2))
  t.equal(tools.length, TOOL_COUNT, `${TOOL_COUNT} tools`)
  const annotated = tools.every(tool => {
    const a = tool['annotations']
    return typeof a === 'object' && a !== null && ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'].every(k => k in a)
  })
  t.ok(annotated, 'every tool has all four annotations')

  const call = await modern(3, 'tools/call', { name: 'list_projects', arguments: {} })
  const called = result(t, call, 3)
  t.ok(Value.Check(listProjectsOp.output, called['structuredContent']), 'structuredContent matches the schema')
  const [block] = Array.isArray(called['content']) ? called['content'] : []
  t.same(JSON.parse(typeof block === 'object' && block !== null && 'text' in block && typeof block.text === 'string' ? block.text : 'null'), called['structuredContent'], 'the text is the same JSON')

  const forbidden = await modern(4, 'tools/call', { name: 'get_project', arguments: { projectId: P.public } })
  t.match(result(t, forbidden, 4), { isError: true, content: [{ text: new RegExp(P.public) }] }, 'a refused project: isError naming it')

  t.test('refusals', async t => {
    const nameless = await modern(5, 'tools/call', { arguments: {} })
    t.match(error(t, nameless, 5), { code: -32602, message: /name/ }, 'a call without a name: JSON-RPC Invalid params')
    const unknown = await modern(6, 'tools/call', { name: 'drop_database', arguments: {} })
    t.match(error(t, unknown, 6), { code: -32602, message: /drop_database/ }, 'an unknown tool: JSON-RPC Invalid params')
    const mismatch = await modern(7, 'tools/call', { name: 'list_projects', arguments: {} }, { 'mcp-name': 'get_project' })
    t.equal(mismatch.status, 400, 'Mcp-Name that does not match the body: 400')
    t.equal(error(t, mismatch, 7).code, -32020, 'HeaderMismatch')
    const missing = await post(endpoint, { jsonrpc: '2.0', id: 8, method: 'tools/list', params: { _meta: envelope } }, { ...auth, 'mcp-protocol-version': MODERN })
    t.equal(missing.status, 400, 'no Mcp-Method header: 400')
    const future = await post(endpoint, { jsonrpc: '2.0', id: 9, method: 'tools/list', params: { _meta: { ...envelope, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } } },
      { ...auth, 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'tools/list' })
    t.equal(future.status, 400, 'an unknown protocol version: 400')
    t.match(error(t, future, 9), { code: -32022, data: { supported: [MODERN] } }, 'UnsupportedProtocolVersionError listing what is supported')
  })
})

t.test('get_artifact links honour a trusted proxy\'s X-Forwarded-Proto and X-Forwarded-Host', async t => {
  const call = await post(endpoint, {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: 'get_artifact', arguments: { projectId: P.github, jobId: FIXTURE.jobs.compile, filename: 'coverage.bin' } }
  }, { ...auth, 'mcp-protocol-version': LEGACY, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'ci.example.com' })
  const expected = `https://ci.example.com/api/v1/mcp/projects/${P.github}/jobs/${FIXTURE.jobs.compile}/artifacts/download?filename=coverage.bin`
  t.match(result(t, call, 1), {
    structuredContent: { download_url: expected, content_type: 'application/octet-stream', size: 512 },
    content: [{ type: 'text' }, { type: 'resource_link', uri: expected, name: 'coverage.bin', mimeType: 'application/octet-stream' }]
  })
})
