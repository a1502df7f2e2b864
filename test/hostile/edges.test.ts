// SPEC §13.12 and §7 from outside: links on PUBLIC_BASE_URL whatever the Host, CORS preflight for allowed origins,
// HEAD on a download without reading the object, and OAuth probes carrying a token while OAuth is off.
import t from 'tap'
import { FIXTURE } from '../../db/seed.js'
import { API, bearer } from '../helpers/chain.js'
import { mintToken, post, startMcpApp } from '../helpers/mcp.js'
import { LogCapture } from '../helpers/faults.js'
import { auditSettled } from '../helpers/app.js'

const { projects: P, jobs: J, users: U } = FIXTURE

t.test('§13.12: artifact links use PUBLIC_BASE_URL, not the request\'s Host', async t => {
  const { app, endpoint, session } = await startMcpApp(t, { env: { PUBLIC_BASE_URL: 'https://ci.example.com' } })
  const { token } = await mintToken(app, await session(U.demo))
  const answer = await post(endpoint, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_artifact', arguments: { projectId: P.github, jobId: J.compile, filename: 'coverage.bin' } } },
    { ...bearer(token), 'mcp-protocol-version': '2025-11-25', host: 'evil.example', 'x-forwarded-host': 'evil.example' })
  const content = (answer.messages[0] as { result?: { content?: Array<{ type: string, uri?: string }> } } | undefined)?.result?.content ?? []
  const link = content.find(c => c.type === 'resource_link')
  t.equal(link?.uri, `https://ci.example.com${API}/projects/${P.github}/jobs/${J.compile}/artifacts/download?filename=coverage.bin`, 'the link is on the public base URL')
})

