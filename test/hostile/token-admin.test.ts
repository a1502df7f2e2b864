// SPEC §13.5, §13.6, §13.7, §13.8, §13.9 from outside: the token cap under concurrent creation, timestamps from a
// TZ=Asia/Tokyo process, token bodies closed to unknown fields, the guard on decoded cookies and Basic user names,
// and a trickled request body cut by requestTimeout.
import { connect } from 'node:net'
import t from 'tap'
import { sql } from 'kysely'
import { buildApp } from '../helpers/app.js'
import { API, accessLog, addUser, assertError, bearer, createToken } from '../helpers/chain.js'
import { report, spawnGateway } from '../helpers/faults.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'

const { projects: P, users: U } = FIXTURE

t.test('§13.5: 20 concurrent creates with a cap of 3 leave exactly 3 live tokens', async t => {
  const { app, database, session } = await buildApp(t, { env: { MCP_TOKEN_MAX_PER_USER: '3' }, seed: async ({ db }) => { await seedFixture(db) } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const base = typeof address === 'object' && address !== null ? `http://127.0.0.1:${address.port}` : ''
  for (let round = 0; round < 3; round++) {
    const user = await addUser(database.db, [P.github])
    const jwt = await session(user)
    const answers = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const res = await fetch(`${base}${API}/tokens/`, { method: 'POST', headers: { ...bearer(jwt), 'content-type': 'application/json' }, body: JSON.stringify({ name: `race ${i}` }) })
      await res.arrayBuffer()
      return res.status
    }))
    const created = answers.filter(s => s === 201).length
    const refused = answers.filter(s => s === 409).length
    const live = await database.db.selectFrom('mcp_token').select(eb => eb.fn.countAll<string>().as('n'))
      .where('user_id', '=', user).where('revoked_at', 'is', null).executeTakeFirstOrThrow()
    t.equal(created, 3, `round ${round}: three 201s`)
    t.equal(refused, 17, `round ${round}: seventeen 409s`)
    t.equal(Number(live.n), 3, `round ${round}: three live tokens in the table`)
    if (round === 0) report(t, 'token cap under 20 concurrent creates (cap 3)', { created, refused, live: Number(live.n) })
  }
})

