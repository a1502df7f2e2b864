// Hostile OAuth requests: wrong redirect URIs, replayed codes, wrong verifiers, expired codes, forged consent posts, foreign resources, SSRF through metadata documents.
import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { FIXTURE } from '../../db/seed.js'
import {
  authorizeCode, authorizeUrl, get, hiddenFields, pkce, postConsent, register, registeredClientId, sessionCookie,
  startOAuthApp, tokenRequest, type OAuthTestApp
} from '../helpers/oauth.js'

const REDIRECT = 'http://127.0.0.1:45679/cb'
/** How late the slow metadata document answers: three times the 1000 ms deadline the test configures. */
const SLOW_MS = 3000
const { users, projects } = FIXTURE

/** The page a browser would land on: a 400 HTML page, never a redirect to the given URI. */
async function refusedWithPage (t: Test, res: Response, pattern: RegExp): Promise<void> {
  t.equal(res.status, 400)
  t.equal(res.headers.get('location'), null, 'no redirect')
  t.match(res.headers.get('content-type'), /text\/html/)
  t.match(await res.text(), pattern)
}

t.test('authorization and token hostility', async t => {
  const a = await startOAuthApp(t, { env: { OAUTH_RATE_LIMIT_RPM: '1000' } })
  const cookie = sessionCookie(await a.session(users.demo))
  const clientId = await registeredClientId(a.origin, REDIRECT)
  const bearer = async (token: string): Promise<number> => (await fetch(`${a.endpoint}/projects`, { headers: { authorization: `Bearer ${token}` } })).status

  await t.test('redirect URI mismatches are a 400 page, never a redirect', async t => {
    const { challenge } = pkce()
    for (const redirectUri of ['https://evil.example.com/cb', 'http://127.0.0.1:45679/other', 'http://127.0.0.1:45679/cb?x=1', 'http://evil.example.com:45679/cb']) {
      await refusedWithPage(t, await get(authorizeUrl(a.origin, { clientId, redirectUri, challenge }), cookie), /not one the client registered/)
    }
    await refusedWithPage(t, await get(authorizeUrl(a.origin, { clientId: 'ibc_unknown', redirectUri: REDIRECT, challenge }), cookie), /no client/)
    const loopbackPort = await get(authorizeUrl(a.origin, { clientId, redirectUri: 'http://127.0.0.1:5555/cb', challenge }), cookie)
    t.equal(loopbackPort.status, 200, 'a loopback redirect URI may use another port (RFC 8252 §7.3)')
  })

  await t.test('PKCE is required and only S256', async t => {
    const noChallenge = await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge: '' }), cookie)
    t.equal(noChallenge.status, 302)
    t.equal(new URL(noChallenge.headers.get('location') ?? '').searchParams.get('error'), 'invalid_request')
    const { challenge } = pkce()
    const plain = await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge, extra: { code_challenge_method: 'plain' } }), cookie)
    t.equal(new URL(plain.headers.get('location') ?? '').searchParams.get('error'), 'invalid_request')
  })

  await t.test('resource for another server', async t => {
    const { challenge, verifier } = pkce()
    const other = await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge, resource: 'https://other.example.com/mcp' }), cookie)
    t.equal(other.status, 302)
    t.equal(new URL(other.headers.get('location') ?? '').searchParams.get('error'), 'invalid_target')
    const { code } = await authorizeCode(a.origin, cookie, { clientId, redirectUri: REDIRECT, challenge, resource: a.endpoint }, { projects: [projects.github] })
    const atToken = await tokenRequest(a.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId, resource: 'https://other.example.com/mcp' })
    t.equal(atToken.status, 400)
    t.equal(atToken.body.error, 'invalid_target')
  })

  await t.test('code replay: refused, and the grant it produced ends', async t => {
    const { challenge, verifier } = pkce()
    const { code } = await authorizeCode(a.origin, cookie, { clientId, redirectUri: REDIRECT, challenge }, { projects: [projects.github] })
    const fields = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId }
    const first = await tokenRequest(a.origin, fields)
    t.equal(first.status, 200)
    t.equal(await bearer(String(first.body.access_token)), 200)
    const again = await tokenRequest(a.origin, fields)
    t.equal(again.status, 400)
    t.equal(again.body.error, 'invalid_grant')
    t.equal(await bearer(String(first.body.access_token)), 401, 'whoever replayed it, the grant is over')
    const refresh = await tokenRequest(a.origin, { grant_type: 'refresh_token', refresh_token: String(first.body.refresh_token), client_id: clientId })
    t.equal(refresh.body.error, 'invalid_grant')
  })

  await t.test('a wrong PKCE verifier consumes the code', async t => {
    const { challenge, verifier } = pkce()
    const { code } = await authorizeCode(a.origin, cookie, { clientId, redirectUri: REDIRECT, challenge }, { projects: [projects.github] })
    const wrong = await tokenRequest(a.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pkce().verifier, client_id: clientId })
    t.equal(wrong.status, 400)
    t.equal(wrong.body.error, 'invalid_grant')
    const right = await tokenRequest(a.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId })
    t.equal(right.body.error, 'invalid_grant', 'no second guess')
    const none = await tokenRequest(a.origin, { grant_type: 'authorization_code', code: 'x'.repeat(43), redirect_uri: REDIRECT, client_id: clientId })
    t.equal(none.status, 400)
  })

  await t.test('the code is bound to its redirect URI and client', async t => {
    const { challenge, verifier } = pkce()
    const { code } = await authorizeCode(a.origin, cookie, { clientId, redirectUri: REDIRECT, challenge }, { projects: [projects.github] })
    const otherUri = await tokenRequest(a.origin, { grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:45679/elsewhere', code_verifier: verifier, client_id: clientId })
    t.equal(otherUri.status, 400)
    const second = pkce()
    const { code: code2 } = await authorizeCode(a.origin, cookie, { clientId, redirectUri: REDIRECT, challenge: second.challenge }, { projects: [projects.github] })
    const otherClient = await registeredClientId(a.origin, REDIRECT, 'Thief')
    const stolen = await tokenRequest(a.origin, { grant_type: 'authorization_code', code: code2, redirect_uri: REDIRECT, code_verifier: second.verifier, client_id: otherClient })
    t.equal(stolen.status, 400)
    t.equal(stolen.body.error, 'invalid_grant')
  })

  await t.test('an expired code (60 s) is refused', async t => {
    const { challenge, verifier } = pkce()
    const { code } = await authorizeCode(a.origin, cookie, { clientId, redirectUri: REDIRECT, challenge }, { projects: [projects.github] })
    // 61 seconds later: the clock moved in the table rather than in the test
    const { sql } = await import('kysely')
    await sql`UPDATE mcp_oauth_code SET expires_at = expires_at - interval '61 seconds' WHERE used_at IS NULL`.execute(a.database.db)
    const late = await tokenRequest(a.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId })
    t.equal(late.status, 400)
    t.equal(late.body.error, 'invalid_grant')
    t.match(late.body.error_description, /expired/)
  })

  await t.test('forged consent posts are refused', async t => {
    const { challenge } = pkce()
    const page = await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge }), cookie)
    const fields: Record<string, string> = { ...hiddenFields(await page.text()), project: projects.github, expires_days: '30', decision: 'allow' }
    const foreign = await postConsent(a.origin, fields, cookie, { origin: 'https://evil.example.com' })
    t.equal(foreign.status, 403)
    t.equal(foreign.headers.get('location'), null)
    const nullOrigin = await postConsent(a.origin, fields, cookie, { origin: 'null' })
    t.equal(nullOrigin.status, 403)
    const { consent_proof: _proof, ...noProof } = fields
    t.equal((await postConsent(a.origin, noProof, cookie)).status, 403, 'without the anti-forgery value')
    t.equal((await postConsent(a.origin, { ...fields, consent_proof: `${Date.now()}.forged` }, cookie)).status, 403)
    const otherUser = sessionCookie(await a.session(users.outsider))
    t.equal((await postConsent(a.origin, fields, otherUser)).status, 403, 'a page served to one user cannot be posted by another')
    t.equal((await postConsent(a.origin, { ...fields, state: 'changed' }, cookie)).status, 403, 'nor for another request')
    t.equal((await postConsent(a.origin, { ...fields, scope: 'mcp mcp:trigger', allow_trigger: 'true' }, cookie)).status, 403, 'nor with a widened scope')
    const ok = await postConsent(a.origin, fields, cookie)
    t.equal(ok.status, 302, 'the genuine post still works')
  })
})

