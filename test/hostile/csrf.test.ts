// SPEC §13.2: token administration under a cookie session refuses cross-site requests (403 MCP_CROSS_SITE); the
// dashboard's own same-origin JSON calls and sessions sent in Authorization keep working.
import t from 'tap'
import { buildApp } from '../helpers/app.js'
import { API, accessLog, assertError, bearer, createToken } from '../helpers/chain.js'
import { report } from '../helpers/faults.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'

const { users: U } = FIXTURE
const OWN = 'https://ci.example.com'
const PARTNER = 'https://dashboard.partner.example'
const { app, database, session } = await buildApp(t, {
  env: { PUBLIC_BASE_URL: OWN, SESSION_ALLOWED_ORIGINS: `${PARTNER}, https://other.example/` },
  seed: async ({ db }) => { await seedFixture(db) }
})
const jwt = await session(U.demo)
const cookie = { cookie: `token=${jwt}` }
const made = await createToken(app, jwt, { name: 'csrf target' })
const trigger = `${API}/tokens/${made.token_id}/trigger`

const allowTrigger = async (): Promise<boolean> =>
  (await database.db.selectFrom('mcp_token').select('allow_trigger').where('token_id', '=', made.token_id).executeTakeFirstOrThrow()).allow_trigger

t.test('cross-site attempts with the session cookie are 403 MCP_CROSS_SITE and change nothing', async t => {
  const attacks: Array<{ what: string, method: 'POST' | 'PATCH' | 'DELETE', url: string, headers: Record<string, string>, payload?: string }> = [
    { what: '<form enctype=text/plain> POST to /trigger', method: 'POST', url: trigger, headers: { ...cookie, origin: 'https://evil.example', 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site' }, payload: '{"x":"' },
    { what: 'form POST, urlencoded', method: 'POST', url: trigger, headers: { ...cookie, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=b' },
    { what: 'empty no-cors fetch POST', method: 'POST', url: trigger, headers: { ...cookie, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } },
    { what: 'same-site sibling (Sec-Fetch-Site: same-site)', method: 'POST', url: trigger, headers: { ...cookie, origin: 'https://sub.ci.example.com', 'sec-fetch-site': 'same-site' } },
    { what: 'Origin: null (sandboxed iframe)', method: 'POST', url: trigger, headers: { ...cookie, origin: 'null' } },
    { what: 'no Origin, Referer from another site', method: 'POST', url: trigger, headers: { ...cookie, referer: 'https://evil.example/page' } },
    { what: 'no Origin, no Referer, no Sec-Fetch-Site', method: 'POST', url: trigger, headers: { ...cookie } },
    { what: 'the own origin, but a text/plain body', method: 'POST', url: trigger, headers: { ...cookie, origin: OWN, 'content-type': 'text/plain' }, payload: '{}' },
    { what: 'cross-site PATCH', method: 'PATCH', url: `${API}/tokens/${made.token_id}`, headers: { ...cookie, origin: 'https://evil.example', 'content-type': 'application/json' }, payload: '{"allow_trigger":true}' },
    { what: 'cross-site DELETE (revoke)', method: 'DELETE', url: `${API}/tokens/${made.token_id}`, headers: { ...cookie, origin: 'https://evil.example' } },
    { what: 'cross-site create', method: 'POST', url: `${API}/tokens/`, headers: { ...cookie, origin: 'https://evil.example', 'content-type': 'application/json' }, payload: '{"name":"attacker"}' },
    { what: 'Origin with the own host over http', method: 'POST', url: trigger, headers: { ...cookie, origin: 'http://ci.example.com' } }
  ]
  for (const a of attacks) {
    const res = await app.inject({ method: a.method, url: a.url, headers: a.headers, ...(a.payload !== undefined ? { payload: a.payload } : {}) })
    assertError(t, res, 403, 'MCP_CROSS_SITE', a.what)
  }
  t.equal(await allowTrigger(), false, 'allow_trigger is still off')
  const live = await database.db.selectFrom('mcp_token').select(['revoked_at']).where('token_id', '=', made.token_id).executeTakeFirstOrThrow()
  t.equal(live.revoked_at, null, 'the token is not revoked')
  await app.mcpGateway.audit.flush()
  const refused = (await accessLog(database.db)).filter(r => r.status_code === 403 && r.outcome === 'forbidden' && r.error !== null && /session cookie/.test(r.error))
  t.equal(refused.length, attacks.length, 'each attempt is an audit row (forbidden)')
  report(t, 'cross-site attempts with the session cookie', { sent: attacks.length, refused: refused.length, allowTriggerAfter: await allowTrigger() })
})

t.test('the dashboard\'s own calls keep working (same origin, JSON), and allowed origins', async t => {
  const dashboard = [
    { what: 'Sec-Fetch-Site same-origin, JSON {}', headers: { ...cookie, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' }, payload: '{}' },
    { what: 'Origin = PUBLIC_BASE_URL, JSON {}', headers: { ...cookie, origin: OWN, 'content-type': 'application/json' }, payload: '{}' },
    { what: 'Referer on the own origin, no body', headers: { ...cookie, referer: `${OWN}/dashboard/#/tokens` } },
    { what: 'Origin in SESSION_ALLOWED_ORIGINS', headers: { ...cookie, origin: PARTNER, 'content-type': 'application/json; charset=utf-8' }, payload: '{}' },
    { what: 'Sec-Fetch-Site none (typed by the user)', headers: { ...cookie, 'sec-fetch-site': 'none' } }
  ]
  for (const d of dashboard) {
    for (const method of ['POST', 'DELETE'] as const) {
      const res = await app.inject({ method, url: trigger, headers: d.headers, ...(d.payload !== undefined ? { payload: d.payload } : {}) })
      t.equal(res.statusCode, 200, `${d.what}: ${method} /trigger 200`)
    }
  }
  const patched = await app.inject({ method: 'PATCH', url: `${API}/tokens/${made.token_id}`, headers: { ...cookie, origin: OWN }, payload: { name: 'renamed' } })
  t.equal(patched.statusCode, 200, 'PATCH from the own origin')
  const listed = await app.inject({ method: 'GET', url: `${API}/tokens/`, headers: { ...cookie, origin: 'https://evil.example' } })
  t.equal(listed.statusCode, 200, 'GET is not a change: not refused (and a browser cannot read it cross-site)')
})

t.test('sessions sent in Authorization are not affected', async t => {
  const res = await app.inject({ method: 'POST', url: trigger, headers: { ...bearer(jwt), origin: 'https://evil.example', 'content-type': 'text/plain' }, payload: '{}' })
  t.equal(res.statusCode, 200, 'Authorization-borne session: 200 whatever the Origin')
  t.equal(await allowTrigger(), true, 'and it took effect')
  const off = await app.inject({ method: 'DELETE', url: trigger, headers: bearer(jwt) })
  t.equal(off.statusCode, 200, 'cleared again')
})

t.test('without PUBLIC_BASE_URL the own origin is the Host the request came to', async t => {
  const other = await buildApp(t, { seed: async ({ db }) => { await seedFixture(db) } })
  const j = await other.session(U.demo)
  const tok = await createToken(other.app, j, { name: 'host origin' })
  const url = `${API}/tokens/${tok.token_id}/trigger`
  const ok = await other.app.inject({ method: 'POST', url, headers: { cookie: `token=${j}`, host: 'gw.internal:8443', origin: 'http://gw.internal:8443' } })
  t.equal(ok.statusCode, 200, 'Origin equal to the Host: 200')
  const refused = await other.app.inject({ method: 'POST', url, headers: { cookie: `token=${j}`, host: 'gw.internal:8443', origin: 'http://evil.example' } })
  assertError(t, refused, 403, 'MCP_CROSS_SITE', 'another Origin')
})
