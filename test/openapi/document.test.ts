// The served OpenAPI document (SPEC §1, issue 18): 3.1, accepted by an independent validator and Redocly's recommended rules, and true to what the routes answer.
import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import { buildApp } from '../helpers/app.js'
import { API, bearer, createToken } from '../helpers/chain.js'
import type { Test } from 'tap'
import { lintDocument, operationsOf, pointerOf, servedDocument, validateDocument, type DocOperation, type DocResponse, type OpenApiDoc } from '../helpers/openapi.js'
import { seedFixture, FIXTURE } from '../../db/seed.js'
import { OPERATIONS } from '../../core/operations/index.js'

/**
 * Redocly warnings the document keeps, each with its reason. Anything else (and any error) fails the test.
 */
const ACCEPTED_WARNINGS: ReadonlyArray<{ ruleId: string, pointer: string, reason: string }> = [
  {
    ruleId: 'operation-2xx-response',
    pointer: '#/paths/~1api~1v1~1mcp~1oauth~1authorize/post/responses',
    reason: 'the consent form post ends in a 302 back to the client (RFC 6749 §4.1.2) or a page that says what is wrong; it never answers 2xx'
  }
]

const PUBLIC_BASE_URL = 'https://ci.infrabox.test'

const plain = await buildApp(t, { seed: async ({ db }) => { await seedFixture(db) }, limits: { introspect: 1 } })
const withOAuth = await buildApp(t, { env: { PUBLIC_BASE_URL } })

for (const [name, { app }] of [['PUBLIC_BASE_URL unset', plain], ['PUBLIC_BASE_URL set (OAuth on)', withOAuth]] as const) {
  t.test(`${name}: the validator and Redocly's recommended rules accept the document`, async t => {
    const doc = await servedDocument(app)
    t.equal(doc.openapi, '3.1.0')
    const validation = await validateDocument(doc)
    t.comment(`@seriousme/openapi-schema-validator: valid=${String(validation.valid)}, errors=${JSON.stringify(validation.errors)}`)
    t.ok(validation.valid, 'valid OpenAPI 3.1')

    const problems = await lintDocument(doc)
    const errors = problems.filter(p => p.severity === 'error')
    const warnings = problems.filter(p => p.severity === 'warn')
    t.comment(`Redocly recommended: ${errors.length} errors, ${warnings.length} warnings`)
    for (const p of problems) t.comment(`  ${p.severity} ${p.ruleId} ${pointerOf(p)}: ${p.message}`)
    t.same(errors.map(p => `${p.ruleId} ${pointerOf(p)}: ${p.message}`), [], 'no Redocly errors')
    for (const w of warnings) {
      const accepted = ACCEPTED_WARNINGS.find(a => a.ruleId === w.ruleId && a.pointer === pointerOf(w))
      t.ok(accepted, `warning ${w.ruleId} at ${pointerOf(w)} is one the document keeps on purpose${accepted !== undefined ? `: ${accepted.reason}` : ''}`)
    }
  })
}

t.test('servers, license, tags, and on every operation an operationId, a tag and its security', async t => {
  const doc = await servedDocument(plain.app)
  t.same(doc.servers, [{ url: '/', description: 'the host that serves this document (PUBLIC_BASE_URL is not set)' }])
  t.same((await servedDocument(withOAuth.app)).servers, [{ url: PUBLIC_BASE_URL, description: 'the gateway (PUBLIC_BASE_URL)' }])
  t.equal(doc.info.license?.name, 'Apache-2.0')
  const ids = new Set<string>()
  for (const [method, path, op] of operationsOf(doc)) {
    const where = `${method} ${path}`
    t.ok(op.operationId !== undefined && !ids.has(op.operationId), `${where}: a unique operationId (${op.operationId ?? 'none'})`)
    if (op.operationId !== undefined) ids.add(op.operationId)
    t.equal(op.tags?.length, 1, `${where}: one tag`)
    t.ok(Array.isArray(op.security), `${where}: security stated`)
    if (path.startsWith(`${API}/tokens`)) t.same(op.security, [{ session: [] }, { sessionBearer: [] }], `${where}: the InfraBox session`)
    else if (path === API || path.startsWith(`${API}/projects`) || path.startsWith(`${API}/me`)) t.same(op.security, [{ mcpToken: [] }], `${where}: an ib_mcp_ token`)
  }
  // every operation's REST twin is documented under the MCP tool's name
  for (const op of OPERATIONS) {
    const found = operationsOf(doc).find(([, , o]) => o.operationId === op.name)
    t.ok(found, `${op.name} documented`)
    t.equal(found?.[0], op.method, `${op.name}: ${op.method}`)
  }
  t.same(doc.tags?.map(tag => tag.name), ['token administration', 'data', 'agent tools', 'MCP'])
  const oauthDoc = await servedDocument(withOAuth.app)
  t.ok(oauthDoc.tags?.some(tag => tag.name === 'OAuth'))
  const token = operationsOf(oauthDoc).find(([, path]) => path === `${API}/oauth/token`)?.[2]
  t.same(token?.security, [], 'the token endpoint takes no credential')
  const trigger = operationsOf(oauthDoc).find(([, , o]) => o.operationId === 'trigger_build')?.[2]
  t.same(trigger?.security, [{ mcpToken: [] }, { oauth: ['mcp', 'mcp:trigger'] }], 'while OAuth is on, its scopes are an alternative')
})