t.test('the per-user cap is exact when consents run ahead of their exchanges (SPEC §13.5)', async t => {
  const a = await startOAuthApp(t, { env: { OAUTH_RATE_LIMIT_RPM: '1000', MCP_TOKEN_MAX_PER_USER: '2' } })
  const cookie = sessionCookie(await a.session(users.demo))
  const clientId = await registeredClientId(a.origin, REDIRECT)
  // five consents, one after another: each passes the page's check, since no grant exists until a code is exchanged
  const flows = []
  for (let i = 0; i < 5; i++) {
    const { challenge, verifier } = pkce()
    const { code } = await authorizeCode(a.origin, cookie, { clientId, redirectUri: REDIRECT, challenge }, { projects: [projects.github] })
    flows.push({ code, verifier })
  }
  const answers = await Promise.all(flows.map(async f => await tokenRequest(a.origin, { grant_type: 'authorization_code', code: f.code, redirect_uri: REDIRECT, code_verifier: f.verifier, client_id: clientId })))
  t.same(answers.map(r => r.status).sort(), [200, 200, 400, 400, 400], 'five codes exchanged at once: two grants, three refusals')
  for (const r of answers.filter(r => r.status === 400)) {
    t.equal(r.body.error, 'invalid_grant')
    t.match(r.body.error_description, /already has 2 live MCP tokens and grants/, 'the refusal says why')
  }
  const live = await a.database.db.selectFrom('mcp_token').select('token_id').where('user_id', '=', users.demo).where('revoked_at', 'is', null).execute()
  t.equal(live.length, 2, 'two live tokens')
  const grants = await a.database.db.selectFrom('mcp_oauth_grant').select('grant_id').where('user_id', '=', users.demo).execute()
  t.equal(grants.length, 2, 'two grants, no orphan from the refused exchanges')
  const rest = await fetch(`${a.endpoint}/tokens`, { method: 'POST', headers: { authorization: `Bearer ${await a.session(users.demo)}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'one more' }) })
  t.equal(rest.status, 409, 'a REST token counts the grants too: 409')
  const { challenge } = pkce()
  const page = await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge }), cookie)
  const sixth = await postConsent(a.origin, { ...hiddenFields(await page.text()), project: projects.github, expires_days: '30', decision: 'allow' }, cookie)
  t.equal(sixth.status, 409, 'a consent given at the cap is refused on the page itself')
  t.match(await sixth.text(), /already have 2 live MCP tokens and grants/, 'with the reason')
})

t.test('per-address budgets on the OAuth endpoints', async t => {
  const a = await startOAuthApp(t, { env: { OAUTH_REGISTER_RPM: '2' } })
  t.equal((await register(a.origin, { redirect_uris: [REDIRECT] })).status, 201)
  t.equal((await register(a.origin, { redirect_uris: [REDIRECT] })).status, 201)
  const third = await fetch(`${a.endpoint}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT] }) })
  t.equal(third.status, 429)
  t.ok(Number(third.headers.get('retry-after')) >= 1)
})

