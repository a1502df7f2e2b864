// SPEC §7's HTTP rules of the MCP endpoint over a real port: the 401 challenge, 405, OAuth discovery 404s, Origin, one message per POST, one budget with REST, one audit row per request.
import t from 'tap'
import http from 'node:http'
import pg from 'pg'
import { FIXTURE } from '../../db/seed.js'
import { addUser, connectV2, mcpRows, mintToken, MCP_PATH, post, rowsOnce, startMcpApp, textOf } from '../helpers/mcp.js'

const { projects: P } = FIXTURE
const ALLOWED = 'https://agents.example.com'
const MODERN = '2026-07-28'
const LEGACY = '2025-11-25'

// A budget of 3 per minute so the shared-budget test can spend it; every other test uses a user of its own.
const { app, database, endpoint, origin, session } = await startMcpApp(t, {
  limits: { default: 3 },
  env: { MCP_ALLOWED_ORIGINS: `${ALLOWED}, https://Second.Example.com/` }
})
const db = database.db
const newToken = async (opts: { allow_trigger?: boolean } = {}): Promise<{ token: string, token_id: string, userId: string }> => {
  const userId = await addUser(db, [P.github, P.upload])
  return { ...await mintToken(app, await session(userId), opts), userId }
}
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }

t.test('a missing or bad token: HTTP 401 with the plain Bearer challenge and no OAuth hints', async t => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ['no Authorization', {}, 'Bearer realm="infrabox-mcp"'],
    ['an unknown well-formed token', bearer(`ib_mcp_${'0'.repeat(48)}`), 'Bearer realm="infrabox-mcp", error="invalid_token"'],
    ['garbage', bearer('not-a-token'), 'Bearer realm="infrabox-mcp", error="invalid_token"']
  ]
  for (const [what, headers, challenge] of cases) {
    const res = await post(endpoint, initialize, headers)
    t.equal(res.status, 401, `${what}: 401`)
    t.equal(res.headers.get('www-authenticate'), challenge, `${what}: the challenge`)
    t.notMatch(res.headers.get('www-authenticate') ?? '', /resource_metadata|scope=|authorization_uri/, `${what}: no OAuth discovery hint`)
    t.equal(res.headers.get('link'), null, `${what}: no Link header`)
    t.match(JSON.parse(res.body), { statusCode: 401, code: 'MCP_INVALID_TOKEN' }, `${what}: the gateway's error body`)
  }
  const get = await fetch(endpoint)
  t.equal(get.status, 401, 'GET without a token: auth comes first')
  const rows = await rowsOnce(app, db, r => r.outcome === 'unauthorized', 4)
  t.ok(rows.length >= 4, 'the 401s are audited')
  t.ok(rows.some(r => r.token_id === '0'.repeat(16)), 'with the presented token id')
  t.ok(rows.every(r => r.via === 'mcp' && r.action === 'mcp_request'), 'as MCP requests')
})

t.test('GET and DELETE: 405 with Allow: POST (stateless: no stream, no session)', async t => {
  const { token } = await newToken()
  for (const method of ['GET', 'DELETE']) {
    for (const url of [endpoint, `${endpoint}/`]) {
      const res = await fetch(url, { method, headers: { ...bearer(token), accept: 'text/event-stream' } })
      t.equal(res.status, 405, `${method} ${url.slice(origin.length)}: 405`)
      t.equal(res.headers.get('allow'), 'POST', `${method}: Allow: POST`)
      t.match(await res.json(), { statusCode: 405, code: 'MCP_METHOD_NOT_ALLOWED' })
    }
  }
})

t.test('OAuth discovery paths: 404, so no client starts a login flow that cannot succeed', async t => {
  for (const path of [
    '/.well-known/oauth-protected-resource',
    `/.well-known/oauth-protected-resource${MCP_PATH}`,
    '/.well-known/oauth-authorization-server',
    `/.well-known/oauth-authorization-server${MCP_PATH}`
  ]) {
    const res = await fetch(`${origin}${path}`)
    t.equal(res.status, 404, `${path}: 404`)
    t.match(await res.json(), { statusCode: 404, code: 'MCP_NOT_FOUND', message: /not an OAuth server/ }, `${path}: JSON that says why`)
  }
})