const byId = (doc: OpenApiDoc, id: string): DocOperation => {
  const op = operationsOf(doc).find(([, , o]) => o.operationId === id)?.[2]
  if (op === undefined) throw new Error(`no operation ${id}`)
  return op
}
const statuses = (op: DocOperation): string[] => Object.keys(op.responses)

t.test('each route documents the statuses its steps and handler give, not a blanket', async t => {
  const doc = await servedDocument(plain.app)
  t.same(statuses(byId(doc, 'list_projects')), ['200', '400', '401', '429', '503'], 'no project in the path: no 403/404; no 410')
  t.same(statuses(byId(doc, 'get_token_info')), ['200', '401', '429', '503'], 'no input at all: no 400')
  t.same(statuses(byId(doc, 'get_job')), ['200', '400', '401', '403', '404', '429', '503'], 'no 409 on a job read')
  t.ok(statuses(byId(doc, 'get_job_log')).includes('410'), 'the log says it can be gone')
  const trigger = byId(doc, 'trigger_build')
  t.same(statuses(trigger), ['201', '400', '401', '403', '404', '409', '413', '415', '422', '429', '503'])
  t.match(trigger.responses['403']?.description, /MCP_PROJECT_FORBIDDEN[\s\S]*MCP_TRIGGER_FORBIDDEN/, 'the trigger right only where a route needs it')
  t.notMatch(byId(doc, 'list_builds').responses['403']?.description, /MCP_TRIGGER_FORBIDDEN/)
  t.same(statuses(byId(doc, 'revoke_mcp_token')), ['200', '400', '401', '403', '404', '503'])
  t.same(statuses(byId(doc, 'create_mcp_token')), ['201', '400', '401', '403', '409', '413', '415', '503'])
  t.same(byId(doc, 'create_mcp_token').responses['201']?.headers, { 'Cache-Control': { $ref: '#/components/headers/Cache-Control' } })

  const listBuilds = byId(doc, 'list_builds')
  t.same(Object.keys(listBuilds.responses['401']?.headers ?? {}), ['WWW-Authenticate'])
  t.same(Object.keys(listBuilds.responses['429']?.headers ?? {}).sort(), ['RateLimit', 'RateLimit-Policy', 'Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'])
  t.same(listBuilds.responses['404']?.content, { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } })

  const download = byId(doc, 'get_artifact')
  t.same(Object.keys(download.responses['200']?.content ?? {}), ['*/*'], 'the file in its own media type')
  t.ok(download.responses['200']?.headers?.['Content-Disposition'], 'Content-Disposition documented')
  t.same(Object.keys(byId(doc, 'get_job_log').responses['200']?.content ?? {}), ['application/json', 'text/plain'])

  const mcp = byId(doc, 'mcp')
  t.same(mcp.requestBody?.content['application/json']?.schema, { $ref: '#/components/schemas/JsonRpcRequest' })
  t.same(mcp.responses['200']?.content?.['application/json']?.schema, { $ref: '#/components/schemas/JsonRpcResponse' })
  t.same(statuses(mcp), ['200', '202', '400', '401', '403', '404', '406', '413', '415', '503'])
})

/** The answer's media type is one the document lists for its status (or the status documents no body and none came). */
function checkContent (t: Test, what: string, documented: DocResponse | undefined, contentType: unknown, body: string): void {
  if (documented === undefined) return
  const types = Object.keys(documented.content ?? {})
  if (types.length === 0) { t.equal(body, '', `${what}: no body, as documented`); return }
  const essence = String(contentType ?? '').split(';')[0]?.trim() ?? ''
  t.ok(types.includes(essence) || types.includes('*/*'), `${what}: ${essence} is among ${types.join(', ')}`)
}