// ------------------------------------------------------------------ client ID metadata documents

interface DocServer { origin: string, server: Server, cert: string, requests: () => number }

/** An https server with a self-signed certificate for 127.0.0.1 serving the handlers below. */
async function documentServer (t: Test, routes: Record<string, (url: string) => { status?: number, headers?: Record<string, string>, body?: string, delayMs?: number }>): Promise<DocServer> {
  const dir = await mkdtemp(join(tmpdir(), 'cimd-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  const cert = await readFile(join(dir, 'cert.pem'), 'utf8')
  const key = await readFile(join(dir, 'key.pem'), 'utf8')
  let origin = ''
  let requests = 0
  const server = createServer({ cert, key }, (req, res) => {
    requests++
    const handler = routes[req.url ?? '']
    if (handler === undefined) { res.writeHead(404).end(); return }
    const answer = handler(origin)
    const send = (): void => { res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers }).end(answer.body ?? '') }
    if (answer.delayMs !== undefined) setTimeout(send, answer.delayMs).unref()
    else send()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  origin = `https://127.0.0.1:${address !== null && typeof address === 'object' ? address.port : 0}`
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return { origin, server, cert, requests: () => requests }
}

const documentOf = (clientId: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ client_id: clientId, client_name: 'Metadata Agent', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], ...extra })

async function pageFor (a: OAuthTestApp, cookie: string, clientId: string): Promise<Response> {
  return await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge: pkce().challenge }), cookie)
}

