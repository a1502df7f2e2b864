// SPEC §4 "auth" over HTTP: one 401 whatever the reason, every scheme validated alike (defect 2), InfraBox-minted tokens, last_used_at, the namespace guard.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../helpers/app.js'
import { eventually } from '../helpers/db.js'
import { API, addUser, assertError, bearer, createToken, header, insertPythonToken, revokeToken, RELAXED_LIMITER, type Answer } from '../helpers/chain.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { mintToken } from '../../core/token.js'
import { sql } from 'kysely'

const { app, database, session } = await buildApp(t, {
  limits: { default: 1000, log: 1000, artifact: 1000, trigger: 1000 },
  env: { ...RELAXED_LIMITER },
  seed: async ({ db }) => { await seedFixture(db) }
})
const db = database.db
const demoSession = await session(FIXTURE.users.demo)
const projects = `${API}/projects`
const githubUrl = `${projects}/${FIXTURE.projects.github}`

const get = async (url: string, headers: Record<string, string> = {}): Promise<Answer> => await app.inject({ method: 'GET', url, headers })
const REALM = 'Bearer realm="infrabox-mcp"'
const REALM_INVALID = 'Bearer realm="infrabox-mcp", error="invalid_token"'
const basic = (token: string): string => `Basic ${Buffer.from(`infrabox:${token}`).toString('base64')}`
/** The same token id with another secret: known id, wrong hash. */
const wrongSecret = (token: string): string => token.slice(0, 23) + (token.slice(23, 24) === '0' ? '1' : '0') + token.slice(24)

const valid = await createToken(app, demoSession, { name: 'valid' })

t.test('no Authorization header: 401 MCP_INVALID_TOKEN with the realm and no error attribute', async t => {
  const cases: Array<[string, string, Record<string, string>]> = [
    ['GET', projects, {}],
    ['GET', githubUrl, {}],
    ['GET', `${githubUrl}/builds?status=nonsense`, {}], // auth comes before validation
    ['GET', `${projects}/not-a-uuid`, {}],
    ['GET', `${projects}/${FIXTURE.projects.github}/jobs/${FIXTURE.jobs.compile}/artifacts/download?filename=report.txt`, {}],
    ['POST', `${githubUrl}/trigger`, {}],
    ['GET', projects, { authorization: '' }]
  ]
  for (const [method, url, headers] of cases) {
    const res = await app.inject({ method: method as 'GET' | 'POST', url, headers, ...(method === 'POST' ? { payload: { branch: 'main' } } : {}) })
    assertError(t, res, 401, 'MCP_INVALID_TOKEN', `${method} ${url}`)
    t.equal(header(res, 'www-authenticate'), REALM, `${method} ${url}: realm only`)
    t.equal(header(res, 'ratelimit'), '', 'no budget spent before auth')
  }
})