/**
 * Reality against the document: every documented operation is called as a client might get it wrong (no credential,
 * ids that name nothing, ids that are no ids, a project outside the token, an empty body) and every status that comes
 * back must be one the document lists for that operation, with the headers it promises. New routes are covered as
 * they land.
 */
t.test('every status a route really answers is documented, with its headers', async t => {
  const { app, session } = plain
  const doc = await servedDocument(app)
  const sessionJwt = await session(FIXTURE.users.demo)
  const { token } = await createToken(app, sessionJwt)
  const spare = await createToken(app, sessionJwt, { name: 'the token the admin routes change' })
  const unknownTokenId = randomBytes(8).toString('hex')
  const REAL: Record<string, string> = { projectId: FIXTURE.projects.github, buildId: FIXTURE.builds.b1, jobId: FIXTURE.jobs.compile, tokenId: spare.token_id }

  const fill = (path: string, ids: 'real' | 'random' | 'malformed' | 'foreign'): string => path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    if (ids === 'malformed') return 'not-an-id'
    if (ids === 'real') return REAL[name] ?? randomUUID()
    if (name === 'tokenId') return unknownTokenId
    if (name === 'projectId') return ids === 'foreign' ? FIXTURE.projects.public : FIXTURE.projects.github
    return randomUUID()
  })
  const credentialFor = (path: string): Record<string, string> => path.startsWith(`${API}/tokens`) ? bearer(sessionJwt) : bearer(token)

  let calls = 0
  const seen = new Map<string, Set<number>>()
  for (const [method, path, op] of operationsOf(doc)) {
    const cases: Array<[string, string, Record<string, string>]> = [
      ['no credential', fill(path, 'random'), {}],
      ['ids that name nothing', fill(path, 'random'), credentialFor(path)]
    ]
    if (path.includes('{')) cases.push(['ids of real things', fill(path, 'real'), credentialFor(path)])
    if (path.includes('{')) cases.push(['ids that are no ids', fill(path, 'malformed'), credentialFor(path)])
    if (path.includes('{projectId}')) cases.push(['a project outside the token', fill(path, 'foreign'), credentialFor(path)])
    for (const [what, url, headers] of cases) {
      const body = method === 'GET' || method === 'DELETE' ? {} : { payload: {} }
      const res = await app.inject({ method: method as 'GET', url: `${url}${path.endsWith('/download') || path.endsWith('/text') ? '?filename=x.txt' : ''}`, headers: { ...headers, accept: 'application/json, text/event-stream' }, ...body })
      calls++
      seen.set(op.operationId ?? path, new Set([...seen.get(op.operationId ?? path) ?? [], res.statusCode]))
      const documented = op.responses[String(res.statusCode)]
      t.ok(documented, `${method} ${path} (${what}) answered ${res.statusCode}, documented: ${statuses(op).join(', ')}`)
      checkContent(t, `${method} ${path} (${what}) ${res.statusCode}`, documented, res.headers['content-type'], res.body)
      for (const header of Object.keys(documented?.headers ?? {})) {
        if (header === 'Content-Length' || header === 'Location' || header.startsWith('X-Log-')) continue // only on some answers
        t.ok(res.headers[header.toLowerCase()] !== undefined, `${method} ${path} ${res.statusCode}: header ${header}`)
      }
    }
  }
  t.ok(calls > 50, `${calls} calls`)
  t.comment(`statuses seen: ${[...seen].map(([id, s]) => `${id} ${[...s].sort().join('/')}`).join('; ')}`)

  // the MCP endpoint's own answers: a JSON-RPC response and an accepted notification
  const mcp = byId(doc, 'mcp')
  const rpc = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25', ...bearer(token) }
  const init = await app.inject({ method: 'POST', url: API, headers: rpc, payload: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'openapi-test', version: '1' } } } })
  t.equal(init.statusCode, 200)
  checkContent(t, 'initialize', mcp.responses['200'], init.headers['content-type'], init.body)
  const note = await app.inject({ method: 'POST', url: API, headers: rpc, payload: { jsonrpc: '2.0', method: 'notifications/initialized' } })
  t.equal(note.statusCode, 202)
  t.ok(mcp.responses['202'], '202 documented')

  // the budget's refusal and its headers (introspect is 1 per minute here)
  const me = byId(doc, 'get_token_info')
  await app.inject({ url: `${API}/me`, headers: bearer(token) })
  const limited = await app.inject({ url: `${API}/me`, headers: bearer(token) })
  t.equal(limited.statusCode, 429)
  for (const header of Object.keys(me.responses['429']?.headers ?? {})) t.ok(limited.headers[header.toLowerCase()] !== undefined, `429 carries ${header}`)
})