t.test('client ID metadata documents', async t => {
  const docs = await documentServer(t, {
    '/good.json': origin => ({ body: documentOf(`${origin}/good.json`) }),
    '/mismatch.json': origin => ({ body: documentOf(`${origin}/other.json`) }),
    '/big.json': origin => ({ body: documentOf(`${origin}/big.json`, { padding: 'x'.repeat(70 * 1024) }) }),
    '/slow.json': origin => ({ body: documentOf(`${origin}/slow.json`), delayMs: SLOW_MS }),
    '/redirect.json': () => ({ status: 302, headers: { location: 'https://169.254.169.254/latest/meta-data' } }),
    '/wrong-redirect.json': origin => ({ body: JSON.stringify({ client_id: `${origin}/wrong-redirect.json`, redirect_uris: ['http://evil.example.com/cb'] }) })
  })

  await t.test('public addresses only, by default', async t => {
    const a = await startOAuthApp(t)
    const cookie = sessionCookie(await a.session(users.demo))
    for (const [clientId, why] of [
      [`${docs.origin}/good.json`, /not a public address \(127\.0\.0\.1\)/],
      [`https://localhost:${new URL(docs.origin).port}/good.json`, /not a public address/],
      ['https://10.1.2.3/client.json', /not a public address \(10\.1\.2\.3\)/],
      ['https://192.168.0.10/client.json', /not a public address/],
      ['https://[::1]/client.json', /not a public address/],
      ['https://[fd00::1]/client.json', /not a public address/],
      ['https://169.254.169.254/client.json', /not a public address/],
      ['https://[::ffff:7f00:1]/client.json', /not a public address/]
    ] as const) {
      // refused by the address check before any connection: the reason says so (a connection would end in a fetch
      // error or the document's 5 s deadline), and the local document server was never asked
      const before = docs.requests()
      await refusedWithPage(t, await pageFor(a, cookie, clientId), why)
      t.equal(docs.requests(), before, `${clientId}: refused before any connection`)
    }
    await refusedWithPage(t, await pageFor(a, cookie, 'http://example.com/client.json'), /no client/)
  })

  await t.test('with OAUTH_CIMD_ALLOW_PRIVATE (a local https server): size, time, redirects and identity', async t => {
    const a = await startOAuthApp(t, { env: { OAUTH_CIMD_ALLOW_PRIVATE: 'true' }, oauth: { metadataDocumentCa: docs.cert, metadataDocumentTimeoutMs: 1000 } })
    const cookie = sessionCookie(await a.session(users.demo))
    const good = await pageFor(a, cookie, `${docs.origin}/good.json`)
    t.equal(good.status, 200)
    const html = await good.text()
    t.match(html, /Metadata Agent/)
    t.match(html, /Published at/, 'the page says where the client is published')

    const { challenge, verifier } = pkce()
    const { code } = await authorizeCode(a.origin, cookie, { clientId: `${docs.origin}/good.json`, redirectUri: REDIRECT, challenge }, { projects: [projects.github] })
    const issued = await tokenRequest(a.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: `${docs.origin}/good.json` })
    t.equal(issued.status, 200, 'a metadata-document client completes the flow')

    await refusedWithPage(t, await pageFor(a, cookie, `${docs.origin}/mismatch.json`), /another client_id/)
    await refusedWithPage(t, await pageFor(a, cookie, `${docs.origin}/big.json`), /larger than 65536 bytes/)
    const started = Date.now()
    await refusedWithPage(t, await pageFor(a, cookie, `${docs.origin}/slow.json`), /did not arrive within 1000 ms/)
    const waited = Date.now() - started
    t.ok(waited >= 1000 && waited < SLOW_MS, `gave up at the 1000 ms deadline (${waited} ms), before the document would have arrived`)
    await refusedWithPage(t, await pageFor(a, cookie, `${docs.origin}/redirect.json`), /redirects are not followed/)
    await refusedWithPage(t, await pageFor(a, cookie, `${docs.origin}/wrong-redirect.json`), /must use https, or http on a loopback address/)
    await refusedWithPage(t, await pageFor(a, cookie, `${docs.origin}/missing.json`), /HTTP 404/)
  })
})

t.test('the token and registration endpoints want their own body formats', async t => {
  const a = await startOAuthApp(t)
  const res = await fetch(`${a.endpoint}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'authorization_code' }) })
  t.equal(res.status, 400)
  t.equal((await res.json() as { error: string }).error, 'invalid_request')
  const unsupported = await tokenRequest(a.origin, { grant_type: 'password', client_id: 'x' })
  t.equal(unsupported.status, 400)
  const body = await fetch(`${a.endpoint}${'/oauth/register'}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' })
  t.equal(body.status, 400)
})