t.test('any credential sent: one identical 401 whatever the reason, with error="invalid_token"', async t => {
  const revoked = await createToken(app, demoSession, { name: 'to revoke' })
  await revokeToken(app, demoSession, revoked.token_id)

  // Expiry is at least a day at creation; time passes in the database, before the token is ever used.
  const expired = await createToken(app, demoSession, { name: 'expired', expires_days: 1 })
  await db.updateTable('mcp_token').set({ expires_at: new Date(Date.now() - 1000) }).where('token_id', '=', expired.token_id).execute()

  const leaving = await addUser(db, [FIXTURE.projects.github])
  const orphaned = await createToken(app, await session(leaving), { name: 'owner leaves' })
  await db.deleteFrom('collaborator').where('user_id', '=', leaving).execute()
  await db.deleteFrom('user').where('id', '=', leaving).execute()

  const unknownWithChecksum = mintToken().token // well-formed, valid CRC, never stored
  const unknownWithoutChecksum = `ib_mcp_${randomBytes(24).toString('hex')}`

  const cases: Array<[string, string]> = [
    ['not a token', 'Bearer nope'],
    ['scheme without credential', 'Bearer'],
    ['prefix only', 'Bearer ib_mcp_'],
    ['47 hex', `Bearer ${valid.token.slice(0, -1)}`],
    ['49 hex', `Bearer ${valid.token}0`],
    ['upper-case hex', `Bearer ib_mcp_${valid.token.slice(7).toUpperCase()}A`.slice(0, 7 + 7 + 48)],
    ['upper-case prefix', `Bearer IB_MCP_${valid.token.slice(7)}`],
    ['unknown scheme', `Digest ${valid.token}`],
    ['two credentials', `Bearer ${valid.token} ${valid.token}`],
    ['unknown token with a valid checksum', `Bearer ${unknownWithChecksum}`],
    ['unknown token without checksum', `Bearer ${unknownWithoutChecksum}`],
    ['wrong secret for a known token id', `Bearer ${wrongSecret(valid.token)}`],
    ['revoked', `Bearer ${revoked.token}`],
    ['expired', `Bearer ${expired.token}`],
    ['owner deleted', `Bearer ${orphaned.token}`],
    ['Basic without password', `Basic ${Buffer.from('infrabox:').toString('base64')}`],
    ['Basic garbage', 'Basic %%%']
  ]
  let first: unknown
  for (const [what, authorization] of cases) {
    const res = await get(githubUrl, { authorization })
    assertError(t, res, 401, 'MCP_INVALID_TOKEN', what)
    t.equal(header(res, 'www-authenticate'), REALM_INVALID, `${what}: realm and error="invalid_token"`)
    t.equal(header(res, 'ratelimit-policy'), '', `${what}: no budget spent`)
    first ??= res.json()
    t.same(res.json(), first, `${what}: the same body as every other reason`)
  }
  // The valid token still works: the refusals above were about the credentials, not the route.
  t.equal((await get(githubUrl, bearer(valid.token))).statusCode, 200)
})

t.test('defect 2: every scheme InfraBox accepts is validated the same way', async t => {
  const revoked = await createToken(app, demoSession, { name: 'revoked for schemes' })
  await revokeToken(app, demoSession, revoked.token_id)
  const schemes: Array<[string, (token: string) => string]> = [
    ['Bearer', tok => `Bearer ${tok}`],
    ['bearer', tok => `bearer ${tok}`],
    ['BEARER', tok => `BEARER ${tok}`],
    ['token', tok => `token ${tok}`],
    ['Token', tok => `Token ${tok}`],
    ['TOKEN', tok => `TOKEN ${tok}`],
    ['Basic infrabox:<token>', basic],
    ['extra spaces', tok => `  bearer    ${tok}  `]
  ]
  for (const [scheme, authorization] of schemes) {
    const ok = await get(githubUrl, { authorization: authorization(valid.token) })
    t.equal(ok.statusCode, 200, `${scheme}: a valid token passes`)
    t.equal(ok.json().id, FIXTURE.projects.github)
    for (const [what, bad] of [['wrong secret', wrongSecret(valid.token)], ['revoked', revoked.token], ['malformed', `ib_mcp_${'z'.repeat(48)}`]] as const) {
      const res = await get(githubUrl, { authorization: authorization(bad) })
      assertError(t, res, 401, 'MCP_INVALID_TOKEN', `${scheme} with a ${what} token`)
      t.equal(header(res, 'www-authenticate'), REALM_INVALID)
    }
  }
})

t.test('a token minted by InfraBox\'s Python layer (48 random hex, no checksum) is accepted', async t => {
  const token = await insertPythonToken(db, FIXTURE.users.demo)
  const res = await get(projects, bearer(token))
  t.equal(res.statusCode, 200)
  t.ok((res.json().items as Array<{ id: string }>).some(p => p.id === FIXTURE.projects.github))
  assertError(t, await get(projects, bearer(wrongSecret(token))), 401, 'MCP_INVALID_TOKEN', 'its id with another secret')
})

t.test('a session JWT is not an MCP token on the data routes', async t => {
  const res = await get(projects, bearer(demoSession))
  assertError(t, res, 401, 'MCP_INVALID_TOKEN')
  t.equal(header(res, 'www-authenticate'), REALM_INVALID)
})

t.test('MCP tokens are refused outside the namespace and on the token routes: 403 MCP_FORBIDDEN_PATH', async t => {
  for (const [url, headers] of [
    ['/readyz', bearer(valid.token)],
    ['/metrics', { authorization: `token ${valid.token}` }],
    ['/healthz', { cookie: `token=${valid.token}` }],
    [`${API}/tokens`, bearer(valid.token)],
    [`${API}/tokens/`, { authorization: basic(valid.token) }],
    [`${API}/tokens/${valid.token_id}/access-log`, bearer(valid.token)],
    ['/api/v1/projects', bearer(valid.token)]
  ] as const) {
    assertError(t, await get(url, headers), 403, 'MCP_FORBIDDEN_PATH', url)
  }
})

