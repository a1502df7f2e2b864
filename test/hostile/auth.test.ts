// Hostile input, part 1: every Authorization spelling with bad credentials, bad checksums, revoked/expired/unknown
// tokens, tokens where they do not belong (cookie, query, path, other routes), forged and tampered sessions, unicode,
// NUL and control bytes in headers, oversized headers, hostile x-request-id / x-forwarded-for. Each row: the exact
// status and code, the error body's shape, and its audit row (or the documented reason it has none).
import t from 'tap'
import { createHmac } from 'node:crypto'
import { buildApp } from '../helpers/app.js'
import { API, bearer, createToken, revokeToken } from '../helpers/chain.js'
import { LogCapture, report } from '../helpers/faults.js'
import { rawGet, runTable, snapshot, type Case } from '../helpers/hostile.js'
import { scanDatabase, scanText } from '../helpers/secrets.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { mintToken } from '../../core/token.js'
import { clientRequestId } from '../helpers/db.js'

const logs = new LogCapture()
const big = { default: 1_000_000, log: 1_000_000, artifact: 1_000_000, trigger: 1_000_000 }
const { app, database, session } = await buildApp(t, { env: { LOG_LEVEL: 'info' }, limits: big, seed: async ({ db }) => { await seedFixture(db) }, logStream: logs })
const db = database.db
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
const port = typeof address === 'object' && address !== null ? address.port : 0
const { users: U } = FIXTURE

