// SPEC §6 over HTTP: every token administration route, its shapes, refusals and audit rows.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { buildApp, auditSettled } from '../helpers/app.js'
import { hasValidChecksum, isWellFormedToken } from '../../core/token.js'
import { pythonFacts } from '../helpers/infrabox.js'

const alice = randomUUID()
const bob = randomUUID()
const p1 = randomUUID()
const p2 = randomUUID()
const foreign = randomUUID() // a public project alice does not collaborate on

const { app, database, session } = await buildApp(t, {
  env: { MCP_TOKEN_MAX_PER_USER: '3', MCP_TOKEN_MAX_EXPIRY_DAYS: '30' },
  seed: async ({ db }) => {
    await db.insertInto('user').values([{ id: alice, username: 'alice' }, { id: bob, username: 'bob' }]).execute()
    await db.insertInto('project').values([
      { id: p1, name: 'one', type: 'github' },
      { id: p2, name: 'two', type: 'upload' },
      { id: foreign, name: 'public', type: 'github', public: true }
    ]).execute()
    await db.insertInto('collaborator').values([
      { user_id: alice, project_id: p1, role: 'Owner' },
      { user_id: alice, project_id: p2 },
      { user_id: bob, project_id: foreign }
    ]).execute()
  }
})
const aliceSession = await session(alice)
const bobSession = await session(bob)
const auth = (jwt: string) => ({ authorization: `Bearer ${jwt}` })

async function create (body: unknown, jwt = aliceSession) {
  return await app.inject({ method: 'POST', url: '/api/v1/mcp/tokens/', headers: auth(jwt), payload: body as object })
}

t.test('create: 201 with the secret once, no-store, stored hashed', async t => {
  const res = await create({ name: '  agent  ', enabled_projects: { [p1]: null }, expires_days: 7, allow_trigger: true })
  t.equal(res.statusCode, 201)
  t.equal(res.headers['cache-control'], 'no-store')
  const body = res.json()
  t.same(Object.keys(body).sort(), ['allow_trigger', 'enabled_projects', 'expires_at', 'name', 'token', 'token_id'])
  t.ok(isWellFormedToken(body.token), 'ib_mcp_ + 48 hex')
  t.ok(hasValidChecksum(body.token), 'CRC-32 tail')
  t.equal(body.token_id, body.token.slice(7, 23))
  t.equal(body.name, 'agent', 'trimmed')
  t.same(body.enabled_projects, { [p1]: null })
  t.equal(body.allow_trigger, true)
  const days = (Date.parse(body.expires_at) - Date.now()) / 86_400_000
  t.ok(days > 6.99 && days <= 7, 'expires in 7 days')
  const row = await database.db.selectFrom('mcp_token').selectAll().where('token_id', '=', body.token_id).executeTakeFirstOrThrow()
  // InfraBox's definitions, computed by python3 (hashlib, zlib), not by the gateway's hashToken
  const [py] = pythonFacts([body.token])
  t.equal(row.token_hash, py?.token_hash, 'token_hash is hashlib.sha256(token).hexdigest()')
  t.equal(row.token_id, py?.token_id, 'token_id is token[7:23]')
  t.equal(py?.crc32_ok, true, 'the tail is zlib.crc32 of the 40 hex before it')
  t.notOk(JSON.stringify(row).includes(body.token), 'plain token not stored')
})

t.test('create: default expiry is the maximum, trigger off, scope {}', async t => {
  const res = await create({ name: 'defaults' })
  t.equal(res.statusCode, 201)
  const body = res.json()
  t.same(body.enabled_projects, {})
  t.equal(body.allow_trigger, false)
  const days = (Date.parse(body.expires_at) - Date.now()) / 86_400_000
  t.ok(days > 29.99 && days <= 30)
})

t.test('create: refusals', async t => {
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString()
  const cases: Array<[string, unknown, number]> = [
    ['empty name', { name: '   ' }, 400],
    ['long name', { name: 'x'.repeat(129) }, 400],
    ['missing name', {}, 400],
    ['expires_days 0', { name: 'a', expires_days: 0 }, 400],
    ['expires_days over max', { name: 'a', expires_days: 31 }, 400],
    ['expires_days fractional', { name: 'a', expires_days: 1.5 }, 400],
    ['expiry not ISO', { name: 'a', enabled_projects: { [p1]: 'next week' } }, 400],
    ['expiry in the past', { name: 'a', enabled_projects: { [p1]: '2020-01-01T00:00:00Z' } }, 400],
    ['project expiry after the token', { name: 'a', expires_days: 1, enabled_projects: { [p1]: new Date(Date.now() + 3 * 86_400_000).toISOString() } }, 400],
    ['project id not a uuid', { name: 'a', enabled_projects: { 'not-a-uuid': null } }, 400],
    ['not a collaborator (public project)', { name: 'a', enabled_projects: { [foreign]: null } }, 403],
    ['unknown project', { name: 'a', enabled_projects: { [randomUUID()]: tomorrow } }, 403],
    ['body not an object', [1, 2], 400]
  ]
  for (const [what, body, status] of cases) {
    const res = await create(body)
    t.equal(res.statusCode, status, what)
    const err = res.json()
    t.same(Object.keys(err).sort(), ['code', 'error', 'message', 'statusCode'], `${what}: error shape`)
  }
  const malformed = await app.inject({ method: 'POST', url: '/api/v1/mcp/tokens', headers: { ...auth(aliceSession), 'content-type': 'application/json' }, payload: '{"name":' })
  t.equal(malformed.statusCode, 400, 'malformed JSON')
})