t.test('§13.6: a gateway process with TZ=Asia/Tokyo stores the same instants (expires_at, revoked_at, cursors)', async t => {
  const { app, database, config, session } = await buildApp(t, { seed: async ({ db }) => { await seedFixture(db) } })
  await app.close() // only its database, session key and config are used: the gateway under test is the child
  const child = await spawnGateway(t, 'test/helpers/gateway-process.ts', {
    TZ: 'Asia/Tokyo',
    DATABASE_URL: database.url,
    INFRABOX_RSA_PUBLIC_KEY_PATH: config.INFRABOX_RSA_PUBLIC_KEY_PATH ?? '',
    LOG_LEVEL: 'silent',
    AUDIT_FLUSH_MS: '20',
    REDIS_URL: ''
  })
  const jwt = await session(U.demo)
  const h = { ...bearer(jwt), 'content-type': 'application/json' }
  const createdAt = Date.now()
  const res = await fetch(`${child.base}${API}/tokens/`, { method: 'POST', headers: h, body: JSON.stringify({ name: 'tokyo', expires_days: 1 }) })
  t.equal(res.status, 201, 'created by the Tokyo process')
  const made = await res.json() as { token_id: string, expires_at: string }
  t.ok(Math.abs(Date.parse(made.expires_at) - (createdAt + 86_400_000)) < 5 * 60_000, `the answer says one day from now (${made.expires_at})`)
  // read the column as UTC wall time, independent of this process's zone
  const stored = async (column: 'expires_at' | 'revoked_at'): Promise<number> => {
    const row = await sql<{ epoch: string | null }>`SELECT extract(epoch FROM ${sql.ref(column)})::text AS epoch FROM mcp_token WHERE token_id = ${made.token_id}`.execute(database.db)
    return Number(row.rows[0]?.epoch) * 1000
  }
  const expires = await stored('expires_at')
  t.ok(Math.abs(expires - (createdAt + 86_400_000)) < 5 * 60_000, `expires_at stored one day ahead, not 33 h (off by ${Math.round((expires - createdAt - 86_400_000) / 60_000)} min)`)

  // a few changes, each an audit row of this token, then page through them one by one
  for (const name of ['a', 'b', 'c']) {
    const patched = await fetch(`${child.base}${API}/tokens/${made.token_id}`, { method: 'PATCH', headers: h, body: JSON.stringify({ name }) })
    t.equal(patched.status, 200, `PATCH ${name}`)
  }
  const revokedAt = Date.now()
  const del = await fetch(`${child.base}${API}/tokens/${made.token_id}`, { method: 'DELETE', headers: bearer(jwt) })
  t.equal(del.status, 200, 'revoked')
  const revoked = await stored('revoked_at')
  t.ok(Math.abs(revoked - revokedAt) < 5 * 60_000, `revoked_at is now, not 9 h ahead (off by ${Math.round((revoked - revokedAt) / 60_000)} min)`)
  // the access log rows land off the request path: wait until all five are there
  let expected = 0
  for (let i = 0; i < 200 && expected < 5; i++) {
    expected = (await accessLog(database.db)).filter(r => r.token_id === made.token_id).length
    if (expected < 5) await new Promise(resolve => setTimeout(resolve, 25))
  }
  t.equal(expected, 5, 'five audit rows (create, three patches, revoke)')
  const seen: string[] = []
  let cursor: string | null = null
  for (let page = 0; page < 10; page++) {
    const url: string = `${child.base}${API}/tokens/${made.token_id}/access-log?limit=1${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`
    const r = await fetch(url, { headers: bearer(jwt) })
    const body = await r.json() as { items: Array<{ id: string }>, next_cursor: string | null }
    seen.push(...body.items.map(i => i.id))
    cursor = body.next_cursor
    if (cursor === null) break
  }
  t.equal(seen.length, 5, 'the cursor pages through five rows')
  t.equal(new Set(seen).size, 5, 'each exactly once (a shifted cursor would repeat or skip)')
})

t.test('§13.7: token bodies refuse unknown fields; none reaches the audit details', async t => {
  const { app, database, session } = await buildApp(t, { seed: async ({ db }) => { await seedFixture(db) } })
  const jwt = await session(U.demo)
  const made = await createToken(app, jwt, { name: 'closed body' })
  const patchOnlyUnknown = await app.inject({ method: 'PATCH', url: `${API}/tokens/${made.token_id}`, headers: bearer(jwt), payload: { user_id: U.demo } })
  assertError(t, patchOnlyUnknown, 400, 'FST_ERR_VALIDATION', 'PATCH with only an unknown field')
  const patchMixed = await app.inject({ method: 'PATCH', url: `${API}/tokens/${made.token_id}`, headers: bearer(jwt), payload: { name: 'x', user_id: U.demo, token_hash: 'f'.repeat(64) } })
  assertError(t, patchMixed, 400, 'FST_ERR_VALIDATION', 'PATCH with a known and unknown fields')
  const createUnknown = await app.inject({ method: 'POST', url: `${API}/tokens/`, headers: bearer(jwt), payload: { name: 'x', user_id: U.demo } })
  assertError(t, createUnknown, 400, 'FST_ERR_VALIDATION', 'POST with an unknown field')
  const dashboard = await app.inject({ method: 'POST', url: `${API}/tokens/`, headers: bearer(jwt), payload: { name: 'dash', enabled_projects: { [P.github]: null }, expires_days: 30, allow_trigger: false } })
  t.equal(dashboard.statusCode, 201, 'the dashboard\'s own body still creates')
  const row = await database.db.selectFrom('mcp_token').select(['user_id', 'name']).where('token_id', '=', made.token_id).executeTakeFirstOrThrow()
  t.same(row, { user_id: U.demo, name: 'closed body' }, 'the token is unchanged')
  await app.mcpGateway.audit.flush()
  const details = (await accessLog(database.db)).map(r => JSON.stringify(r.details ?? null))
  t.notOk(details.some(d => d.includes('user_id') || d.includes('token_hash')), 'no unknown key in any audit details')
})