t.test('Origin: an allowed one passes, any other is 403 before token work, none is unaffected', async t => {
  const { token } = await newToken()
  const withOrigin = async (value: string | null, headers: Record<string, string> = bearer(token)) =>
    await post(endpoint, initialize, { ...headers, ...(value === null ? {} : { origin: value }) })
  t.equal((await withOrigin(ALLOWED)).status, 200, 'listed origin')
  t.equal((await withOrigin('https://second.example.com')).status, 200, 'listed with other case and a trailing slash')
  t.equal((await withOrigin(null)).status, 200, 'no Origin (agents, CLIs)')
  for (const [what, headers] of [['with a token', bearer(token)], ['without a token', {}]] as const) {
    const res = await withOrigin('https://evil.example', headers)
    t.equal(res.status, 403, `another origin ${what}: 403 (not 401: checked before auth)`)
    t.match(JSON.parse(res.body), { statusCode: 403, code: 'MCP_ORIGIN_FORBIDDEN', message: /evil\.example/ })
  }
  t.equal((await withOrigin('null')).status, 403, 'the opaque origin "null" is not a listed origin')
  const rest = await fetch(`${endpoint}/projects`, { headers: { ...bearer(token), origin: 'https://evil.example' } })
  t.equal(rest.status, 200, 'only the MCP endpoint is Origin-checked (SPEC §7); REST routes are not')
  const refusals = await rowsOnce(app, db, r => r.via === 'mcp' && r.outcome === 'forbidden' && r.action === 'mcp_request', 3)
  t.ok(refusals.length >= 3, 'refused origins are audited as MCP requests')
})

t.test('one JSON-RPC message per POST', async t => {
  const { token } = await newToken()
  const batch = await post(endpoint, [initialize, { ...initialize, id: 2 }], bearer(token))
  t.equal(batch.status, 400, 'a batch: 400')
  t.match(batch.messages, [{ jsonrpc: '2.0', id: null, error: { code: -32600, message: /batches are not supported/ } }])
  const envelope = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} }
  const listen = await post(endpoint, { jsonrpc: '2.0', id: 7, method: 'subscriptions/listen', params: { _meta: envelope } },
    { ...bearer(token), 'mcp-protocol-version': MODERN, 'mcp-method': 'subscriptions/listen' })
  t.equal(listen.status, 404, 'subscriptions/listen: nothing to listen for (the tools never change)')
  t.match(listen.messages, [{ id: 7, error: { code: -32601 } }])
  const big = await post(endpoint, { ...initialize, params: { ...initialize.params, padding: 'x'.repeat(1024 * 1024) } }, bearer(token))
  t.equal(big.status, 413, 'Fastify\'s 1 MiB body limit still applies')
  const text = await post(endpoint, 'not json', { ...bearer(token), 'content-type': 'text/plain' })
  t.equal(text.status, 415, 'a body that is not JSON: 415')
})

t.test('a budget spent across REST and MCP together', async t => {
  const { token, token_id: tokenId } = await newToken()
  const rest = async (): Promise<Response> => await fetch(`${endpoint}/projects/${P.github}/builds`, { headers: bearer(token) })
  t.equal((await rest()).status, 200, 'REST 1 of 3')
  t.equal((await rest()).status, 200, 'REST 2 of 3')
  const client = await connectV2(t, endpoint, token, 'legacy')
  const third = await client.call('list_builds', { projectId: P.github })
  t.notOk(third.isError, 'MCP: the third call of the list_builds budget')
  const refusedRest = await rest()
  t.equal(refusedRest.status, 429, 'REST after it: 429')
  const retryAfter = Number(refusedRest.headers.get('retry-after'))
  t.ok(retryAfter >= 1 && retryAfter <= 60, `with Retry-After (${retryAfter})`)
  const refusedMcp = await client.call('get_build', { projectId: P.github, buildId: FIXTURE.builds.b1 })
  t.equal(refusedMcp.isError, true, 'MCP after it (get_build shares the bucket): isError')
  t.match(textOf(refusedMcp), /rate limit of 3 requests per minute for "list_builds" reached; retry after \d+ s/, 'says after how many seconds to retry')
  const seconds = Number(/retry after (\d+) s/.exec(textOf(refusedMcp))?.[1])
  t.ok(seconds >= 1 && seconds <= 60, `a whole number of seconds (${seconds})`)
  t.notOk((await client.call('list_projects')).isError, 'another bucket is untouched')
  const rows = await rowsOnce(app, db, r => r.token_id === tokenId && ['list_builds', 'get_build', 'list_projects'].includes(r.action), 6)
  t.same(rows.map(r => [r.via, r.action, r.status_code]), [
    ['rest', 'list_builds', 200], ['rest', 'list_builds', 200], ['mcp', 'list_builds', 200],
    ['rest', 'list_builds', 429], ['mcp', 'get_build', 429], ['mcp', 'list_projects', 200]
  ], 'REST and MCP rows side by side, refusals included')
})