t.test('create: per-user cap is 409; revoked tokens free a place', async t => {
  // alice has 2 live tokens from the tests above; the cap is 3
  const third = await create({ name: 'third' })
  t.equal(third.statusCode, 201)
  const fourth = await create({ name: 'fourth' })
  t.equal(fourth.statusCode, 409)
  t.equal(fourth.json().code, 'MCP_CONFLICT')
  const del = await app.inject({ method: 'DELETE', url: `/api/v1/mcp/tokens/${third.json().token_id as string}`, headers: auth(aliceSession) })
  t.equal(del.statusCode, 200)
  t.same(del.json(), { message: 'Token revoked', status: 200 })
  t.equal((await create({ name: 'again' })).statusCode, 201)
})

t.test('list: newest first, the dashboard shape, ?include=revoked', async t => {
  const res = await app.inject({ method: 'GET', url: '/api/v1/mcp/tokens/', headers: auth(aliceSession) })
  t.equal(res.statusCode, 200)
  const live = res.json() as Array<Record<string, unknown>>
  t.equal(live.length, 3)
  t.same(Object.keys(live[0] ?? {}).sort(), ['allow_trigger', 'created_at', 'enabled_projects', 'expires_at', 'last_used_at', 'name', 'token_id'])
  const created = live.map(x => Date.parse(String(x.created_at)))
  t.same(created, [...created].sort((a, b) => b - a), 'newest first')
  t.notOk(JSON.stringify(live).includes('ib_mcp_'), 'no secrets')
  const all = await app.inject({ method: 'GET', url: '/api/v1/mcp/tokens?include=revoked', headers: auth(aliceSession) })
  t.equal(all.json().length, 4)
  const bad = await app.inject({ method: 'GET', url: '/api/v1/mcp/tokens?include=everything', headers: auth(aliceSession) })
  t.equal(bad.statusCode, 400)
  const bobs = await app.inject({ method: 'GET', url: '/api/v1/mcp/tokens', headers: auth(bobSession) })
  t.same(bobs.json(), [], 'only your own')
})