t.test('§13.8: the guard reads decoded cookies and both halves of Basic', async t => {
  const { app, session } = await buildApp(t, { seed: async ({ db }) => { await seedFixture(db) } })
  const made = await createToken(app, await session(U.demo), { name: 'guard' })
  const encoded = made.token.replaceAll('_', '%5F')
  const basicUser = `Basic ${Buffer.from(`${made.token}:`).toString('base64')}`
  const basicUserWithPassword = `Basic ${Buffer.from(`${made.token}:x`).toString('base64')}`
  for (const [what, headers] of [
    ['percent-encoded token cookie', { cookie: `token=${encoded}` }],
    ['percent-encoded token in another cookie', { cookie: `a=1; session=${encoded}` }],
    ['token as the Basic user name', { authorization: basicUser }],
    ['token as the Basic user name, with a password', { authorization: basicUserWithPassword }]
  ] as const) {
    for (const url of [`${API}/tokens/`, '/metrics']) {
      const res = await app.inject({ method: 'GET', url, headers })
      assertError(t, res, 403, 'MCP_FORBIDDEN_PATH', `${what} on ${url}`)
    }
  }
})

t.test('§13.9: a body trickled a byte at a time, or headers trickled, are cut by requestTimeout (408)', async t => {
  const requestTimeout = 1000
  const connectionTimeout = 1500
  const { app, config, session } = await buildApp(t, { env: { REQUEST_TIMEOUT_MS: String(requestTimeout), CONNECTION_TIMEOUT_MS: String(connectionTimeout) }, seed: async ({ db }) => { await seedFixture(db) } })
  t.equal(config.REQUEST_TIMEOUT_MS, requestTimeout, 'REQUEST_TIMEOUT_MS read')
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.equal(app.server.timeout, connectionTimeout, 'CONNECTION_TIMEOUT_MS is the server\'s socket timeout')
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const jwt = await session(U.demo)

  const trickled = async (head: string, drip: string): Promise<{ answer: string, ms: number, bytesSent: number }> => await new Promise((resolve) => {
    const started = Date.now()
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    let bytesSent = 0
    let timer: NodeJS.Timeout | undefined
    socket.on('connect', () => {
      socket.write(head)
      // one byte every 100 ms: never silent long enough for a socket timeout, never complete
      timer = setInterval(() => { if (!socket.destroyed) { socket.write(drip); bytesSent++ } }, 100)
    })
    socket.on('data', d => { answer += d.toString() })
    socket.on('error', () => { /* the server may reset: the close below reports it */ })
    socket.on('close', () => { clearInterval(timer); resolve({ answer, ms: Date.now() - started, bytesSent }) })
    // a bound far beyond the configured timeout (and Node's checking interval) on a loaded machine: 30x
    setTimeout(() => { socket.destroy() }, requestTimeout * 30).unref()
  })
  const cases = [
    { what: 'a trickled body (with a valid session, so the body is read)', head: `POST ${API}/tokens/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${jwt}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n`, drip: ' ' },
    { what: 'trickled headers', head: `GET ${API}/projects HTTP/1.1\r\nHost: x\r\n`, drip: 'X' }
  ]
  for (const c of cases) {
    const r = await trickled(c.head, c.drip)
    t.match(r.answer, /^HTTP\/1\.1 408/, `${c.what}: the server answered 408 (${r.answer.split('\r\n')[0] ?? 'nothing'}) after ${r.ms} ms`)
    t.ok(r.ms >= requestTimeout * 0.9, `${c.what}: not before the configured timeout`)
    t.ok(r.ms < requestTimeout * 30, `${c.what}: the socket was closed by the server, not by the test`)
    report(t, c.what, { requestTimeoutMs: requestTimeout, cutAfterMs: r.ms, bytesTrickled: r.bytesSent })
  }
})