t.test('audit: one row per HTTP request; a tool call is named after its tool', async t => {
  const { token, token_id: tokenId } = await newToken()
  const h = { ...bearer(token) }
  const v = { ...h, 'mcp-protocol-version': LEGACY }
  const answers = [
    await post(endpoint, initialize, h),
    await post(endpoint, { jsonrpc: '2.0', method: 'notifications/initialized' }, v),
    await post(endpoint, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, v),
    await post(endpoint, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list_projects', arguments: {} } }, v),
    await post(endpoint, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'nope', arguments: {} } }, v),
    await post(endpoint, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { arguments: {} } }, v),
    await post(endpoint, [{ jsonrpc: '2.0', id: 6, method: 'tools/list' }], v)
  ]
  t.same(answers.map(a => a.status), [200, 202, 200, 200, 200, 200, 400])
  const rows = await rowsOnce(app, db, r => r.token_id === tokenId && r.action !== 'create_mcp_token', answers.length)
  t.equal(rows.length, answers.length, 'as many rows as requests')
  t.equal(new Set(rows.map(r => r.request_id)).size, rows.length, 'one per request id')
  const rpcMethod = (details: unknown): unknown => typeof details === 'object' && details !== null && 'rpc_method' in details ? details.rpc_method : undefined
  t.same(rows.map(r => [r.action, r.status_code, rpcMethod(r.details)]), [
    ['mcp_request', 200, 'initialize'],
    ['mcp_request', 202, 'notifications/initialized'],
    ['mcp_request', 200, 'tools/list'],
    ['list_projects', 200, 'tools/call'],
    ['mcp_request', 400, 'tools/call'],
    ['mcp_request', 400, 'tools/call'],
    ['mcp_request', 400, null]
  ])
  t.ok(rows.every(r => r.via === 'mcp'), 'all via mcp')
  t.match(rows[4], { outcome: 'bad_request', error: 'unknown tool "nope"' })
  t.match(rows[5], { outcome: 'bad_request', error: 'tools/call without a tool name' })
})

t.test('a client that disconnects during a tool call still leaves the call\'s row, once the call has finished', async t => {
  const { token, token_id: tokenId } = await newToken()
  const blocker = new pg.Client({ connectionString: database.url })
  await blocker.connect()
  t.teardown(async () => { await blocker.end().catch(() => {}) })
  await blocker.query('BEGIN')
  await blocker.query('LOCK TABLE build IN ACCESS EXCLUSIVE MODE')
  // A socket of its own (no pooled fetch connection), so hanging up is exactly one closed connection.
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_builds', arguments: { projectId: P.github } } })
  const request = http.request(endpoint, {
    method: 'POST',
    agent: false,
    headers: { ...bearer(token), 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': LEGACY }
  })
  const hungUp = new Promise(resolve => request.once('close', resolve))
  request.on('error', () => { /* ECONNRESET: the hang-up below */ })
  request.end(body)
  // Wait until the tool's query waits on the lock, then hang up.
  for (let i = 0; i < 200; i++) {
    const { rows } = await blocker.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    if ((rows[0]?.n ?? 0) > 0) break
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  request.destroy()
  await hungUp
  await new Promise(resolve => setTimeout(resolve, 100))
  t.same((await mcpRows(app, db)).filter(r => r.token_id === tokenId), [], 'no row while the call is still running')
  await blocker.query('COMMIT')
  const rows = await rowsOnce(app, db, r => r.token_id === tokenId && r.via === 'mcp', 1)
  t.equal(rows.length, 1, 'exactly one row')
  t.match(rows[0], { action: 'list_builds', status_code: 200, outcome: 'success', project_id: P.github, details: { client_closed: true }, error: /closed the connection/ })
})