t.test('patch, trigger grant/revoke, revoke', async t => {
  const made = (await create({ name: 'editable', expires_days: 10 }, bobSession)).json()
  const url = `/api/v1/mcp/tokens/${made.token_id as string}`
  const nothing = await app.inject({ method: 'PATCH', url, headers: auth(bobSession), payload: {} })
  t.equal(nothing.statusCode, 400, 'nothing to update')
  const notYours = await app.inject({ method: 'PATCH', url, headers: auth(aliceSession), payload: { name: 'mine' } })
  t.equal(notYours.statusCode, 404, 'not the user\'s')
  const ok = await app.inject({ method: 'PATCH', url, headers: auth(bobSession), payload: { name: 'renamed', enabled_projects: { [foreign]: null }, expires_days: 5, allow_trigger: true } })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { message: 'Token updated', status: 200 })
  const forbidden = await app.inject({ method: 'PATCH', url, headers: auth(bobSession), payload: { enabled_projects: { [p1]: null } } })
  t.equal(forbidden.statusCode, 403, 'bob does not collaborate on p1')
  let row = await database.db.selectFrom('mcp_token').selectAll().where('token_id', '=', made.token_id).executeTakeFirstOrThrow()
  t.equal(row.name, 'renamed')
  t.same(row.enabled_projects, { [foreign]: null })
  t.equal(row.allow_trigger, true)
  t.ok(Math.abs(row.expires_at.getTime() - Date.now() - 5 * 86_400_000) < 60_000)

  const revokeTrigger = await app.inject({ method: 'DELETE', url: `${url}/trigger`, headers: { ...auth(bobSession), 'content-type': 'application/json' }, payload: '{}' })
  t.equal(revokeTrigger.statusCode, 200)
  row = await database.db.selectFrom('mcp_token').selectAll().where('token_id', '=', made.token_id).executeTakeFirstOrThrow()
  t.equal(row.allow_trigger, false)
  const grant = await app.inject({ method: 'POST', url: `${url}/trigger/`, headers: auth(bobSession), payload: {} })
  t.equal(grant.statusCode, 200)
  t.same(grant.json(), { message: 'Trigger allowed', status: 200 })
  row = await database.db.selectFrom('mcp_token').selectAll().where('token_id', '=', made.token_id).executeTakeFirstOrThrow()
  t.equal(row.allow_trigger, true)

  t.equal((await app.inject({ method: 'DELETE', url, headers: auth(bobSession) })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url, headers: auth(bobSession) })).statusCode, 404, 'already revoked')
  t.equal((await app.inject({ method: 'PATCH', url, headers: auth(bobSession), payload: { name: 'x' } })).statusCode, 404, 'revoked: 404')
  t.equal((await app.inject({ method: 'POST', url: `${url}/trigger`, headers: auth(bobSession) })).statusCode, 404)
  t.equal((await app.inject({ method: 'PATCH', url: '/api/v1/mcp/tokens/nothex', headers: auth(bobSession), payload: { name: 'x' } })).statusCode, 400)

  await auditSettled(app)
  const log = await app.inject({ method: 'GET', url: `${url}/access-log`, headers: auth(bobSession) })
  t.equal(log.statusCode, 200)
  const actions = (log.json().items as Array<{ action: string, outcome: string }>).map(i => `${i.action}:${i.outcome}`)
  t.same(actions, [
    'grant_mcp_trigger:not_found', 'update_mcp_token:not_found', 'revoke_mcp_token:not_found', 'revoke_mcp_token:success',
    'grant_mcp_trigger:success', 'revoke_mcp_trigger:success', 'update_mcp_token:forbidden', 'update_mcp_token:success',
    'update_mcp_token:not_found', 'update_mcp_token:bad_request', 'create_mcp_token:success'
  ], 'every change audited, newest first')
  const page = await app.inject({ method: 'GET', url: `${url}/access-log?limit=4`, headers: auth(bobSession) })
  t.equal(page.json().items.length, 4)
  const next = await app.inject({ method: 'GET', url: `${url}/access-log?limit=4&cursor=${page.json().next_cursor as string}`, headers: auth(bobSession) })
  t.equal(next.json().items[0].action, actions[4]?.split(':')[0])
  t.equal((await app.inject({ method: 'GET', url: `${url}/access-log?cursor=bogus`, headers: auth(bobSession) })).statusCode, 400)
  t.equal((await app.inject({ method: 'GET', url: `${url}/access-log`, headers: auth(aliceSession) })).statusCode, 404, 'not yours')
})

t.test('sessions: cookie, schemes, Basic; refusals', async t => {
  const basic = Buffer.from(`infrabox:${aliceSession}`).toString('base64')
  for (const headers of [
    { cookie: `other=1; token=${aliceSession}` },
    { authorization: `bearer ${aliceSession}` },
    { authorization: `token ${aliceSession}` },
    { authorization: `Basic ${basic}` }
  ]) {
    const res = await app.inject({ method: 'GET', url: '/api/v1/mcp/tokens', headers })
    t.equal(res.statusCode, 200, JSON.stringify(Object.keys(headers)))
  }
  t.equal((await app.inject({ method: 'GET', url: '/api/v1/mcp/tokens' })).statusCode, 401, 'no session')
  t.equal((await app.inject({ method: 'GET', url: '/api/v1/mcp/tokens', headers: auth('garbage') })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/api/v1/mcp/tokens', headers: auth(await session(randomUUID())) })).statusCode, 401, 'user must exist')
  const forged = aliceSession.slice(0, -4) + (aliceSession.endsWith('AAAA') ? 'BBBB' : 'AAAA')
  t.equal((await app.inject({ method: 'GET', url: '/api/v1/mcp/tokens', headers: auth(forged) })).statusCode, 401, 'bad signature')
})

t.test('an MCP token on the token routes is 403 MCP_FORBIDDEN_PATH, audited', async t => {
  const made = (await app.inject({ method: 'GET', url: '/api/v1/mcp/tokens', headers: auth(aliceSession) })).json()[0]
  const fake = `ib_mcp_${made.token_id as string}${'0'.repeat(32)}`
  for (const [method, url] of [['GET', '/api/v1/mcp/tokens'], ['POST', '/api/v1/mcp/tokens/'], ['DELETE', `/api/v1/mcp/tokens/${made.token_id as string}`], ['GET', '/api/v1/mcp/%74okens']] as const) {
    const res = await app.inject({ method, url, headers: { authorization: `Bearer ${fake}` } })
    t.equal(res.statusCode, 403, `${method} ${url}`)
    t.equal(res.json().code, 'MCP_FORBIDDEN_PATH')
  }
  const cookie = await app.inject({ method: 'GET', url: '/api/v1/mcp/tokens', headers: { cookie: `token=${fake}` } })
  t.equal(cookie.statusCode, 403, 'in the cookie too')
  await auditSettled(app)
  const rows = await database.db.selectFrom('mcp_access_log').selectAll().where('action', '=', 'forbidden_path').execute()
  t.equal(rows.length, 5)
  t.ok(rows.every(r => r.token_id === made.token_id && r.outcome === 'forbidden' && r.status_code === 403))
})