t.test('§13.12: CORS on the MCP endpoint for MCP_ALLOWED_ORIGINS; others refused', async t => {
  const page = 'https://agent.example'
  const { app, endpoint, session } = await startMcpApp(t, { env: { MCP_ALLOWED_ORIGINS: page } })
  const { token } = await mintToken(app, await session(U.demo))
  const preflight = await fetch(endpoint, { method: 'OPTIONS', headers: { origin: page, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, mcp-protocol-version' } })
  t.equal(preflight.status, 204, 'preflight of an allowed origin: 204')
  t.equal(preflight.headers.get('access-control-allow-origin'), page, 'Access-Control-Allow-Origin')
  t.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/, 'POST allowed')
  t.match(preflight.headers.get('access-control-allow-headers') ?? '', /authorization/, 'Authorization allowed')
  t.match(preflight.headers.get('access-control-allow-headers') ?? '', /mcp-protocol-version/, 'MCP-Protocol-Version allowed')
  const foreign = await fetch(endpoint, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  t.equal(foreign.status, 403, 'preflight of another origin: 403')
  t.equal(foreign.headers.get('access-control-allow-origin'), null, 'and no CORS grant')
  const unauthorized = await post(endpoint, { jsonrpc: '2.0', id: 1, method: 'ping' }, { origin: page })
  t.equal(unauthorized.status, 401, 'no token: 401')
  t.equal(unauthorized.headers.get('access-control-allow-origin'), page, 'the 401 is readable by the page')
  t.match(unauthorized.headers.get('access-control-expose-headers') ?? '', /www-authenticate/, 'WWW-Authenticate exposed')
  const ok = await post(endpoint, { jsonrpc: '2.0', id: 2, method: 'ping' }, { ...bearer(token), origin: page, 'mcp-protocol-version': '2025-11-25' })
  t.equal(ok.status, 200, 'with a token: 200')
  t.match(ok.headers.get('access-control-expose-headers') ?? '', /ratelimit/, 'rate-limit headers exposed')
})

t.test('§13.12: the audit row\'s request_id is the gateway\'s own; a client\'s X-Request-Id goes to details', async t => {
  const { app, endpoint, session, database } = await startMcpApp(t)
  const { token, token_id: tokenId } = await mintToken(app, await session(U.demo))
  const rest = async (requestId: string) => await app.inject({ url: `${API}/projects/${P.github}/builds`, headers: { ...bearer(token), 'x-request-id': requestId } })
  // two requests claiming one id (a client replaying, or choosing another's), one hostile id, one MCP call
  const first = await rest('agent-run-7')
  const second = await rest('agent-run-7')
  const hostile = await rest("x'); DROP TABLE mcp_access_log; --")
  const mcp = await post(endpoint, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_projects', arguments: {} } },
    { ...bearer(token), 'mcp-protocol-version': '2025-11-25', 'x-request-id': 'agent-run-8' })
  t.same([first.statusCode, second.statusCode, hostile.statusCode, mcp.status], [200, 200, 200, 200], 'all answered')
  const given = [first, second, hostile].map(r => String(r.headers['x-request-id'])).concat(mcp.headers.get('x-request-id') ?? '')
  t.ok(given.every(id => /^[0-9a-f-]{36}$/.test(id)), `each answer names the gateway's id (${given.join(', ')})`)
  t.equal(new Set(given).size, 4, 'four requests, four ids, whatever the client sent')
  await auditSettled(app)
  const rows = await database.db.selectFrom('mcp_access_log').select(['request_id', 'details'])
    .where('token_id', '=', tokenId).where('action', '!=', 'create_mcp_token').orderBy('id').execute()
  t.same(rows.map(r => r.request_id), given, 'the rows carry the ids the answers named, in order')
  const client = rows.map(r => (r.details as { client_request_id?: string } | null)?.client_request_id ?? null)
  t.same(client, ['agent-run-7', 'agent-run-7', null, 'agent-run-8'], 'the client\'s well-formed id is kept in details; the hostile one nowhere')
  t.notOk(JSON.stringify(rows).includes('DROP'), 'nothing of the hostile id is stored')
})

t.test('§13.12: HEAD on a download answers the headers without opening the object', async t => {
  const { app, session } = await startMcpApp(t)
  const { token } = await mintToken(app, await session(U.demo))
  const url = `${API}/projects/${P.github}/jobs/${J.compile}/artifacts/download?filename=coverage.bin`
  const store = app.mcpGateway.artifacts
  let opened = 0
  const open = store.open.bind(store)
  store.open = async (...args) => { opened++; return await open(...args) }
  const head = await app.inject({ method: 'HEAD', url, headers: bearer(token) })
  t.equal(head.statusCode, 200, 'HEAD 200')
  t.equal(head.body, '', 'no body')
  t.ok(Number(head.headers['content-length']) > 0, `content-length ${String(head.headers['content-length'])}`)
  t.match(String(head.headers['content-disposition']), /coverage\.bin/, 'content-disposition')
  t.equal(opened, 0, 'the object was not opened')
  const get = await app.inject({ method: 'GET', url, headers: bearer(token) })
  t.equal(get.statusCode, 200, 'GET 200')
  t.equal(get.headers['content-length'], head.headers['content-length'], 'the same length as HEAD announced')
  t.equal(opened, 1, 'GET opens it')
  const missing = await app.inject({ method: 'HEAD', url: url.replace('coverage.bin', 'nope.bin'), headers: bearer(token) })
  t.equal(missing.statusCode, 404, 'HEAD of a name not in the job: 404')
})

t.test('§7: OAuth probes while OAuth is off are 404 with a sentence, token or not; logged at info', async t => {
  const logs = new LogCapture()
  const { app, session } = await startMcpApp(t, { env: { LOG_LEVEL: 'info' }, logStream: logs })
  const { token } = await mintToken(app, await session(U.demo))
  const probes: Array<[string, string]> = [
    ['GET', '/.well-known/oauth-protected-resource'],
    ['GET', `/.well-known/oauth-protected-resource${API}`],
    ['GET', '/.well-known/oauth-authorization-server'],
    ['GET', `/.well-known/oauth-authorization-server${API}/oauth`],
    ['GET', '/.well-known/openid-configuration'],
    ['POST', '/register'],
    ['POST', `${API}/register`],
    ['POST', `${API}/oauth/register`],
    ['GET', `${API}/oauth/authorize`]
  ]
  for (const [method, url] of probes) {
    for (const headers of [{}, bearer(token)]) {
      const res = await app.inject({ method: method as 'GET' | 'POST', url, headers, ...(method === 'POST' ? { payload: { redirect_uris: ['http://127.0.0.1/cb'] } } : {}) })
      const what = `${method} ${url} ${'authorization' in headers ? 'with' : 'without'} a token`
      t.equal(res.statusCode, 404, `${what}: 404`)
      t.equal(res.json().code, 'MCP_NOT_FOUND', `${what}: MCP_NOT_FOUND, not a guard refusal`)
      t.match(res.json().message, /ib_mcp_/, `${what}: says to use an ib_mcp_ token`)
    }
  }
  const get = await app.inject({ method: 'GET', url: API, headers: bearer(token) })
  t.equal(get.statusCode, 405, 'GET on the endpoint: 405')
  const lines = logs.lines
  t.ok(lines.some(l => l.level === 30 && /discovery probe|OAuth endpoint probed/.test(String(l.msg))), 'probes are logged at info')
  t.ok(lines.some(l => l.level === 30 && /405/.test(String(l.msg))), 'the GET 405 is logged at info')
})