t.test('last_used_at: set after a use, off the request path, not rewritten within a minute', async t => {
  const used = await createToken(app, demoSession, { name: 'last used' })
  const probed = await createToken(app, demoSession, { name: 'only probed with a wrong secret' })
  const lastUsed = async (tokenId: string): Promise<Date | null> =>
    (await db.selectFrom('mcp_token').select('last_used_at').where('token_id', '=', tokenId).executeTakeFirstOrThrow()).last_used_at
  t.equal(await lastUsed(used.token_id), null, 'never used: null')

  const before = Date.now()
  t.equal((await get(projects, bearer(used.token))).statusCode, 200)
  t.equal((await get(projects, bearer(wrongSecret(probed.token)))).statusCode, 401)
  t.ok(await eventually(async () => await lastUsed(used.token_id) !== null, 5000), 'last_used_at written within seconds')
  const first = await lastUsed(used.token_id)
  t.ok(first !== null && first.getTime() >= before - 1000 && first.getTime() <= Date.now() + 1000, `it is the time of use (${first?.toISOString() ?? 'null'})`)

  const view = (await app.inject({ method: 'GET', url: `${API}/tokens`, headers: bearer(demoSession) })).json() as Array<{ token_id: string, last_used_at: string | null }>
  t.equal(view.find(v => v.token_id === used.token_id)?.last_used_at, first?.toISOString(), 'the dashboard sees it')

  for (let i = 0; i < 5; i++) t.equal((await get(projects, bearer(used.token))).statusCode, 200)
  await sleep(1500) // longer than the coalescing flush (1 s)
  t.equal((await lastUsed(used.token_id))?.getTime(), first?.getTime(), 'not rewritten within a minute')
  t.equal(await lastUsed(probed.token_id), null, 'a refused credential is not a use')
})

// Changes made outside the gateway (InfraBox deleting the owner, an operator's SQL) apply at once: nothing is cached.
t.test('owner deleted in InfraBox after the token was used: refused on the next request', async t => {
  const owner = await addUser(db, [FIXTURE.projects.github])
  const made = await createToken(app, await session(owner), { name: 'owner deleted after use' })
  t.equal((await get(githubUrl, bearer(made.token))).statusCode, 200, 'used')
  await db.deleteFrom('user').where('id', '=', owner).execute() // the token row goes with it (ON DELETE CASCADE); collaborator has no FK
  const res = await get(githubUrl, bearer(made.token))
  t.equal(res.statusCode, 401, 'owner gone: 401 on the next request')
})

t.test('the lookups run on connections of their own: the request pool holds no named statement', async t => {
  for (let i = 0; i < 5; i++) {
    const res = await get(`${githubUrl}/builds`, bearer(valid.token))
    t.equal(res.statusCode, 200)
  }
  // the auth pool is a session of its own, named for what it does
  const { rows: sessions } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'infrabox-mcp-gateway-auth'`.execute(db)
  t.ok((sessions[0]?.n ?? 0) >= 1, 'an auth connection is open')
  // every idle connection of the request pool: none has prepared anything (a named statement there would make
  // every handler query dearer, docs/performance.md)
  const pool = app.pg.pool
  const clients = await Promise.all(Array.from({ length: Math.min(3, pool.totalCount) }, async () => await pool.connect()))
  try {
    for (const client of clients) {
      const { rows } = await client.query<{ name: string }>('SELECT name FROM pg_prepared_statements')
      t.same(rows, [], 'no named statement on a request connection')
    }
  } finally {
    for (const client of clients) client.release()
  }
})

t.test('last_used_at writes share the auth pool, not the request pool', async t => {
  // An UPDATE on a request-pool connection made its later handler queries dearer (docs/performance.md), so the
  // token bookkeeping runs where the lookups run.
  const services = app.mcpGateway as unknown as { db: unknown, usage: { db: unknown }, tokenLookups: { db: unknown } }
  t.equal(services.usage.db, services.tokenLookups.db, 'one pool for lookups and last_used_at')
  t.not(services.usage.db, services.db, 'and it is not the request pool')
})