const jwt = await session(U.demo)
const outsiderJwt = await session(U.outsider)
const valid = await createToken(app, jwt, { name: 'hostile auth' })
const revoked = await createToken(app, jwt, { name: 'revoked' })
await revokeToken(app, jwt, revoked.token_id)
const expired = mintToken()
await db.insertInto('mcp_token').values({ token_id: expired.tokenId, token_hash: expired.tokenHash, user_id: U.demo, name: 'expired', enabled_projects: '{}', allow_trigger: false, expires_at: new Date(Date.now() - 1000) }).execute()
const unknown = mintToken() // a well-formed token with a valid checksum that was never stored
const tok = valid.token
const flipped = tok.slice(0, -1) + (tok.endsWith('0') ? '1' : '0') // same id, bad checksum, wrong hash
const badChecksum = tok.slice(0, 47) + (tok[47] === 'a' ? 'b' : 'a') + tok.slice(48) // a body digit changed: id kept, CRC-32 no longer matches
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')
const jwtParts = jwt.split('.')
const forgedNone = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ user: { id: U.demo }, type: 'user' })).toString('base64url')}.`
const forgedHs = (() => {
  const h = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')
  const p = Buffer.from(JSON.stringify({ user: { id: U.demo }, type: 'user' })).toString('base64url')
  return `${h}.${p}.${createHmac('sha256', 'secret').update(`${h}.${p}`).digest('base64url')}`
})()
const tamperedJwt = `${jwtParts[0]}.${Buffer.from(JSON.stringify({ user: { id: U.outsider }, type: 'user' })).toString('base64url')}.${jwtParts[2]}`
const ghostJwt = await session('00000000-0000-4000-8000-00000000dead') // signed, but no such user
const notUserJwt = `${jwtParts[0]}.${Buffer.from(JSON.stringify({ user: { id: U.demo }, type: 'project' })).toString('base64url')}.${jwtParts[2]}`

const projects = `${API}/projects`
const invalid = (name: string, authorization: string | undefined, tokenId: string | null, extra: Partial<Case> = {}): Case => ({
  name,
  url: projects,
  ...(authorization !== undefined ? { headers: { authorization } } : {}),
  status: 401,
  code: 'MCP_INVALID_TOKEN',
  audit: 'list_projects',
  tokenId,
  check: (t, res) => {
    const sent = authorization !== undefined && authorization.trim() !== ''
    t.equal(res.headers['www-authenticate'], sent ? 'Bearer realm="infrabox-mcp", error="invalid_token"' : 'Bearer realm="infrabox-mcp"', `${name}: WWW-Authenticate`)
  },
  ...extra
})
const forbiddenPath = (name: string, url: string, headers: Record<string, string>, tokenId: string | null, method = 'GET'): Case =>
  ({ name, method, url, headers, status: 403, code: 'MCP_FORBIDDEN_PATH', audit: 'forbidden_path', tokenId })
const NO_SESSION = 'token administration audits changes made by a known user; anonymous probes are not attributable'
const noSession = (name: string, authorization: string | undefined, extra: Partial<Case> = {}): Case => ({
  name, method: 'POST', url: `${API}/tokens`, ...(authorization !== undefined ? { headers: { authorization } } : {}), payload: { name: 'x' }, status: 401, code: 'MCP_UNAUTHORIZED', audit: null, why: NO_SESSION, ...extra
})
const PARSER = 'refused by the HTTP parser before any request exists (no route, no token, nothing to attribute)'

const cases: Case[] = [
  // ---- no credential, empty, malformed
  invalid('no Authorization header', undefined, null),
  invalid('empty Authorization', '', null),
  invalid('only spaces', '    ', null),
  invalid('scheme without credential', 'Bearer', null),
  invalid('scheme and a space', 'Bearer ', null),
  invalid('prefix only', 'Bearer ib_mcp_', null),
  invalid('47 hex', `Bearer ib_mcp_${'a'.repeat(47)}`, null),
  invalid('49 hex', `Bearer ib_mcp_${'a'.repeat(49)}`, null),
  invalid('upper-case hex', `Bearer ${tok.toUpperCase().replace('IB_MCP_', 'ib_mcp_')}`, null),
  invalid('upper-case prefix', `Bearer IB_MCP_${tok.slice(7)}`, null),
  invalid('non-hex characters', `Bearer ib_mcp_${'g'.repeat(48)}`, null),
  invalid('hex with a dash', `Bearer ib_mcp_${tok.slice(7, 30)}-${tok.slice(31)}`, null),
  invalid('8 KiB of garbage', `Bearer ${'x'.repeat(8192)}`, null),
  invalid('a session JWT on the chain', `Bearer ${jwt}`, null),
  invalid('SQL in the credential', "Bearer ' OR '1'='1' --", null),
  invalid('SQL after a well-formed prefix', `Bearer ib_mcp_${'0'.repeat(16)}' OR 1=1 --`, null),
  invalid('JSON in the credential', 'Bearer {"token_id":{"$ne":null}}', null),
  invalid('unicode lookalike digits', `Bearer ib_mcp_${'１'.repeat(48)}`, null),
  invalid('zero-width space inside', `Bearer ib_mcp_${tok.slice(7, 20)}\u200b${tok.slice(20)}`, null),
  invalid('percent-encoded token', `Bearer ${encodeURIComponent(tok).replace(/_/g, '%5F')}`, null),
  // ---- every spelling InfraBox accepts, each validated (defect 2: `token`/`bearer` skipped validation)
  ...['Bearer', 'bearer', 'BEARER', 'bEaReR', 'token', 'Token', 'TOKEN', 'tOkEn'].flatMap(scheme => [
    invalid(`${scheme} + a bad checksum`, `${scheme} ${badChecksum}`, valid.token_id),
    invalid(`${scheme} + a revoked token`, `${scheme} ${revoked.token}`, revoked.token_id)
  ]),
  invalid('Bearer + the right id, wrong tail', `Bearer ${flipped}`, valid.token_id),
  invalid('an expired token', `Bearer ${expired.token}`, expired.tokenId),
  invalid('a well-formed token never issued', `Bearer ${unknown.token}`, unknown.tokenId),
  invalid('extra spaces and a bad token', `   Bearer     ${badChecksum}   `, valid.token_id),
  invalid('tab between scheme and a bad token', `Bearer\t${badChecksum}`, valid.token_id),
  invalid('Basic infrabox:<bad checksum>', `Basic ${b64(`infrabox:${badChecksum}`)}`, valid.token_id),
  invalid('Basic <any user>:<revoked>', `Basic ${b64(`anyone:${revoked.token}`)}`, revoked.token_id),
  invalid('Basic without a colon', `Basic ${b64(tok)}`, null),
  invalid('Basic with an empty password', `Basic ${b64('infrabox:')}`, null),
  invalid('Basic that is not base64', 'Basic !!!***', null),
  invalid('unknown scheme Digest with a valid token', `Digest ${tok}`, null),
  invalid('unknown scheme ApiKey with a valid token', `ApiKey ${tok}`, null),
  invalid('"Bearer:" with a colon', `Bearer: ${tok}`, null),
  invalid('no scheme, the valid token alone', tok, null),
  invalid('valid token followed by junk', `Bearer ${tok} junk`, null),
  invalid('two credentials in one header', `Bearer ${tok},Bearer ${tok}`, null),
  invalid('valid token as a cookie only (the chain reads Authorization)', undefined, null, { headers: { cookie: `token=${tok}` }, check: () => {} }),
  invalid('valid token in the query string only', undefined, null, { url: `${projects}?access_token=${tok}&token=${tok}` }),
  // ---- headers that must not change anything
  invalid('X-Forwarded-For spoofing (TRUST_PROXY off) with a bad token', `Bearer ${badChecksum}`, valid.token_id, { headers: { authorization: `Bearer ${badChecksum}`, 'x-forwarded-for': "1.2.3.4, ' OR 1=1 --" } }),
  invalid('Origin of a browser page with a bad token', `Bearer ${badChecksum}`, valid.token_id, { headers: { authorization: `Bearer ${badChecksum}`, origin: 'https://evil.example' } }),
  invalid('Accept: text/plain still gets the JSON error', `Bearer ${badChecksum}`, valid.token_id, { headers: { authorization: `Bearer ${badChecksum}`, accept: 'text/plain' } }),
  invalid('Accept: application/xml', `Bearer ${badChecksum}`, valid.token_id, { headers: { authorization: `Bearer ${badChecksum}`, accept: 'application/xml' } }),
  invalid('hostile x-request-id (replaced, counted)', undefined, null, { headers: { 'x-request-id': "'); DROP TABLE mcp_access_log; --" }, anonymous: true, check: () => {} }),
  invalid('x-request-id of 500 characters (replaced, counted)', undefined, null, { headers: { 'x-request-id': 'r'.repeat(500) }, anonymous: true, check: () => {} }),
  // ---- MCP tokens outside the namespace (SPEC §4: 403 MCP_FORBIDDEN_PATH, audited)
  forbiddenPath('valid token on the token list', `${API}/tokens`, bearer(tok), valid.token_id),
  forbiddenPath('valid token creating a token', `${API}/tokens`, { ...bearer(tok), 'content-type': 'application/json' }, valid.token_id, 'POST'),
  forbiddenPath('valid token revoking itself', `${API}/tokens/${valid.token_id}`, bearer(tok), valid.token_id, 'DELETE'),
  forbiddenPath('token spelling "token" on the admin', `${API}/tokens/`, { authorization: `token ${tok}` }, valid.token_id),
  forbiddenPath('upper-case prefix on the admin (still refused)', `${API}/tokens`, { authorization: `bearer IB_MCP_${tok.slice(7)}` }, null),
  forbiddenPath('valid token as a cookie on the admin', `${API}/tokens`, { cookie: `token=${tok}` }, valid.token_id),
  forbiddenPath('token on /healthz', '/healthz', bearer(tok), valid.token_id),
  forbiddenPath('token on /metrics', '/metrics', bearer(tok), valid.token_id),
  forbiddenPath('token on an unknown host route', '/api/v1/other', bearer(tok), valid.token_id),
  forbiddenPath('path traversal out of the namespace', `${API}/projects/../../other`, bearer(tok), valid.token_id),
  forbiddenPath('encoded traversal to the admin', `${API}/projects/%2e%2e/tokens`, bearer(tok), valid.token_id),
  // ---- the token where it does not belong inside the namespace: never echoed, never stored
  { name: 'token as a project id', url: `${projects}/${tok}`, headers: bearer(tok), status: 400, code: 'FST_ERR_VALIDATION', audit: 'get_project', tokenId: valid.token_id },
  { name: 'token in an unknown path of the namespace', url: `${API}/${tok}`, headers: { authorization: `Bearer ${badChecksum}` }, status: 404, code: 'MCP_NOT_FOUND', audit: 'unknown_route', tokenId: valid.token_id },
  { name: 'unknown method on a data route', method: 'DELETE', url: projects, headers: bearer(tok), status: 404, code: 'MCP_NOT_FOUND', audit: 'unknown_route', tokenId: valid.token_id },
  { name: 'OPTIONS preflight on a data route', method: 'OPTIONS', url: projects, headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' }, status: 404, code: 'MCP_NOT_FOUND', audit: 'unknown_route', tokenId: null },
  // ---- sessions on the token administration
  noSession('no session at all', undefined),
  noSession('tampered JWT payload (another user)', `Bearer ${tamperedJwt}`),
  noSession('alg=none JWT', `Bearer ${forgedNone}`),
  noSession('HS256 JWT signed with a guessed secret', `Bearer ${forgedHs}`),
  noSession('validly signed JWT of a user that does not exist', `Bearer ${ghostJwt}`),
  noSession('JWT of another type than user', `Bearer ${notUserJwt}`),
  noSession('JWT truncated', `Bearer ${jwt.slice(0, -10)}`),
  noSession('JWT over 8 KiB', `Bearer ${jwt}${'A'.repeat(8192)}`),
  noSession('tampered JWT as the cookie', undefined, { headers: { cookie: `token=${tamperedJwt}` } }),
  noSession('JWT with SQL as the user id', `Bearer ${jwtParts[0]}.${Buffer.from(JSON.stringify({ user: { id: "' OR 1=1 --" }, type: 'user' })).toString('base64url')}.${jwtParts[2]}`),
  // ---- raw bytes inject cannot send
  {
    name: 'NUL byte in the Authorization header',
    url: projects,
    raw: rid => rawGet(projects, [`Authorization: Bearer ib_mcp_\u0000${'a'.repeat(47)}`], rid),
    status: 400,
    code: 'MCP_BAD_REQUEST',
    audit: null,
    why: PARSER
  },
  {
    name: 'bare CR in a header (header injection)',
    url: projects,
    raw: rid => rawGet(projects, ['Authorization: Bearer x\rX-Injected: 1'], rid),
    status: 400,
    code: 'MCP_BAD_REQUEST',
    audit: null,
    why: PARSER
  },
  {
    name: 'control byte 0x01 in a header',
    url: projects,
    raw: rid => rawGet(projects, ['X-Anything: a\u0001b'], rid),
    status: 400,
    code: 'MCP_BAD_REQUEST',
    audit: null,
    why: PARSER
  },
  {
    name: 'header name with a space',
    url: projects,
    raw: rid => rawGet(projects, ['Bad Header: 1'], rid),
    status: 400,
    code: 'MCP_BAD_REQUEST',
    audit: null,
    why: PARSER
  },
  {
    name: 'request line with another protocol',
    url: projects,
    raw: () => Buffer.from(`GET ${projects} FTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 'latin1'),
    status: 400,
    code: 'MCP_BAD_REQUEST',
    audit: null,
    why: PARSER
  },
  {
    name: 'Authorization of 20 KiB (over the 16 KiB header limit)',
    url: projects,
    raw: rid => rawGet(projects, [`Authorization: Bearer ${'a'.repeat(20 * 1024)}`], rid),
    status: 431,
    code: 'MCP_HEADERS_TOO_LARGE',
    audit: null,
    why: PARSER
  },
  {
    name: '1000 headers of 20 bytes each',
    url: projects,
    raw: rid => rawGet(projects, Array.from({ length: 1000 }, (_, i) => `X-H${i}: ${'v'.repeat(12)}`), rid),
    status: 431,
    code: 'MCP_HEADERS_TOO_LARGE',
    audit: null,
    why: PARSER
  },
  {
    name: 'Latin-1 bytes (obs-text) in the credential',
    url: projects,
    raw: rid => rawGet(projects, [`Authorization: Bearer ib_mcp_${'\u00e9'.repeat(48)}`], rid),
    status: 401,
    code: 'MCP_INVALID_TOKEN',
    audit: 'list_projects',
    tokenId: null
  },
  {
    name: 'UTF-8 bytes of an emoji in the credential',
    url: projects,
    raw: rid => Buffer.concat([rawGet(projects, [], rid).subarray(0, -2), Buffer.from('Authorization: Bearer ib_mcp_'), Buffer.from('🚀'.repeat(12), 'utf8'), Buffer.from('\r\n\r\n')]),
    status: 401,
    code: 'MCP_INVALID_TOKEN',
    audit: 'list_projects',
    tokenId: null
  },
  {
    name: 'two Authorization headers, the first bad (Node keeps the first)',
    url: projects,
    raw: rid => rawGet(projects, [`Authorization: Bearer ${badChecksum}`, `Authorization: Bearer ${tok}`], rid),
    status: 401,
    code: 'MCP_INVALID_TOKEN',
    audit: 'list_projects',
    tokenId: valid.token_id
  },
  {
    name: 'malformed percent-encoding in the path',
    url: projects,
    raw: rid => rawGet(`${projects}/%zz`, [`Authorization: Bearer ${tok}`], rid),
    status: 400,
    code: 'FST_ERR_BAD_URL',
    audit: null,
    why: 'refused by the router before any route: no route scope to audit in'
  }
]

const secrets = [tok, revoked.token, expired.token, unknown.token, jwt, outsiderJwt]
const before = await snapshot(db)
let result: Awaited<ReturnType<typeof runTable>> | null = null

t.test(`${cases.length} hostile requests on authentication and headers`, async t => {
  result = await runTable(t, cases, { app, db, port, idPrefix: 'h-auth', secrets: secrets.filter(s => s !== jwt) })
  t.same(await snapshot(db), before, 'mcp_token, build, job, project, collaborator, user, commit unchanged (last_used_at aside)')
  const logged = await db.selectFrom('mcp_access_log').select('ip').where(clientRequestId, '=', `h-auth-${cases.findIndex(c => c.name.startsWith('X-Forwarded-For'))}`).executeTakeFirst()
  t.equal(logged?.ip, '127.0.0.1', 'X-Forwarded-For is not trusted without TRUST_PROXY')
  const replaced = await db.selectFrom('mcp_access_log').select('request_id').where('request_id', 'like', '%DROP%').execute()
  t.same(replaced, [], 'a hostile x-request-id is replaced, never stored')
})

t.test('no plaintext token or session in any table, log line or error body', async t => {
  t.same(result?.leaks ?? ['not run'], [], `none in ${cases.length} answers`)
  const scan = await scanDatabase(db, secrets)
  t.same(scan.leaks, [], `none in the ${scan.columns} text columns of ${scan.tables} tables`)
  t.same(scanText('logs', logs.text, secrets), [], `none in ${logs.raw.length} log lines`)
  report(t, 'hostile-auth', { requests: cases.length, audited: cases.filter(c => c.audit !== null).length, not_audited: cases.filter(c => c.audit === null).length, leaks: 0 })
})
