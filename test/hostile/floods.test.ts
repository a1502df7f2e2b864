// SPEC §13.3 and §13.4 from outside: MCP protocol traffic spends the mcp_protocol budget, and refusals before a user
// is known are limited per client address, past which they leave one aggregated audit row per address and minute.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { buildApp } from '../helpers/app.js'
import { API, accessLog, bearer, createToken, RELAXED_LIMITER } from '../helpers/chain.js'
import { post } from '../helpers/mcp.js'
import { report } from '../helpers/faults.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'

const { users: U } = FIXTURE
const PROTOCOL = 5
const UNAUTH = 10

const { app, database, session } = await buildApp(t, {
  env: RELAXED_LIMITER,
  limits: { protocol: PROTOCOL, unauth: UNAUTH },
  seed: async ({ db }) => { await seedFixture(db) }
})
const jwt = await session(U.demo)
// the MCP exchanges over a real socket (an injected request has no socket whose end the audit row can judge)
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
const endpoint = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}${API}`

const rpc = (id: number, method: string, params: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method, params })
const mcpHeaders = (token: string) => ({ ...bearer(token), 'mcp-protocol-version': '2025-11-25' })

t.test('§13.3: initialize, tools/list, ping and unknown tools spend mcp_protocol; tool calls keep their own bucket', async t => {
  const made = await createToken(app, jwt, { name: 'protocol flood' })
  const messages = [
    rpc(1, 'initialize', { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'flood', version: '1' } }),
    rpc(2, 'tools/list'),
    rpc(3, 'ping'),
    rpc(4, 'tools/call', { name: 'drop_database', arguments: {} })
  ]
  const statuses: number[] = []
  for (let i = 0; i < 20; i++) {
    const res = await post(endpoint, messages[i % messages.length], mcpHeaders(made.token))
    statuses.push(res.status)
    if (i === 0) t.equal(res.headers.get('ratelimit-policy'), `"mcp_protocol";q=${PROTOCOL};w=60`, 'the protocol budget is announced')
    if (res.status === 429) {
      t.match(res.headers.get('retry-after') ?? '', /^\d+$/, `request ${i + 1}: Retry-After`)
      t.equal((JSON.parse(res.body) as { code?: string }).code, 'MCP_RATE_LIMITED', `request ${i + 1}: MCP_RATE_LIMITED`)
    }
  }
  t.equal(statuses.filter(s => s !== 429).length, PROTOCOL, `exactly ${PROTOCOL} protocol requests answered`)
  t.equal(statuses.filter(s => s === 429).length, 20 - PROTOCOL, 'the rest refused with 429')
  const get = await fetch(endpoint, { headers: bearer(made.token) })
  await get.arrayBuffer()
  t.equal(get.status, 429, 'GET on the endpoint spends the same budget (now spent)')
  const tool = await post(endpoint, rpc(99, 'tools/call', { name: 'list_projects', arguments: {} }), mcpHeaders(made.token))
  t.equal(tool.status, 200, 'a tool call still runs: it spends its own bucket')
  t.notMatch(tool.body, /"isError":true/, 'and is not refused')
  await app.mcpGateway.audit.flush()
  const rows = (await accessLog(database.db)).filter(r => r.token_id === made.token_id && r.via === 'mcp')
  t.equal(rows.filter(r => r.outcome === 'rate_limited').length, 20 - PROTOCOL + 1, 'each refusal is audited (the GET too)')
  report(t, 'MCP protocol flood', { sent: 20, answered: PROTOCOL, refused429: statuses.filter(s => s === 429).length, limitRpm: PROTOCOL })
})

t.test('§13.4: refusals before a user is known are limited per address and aggregated in the audit', async t => {
  const unknownToken = `ib_mcp_${randomBytes(24).toString('hex')}`
  const made = await createToken(app, jwt, { name: 'legit from the same address' })
  const from = '203.0.113.7'
  await app.mcpGateway.audit.flush()
  const before = new Set((await accessLog(database.db)).map(r => r.id))
  const kinds = [
    { what: '401 (unknown token)', url: `${API}/projects`, headers: bearer(unknownToken), refused: 401 },
    { what: '401 (no token)', url: `${API}/projects`, headers: {}, refused: 401 },
    { what: 'unknown route', url: `${API}/no/such/route`, headers: {}, refused: 404 },
    { what: 'guard (token outside the namespace)', url: '/metrics', headers: bearer(made.token), refused: 403 }
  ]
  const statuses: number[] = []
  for (let i = 0; i < 60; i++) {
    const k = kinds[i % kinds.length] ?? kinds[0]
    if (k === undefined) continue
    const res = await app.inject({ method: 'GET', url: k.url, headers: k.headers, remoteAddress: from })
    statuses.push(res.statusCode)
    if (res.statusCode !== k.refused) t.equal(res.statusCode, 429, `${k.what} #${i + 1}: refused as usual or 429`)
  }
  const plain = statuses.filter(s => s !== 429).length
  t.equal(plain, UNAUTH, `exactly ${UNAUTH} refusals answered as themselves`)
  t.equal(statuses.filter(s => s === 429).length, 60 - UNAUTH, 'the rest 429')
  const legit = await app.inject({ method: 'GET', url: `${API}/projects`, headers: bearer(made.token), remoteAddress: from })
  t.equal(legit.statusCode, 200, 'a valid token from the same address is not affected')
  const other = await app.inject({ method: 'GET', url: `${API}/projects`, headers: bearer(unknownToken), remoteAddress: '198.51.100.9' })
  t.equal(other.statusCode, 401, 'another address has its own budget')

  app.mcpGateway.anonymous.flush(true)
  await app.mcpGateway.audit.flush()
  const rows = (await accessLog(database.db)).filter(r => !before.has(r.id))
  const aggregated = rows.filter(r => r.action === 'refused_before_auth')
  t.equal(aggregated.length, 1, 'one aggregated row for the address (one minute)')
  const d = aggregated[0]?.details as { refused?: number, actions?: Record<string, number> } | undefined
  t.equal(d?.refused, 60 - UNAUTH, 'it counts every request past the limit')
  t.equal(aggregated[0]?.ip, from, 'it names the address')
  t.equal(aggregated[0]?.status_code, 429, 'status 429')
  t.same(Object.keys(d?.actions ?? {}).sort(), ['forbidden_path', 'unauthorized', 'unknown_route'], 'and what was refused')
  const individual = rows.filter(r => r.ip === from && r.action !== 'refused_before_auth' && r.status_code !== 200)
  t.ok(individual.length <= UNAUTH, `at most ${UNAUTH} individual rows for the address (${individual.length})`)
  t.ok(rows.length < 30, `the flood of 60 left ${rows.length} rows, not 60`)
  report(t, 'refusals before a user is known', { sent: 60, answeredAsRefusal: plain, refused429: 60 - plain, auditRows: rows.length, limitRpm: UNAUTH })
})
