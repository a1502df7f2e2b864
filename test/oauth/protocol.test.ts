// The OAuth server over HTTP as a client sees it: discovery, registration, consent, code, token, refresh, revocation, and the grant in the token list.
import t from 'tap'
import { FIXTURE } from '../../db/seed.js'
import { buildApp } from '../helpers/app.js'
import { hasValidChecksum } from '../../core/token.js'
import {
  authorizeCode, authorizeUrl, get, hiddenFields, MCP_PATH, pkce, postConsent, register, registeredClientId, sessionCookie,
  startOAuthApp, tokenRequest
} from '../helpers/oauth.js'
import { accessRows } from '../helpers/mcp.js'

const REDIRECT = 'http://127.0.0.1:45678/callback'
const { users, projects } = FIXTURE

t.test('OAuth on', async t => {
  const a = await startOAuthApp(t)
  const cookie = sessionCookie(await a.session(users.demo))
  const bearer = async (token: string, path = '/projects'): Promise<Response> =>
    await fetch(`${a.endpoint}${path}`, { headers: { authorization: `Bearer ${token}` } })

  await t.test('discovery documents and the 401 challenge', async t => {
    const prm = await (await fetch(`${a.origin}/.well-known/oauth-protected-resource${MCP_PATH}`)).json()
    t.same(prm, {
      resource: a.endpoint,
      authorization_servers: [`${a.endpoint}/oauth`],
      scopes_supported: ['mcp', 'mcp:trigger'],
      bearer_methods_supported: ['header'],
      resource_name: 'InfraBox MCP Gateway'
    })
    t.same(await (await fetch(`${a.origin}/.well-known/oauth-protected-resource`)).json(), prm, 'also without the path')
    const as = await (await fetch(`${a.origin}/.well-known/oauth-authorization-server${MCP_PATH}/oauth`)).json() as Record<string, unknown>
    t.equal(as.issuer, `${a.endpoint}/oauth`)
    t.equal(as.authorization_endpoint, `${a.endpoint}/oauth/authorize`)
    t.equal(as.token_endpoint, `${a.endpoint}/oauth/token`)
    t.equal(as.registration_endpoint, `${a.endpoint}/oauth/register`)
    t.equal(as.revocation_endpoint, `${a.endpoint}/oauth/revoke`)
    t.same(as.code_challenge_methods_supported, ['S256'])
    t.same(as.grant_types_supported, ['authorization_code', 'refresh_token'])
    t.same(as.response_types_supported, ['code'])
    t.ok((as.token_endpoint_auth_methods_supported as string[]).includes('none'))
    t.equal(as.client_id_metadata_document_supported, true)

    const missing = await fetch(a.endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    t.equal(missing.status, 401)
    t.equal(missing.headers.get('www-authenticate'), `Bearer realm="infrabox-mcp", resource_metadata="${a.origin}/.well-known/oauth-protected-resource${MCP_PATH}"`)
    const bad = await bearer('ib_mcp_' + '0'.repeat(48))
    t.equal(bad.status, 401)
    t.match(bad.headers.get('www-authenticate'), /error="invalid_token", resource_metadata="/)

    const openapi = await (await fetch(`${a.endpoint}/openapi.json`)).json() as { paths: Record<string, unknown> }
    t.ok(openapi.paths['/api/v1/mcp/oauth/token'] !== undefined && openapi.paths['/api/v1/mcp/oauth/authorize'] !== undefined, 'the OAuth endpoints are in the OpenAPI document')

    const withToken = await fetch(`${a.origin}/.well-known/oauth-protected-resource${MCP_PATH}`, { headers: { authorization: 'Bearer ib_mcp_' + 'a'.repeat(48) } })
    t.equal(withToken.status, 200, 'a client still carrying an ib_mcp_ token reaches the documents (no guard refusal)')
  })

  await t.test('registration: https or loopback http redirect URIs only', async t => {
    const ok = await register(a.origin, { client_name: 'Agent X', redirect_uris: ['http://localhost:1234/cb', 'https://agent.example.com/cb'], token_endpoint_auth_method: 'client_secret_basic' })
    t.equal(ok.status, 201)
    t.match(ok.body, { client_name: 'Agent X', token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] })
    t.match(ok.body.client_id, /^ibc_[0-9a-f]{32}$/)
    for (const uri of ['http://agent.example.com/cb', 'javascript:alert(1)', 'https://agent.example.com/cb#frag', 'not a url', 'http://10.0.0.1/cb']) {
      const refused = await register(a.origin, { redirect_uris: [uri] })
      t.equal(refused.status, 400, uri)
      t.equal(refused.body.error, 'invalid_redirect_uri', uri)
    }
    const noUris = await register(a.origin, { client_name: 'x' })
    t.equal(noUris.status, 400)
    t.equal(noUris.body.error, 'invalid_client_metadata')
    const implicit = await register(a.origin, { redirect_uris: [REDIRECT], response_types: ['token'] })
    t.equal(implicit.body.error, 'invalid_client_metadata')
  })

  const clientId = await registeredClientId(a.origin, REDIRECT, 'Claude Test')

  await t.test('without a session: a 302 to the login, never the consent', async t => {
    const { challenge } = pkce()
    const res = await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge }))
    t.equal(res.status, 401, 'no INFRABOX_LOGIN_URL here: a page telling the user to log in')
    t.match(res.headers.get('content-type'), /text\/html/)
  })

  await t.test('the consent page', async t => {
    const { challenge } = pkce()
    const res = await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge, scope: 'mcp mcp:trigger' }), cookie)
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /^text\/html/)
    t.equal(res.headers.get('cache-control'), 'no-store')
    const csp = res.headers.get('content-security-policy') ?? ''
    t.match(csp, /frame-ancestors 'none'/)
    t.notMatch(csp, /unsafe-inline/)
    t.match(csp, /form-action 'self' http:\/\/127\.0\.0\.1:45678/)
    const html = await res.text()
    t.match(html, /Claude Test/)
    t.match(html, /127\.0\.0\.1:45678/, 'the redirect host')
    for (const name of ['demo-github', 'demo-upload', 'demo-gerrit', 'demo-test']) t.match(html, name)
    t.notMatch(html, /public-elsewhere/, 'only projects the user collaborates on')
    t.notMatch(html, /checked/, 'nothing pre-checked')
    t.match(html, /name="allow_trigger"/, 'trigger offered when mcp:trigger was asked')
    t.match(html, /<label for="expires_days">/)
    t.match(html, /name="decision" value="allow"/)
    t.match(html, /name="decision" value="deny"/)
    t.notMatch(html, /<script/i)
    t.ok(hiddenFields(html).consent_proof, 'an anti-forgery value')

    const readOnly = await (await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge, scope: 'mcp' }), cookie)).text()
    t.notMatch(readOnly, /name="allow_trigger"/, 'no trigger checkbox when it was not asked for')
  })

  let refreshToken = ''
  let accessToken = ''
  let tokenId = ''

  await t.test('code → token → the chain accepts the ib_mcp_ token for the consented project only', async t => {
    const { verifier, challenge } = pkce()
    const { code, location } = await authorizeCode(a.origin, cookie, { clientId, redirectUri: REDIRECT, challenge, state: 'xyz', scope: 'mcp mcp:trigger' },
      { projects: [projects.github], expiresDays: 7, allowTrigger: true })
    t.equal(location.searchParams.get('state'), 'xyz')
    t.equal(location.searchParams.get('iss'), `${a.endpoint}/oauth`)
    const { status, body, headers } = await tokenRequest(a.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId, resource: a.endpoint })
    t.equal(status, 200, JSON.stringify(body))
    t.equal(headers.get('cache-control'), 'no-store')
    t.match(body, { token_type: 'Bearer', scope: 'mcp mcp:trigger' })
    t.match(body.access_token, /^ib_mcp_[0-9a-f]{48}$/)
    t.ok(hasValidChecksum(String(body.access_token)), 'minted like any gateway token (CRC-32 tail)')
    t.ok(Number(body.expires_in) > 3500 && Number(body.expires_in) <= 3600, 'one hour')
    t.match(body.refresh_token, /^ibmr_/)
    accessToken = String(body.access_token)
    refreshToken = String(body.refresh_token)
    tokenId = accessToken.slice(7, 23)

    t.equal((await bearer(accessToken)).status, 200)
    t.equal((await bearer(accessToken, `/projects/${projects.github}/builds`)).status, 200)
    t.equal((await bearer(accessToken, `/projects/${projects.upload}/builds`)).status, 403, 'a project not consented')
    const trigger = await fetch(`${a.endpoint}/projects/${projects.github}/trigger`, {
      method: 'POST', headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ branch: 'main' })
    })
    t.equal(trigger.status, 201, 'the trigger right was consented')

    const list = await a.app.inject({ method: 'GET', url: `${MCP_PATH}/tokens/`, headers: { cookie } })
    const entries = list.json() as Array<Record<string, unknown>>
    const entry = entries.find(e => e.token_id === tokenId)
    t.ok(entry, 'the grant is one entry of GET /tokens')
    t.match(entry, {
      name: 'Claude Test',
      enabled_projects: { [projects.github]: null },
      allow_trigger: true,
      oauth_grant: { client_id: clientId, client_name: 'Claude Test', client_kind: 'registered', scope: 'mcp mcp:trigger' }
    })
    const days = (Date.parse(String(entry?.expires_at)) - Date.now()) / 86_400_000
    t.ok(days > 6.9 && days <= 7, 'the entry shows the grant\'s expiry, not the hour of its access token')
  })

  await t.test('refresh: rotated on every use, the entry stays one; a used refresh token ends the whole grant', async t => {
    const first = await tokenRequest(a.origin, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId })
    t.equal(first.status, 200, JSON.stringify(first.body))
    const access2 = String(first.body.access_token)
    const refresh2 = String(first.body.refresh_token)
    t.not(access2, accessToken)
    t.not(refresh2, refreshToken)
    t.equal(access2.slice(7, 23), tokenId, 'the same entry: the token id stays, the secret changes')
    t.ok(hasValidChecksum(access2))
    t.equal((await bearer(accessToken)).status, 401, 'the previous access token stops at once')
    t.equal((await bearer(access2)).status, 200)
    const list = (await a.app.inject({ method: 'GET', url: `${MCP_PATH}/tokens`, headers: { cookie } })).json() as Array<{ token_id: string }>
    t.equal(list.filter(e => e.token_id === tokenId).length, 1, 'still one entry')

    const otherClient = await registeredClientId(a.origin, REDIRECT, 'Other')
    const wrongClient = await tokenRequest(a.origin, { grant_type: 'refresh_token', refresh_token: refresh2, client_id: otherClient })
    t.equal(wrongClient.status, 400)
    t.equal(wrongClient.body.error, 'invalid_grant', 'a refresh token is bound to its client')

    const reuse = await tokenRequest(a.origin, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId })
    t.equal(reuse.status, 400)
    t.equal(reuse.body.error, 'invalid_grant')
    t.equal((await bearer(access2)).status, 401, 'reuse ended the access token')
    const after = await tokenRequest(a.origin, { grant_type: 'refresh_token', refresh_token: refresh2, client_id: clientId })
    t.equal(after.body.error, 'invalid_grant', 'and the current refresh token')
    const rows = (await accessRows(a.app, a.database.db)).filter(r => r.action === 'oauth_token' && r.token_id === tokenId)
    t.ok(rows.some(r => r.outcome === 'bad_request' && JSON.stringify(r.details).includes('refresh_token_reuse')), 'the reuse is in the audit log')
  })

  await t.test('DELETE /tokens/:id ends a grant: access and refresh', async t => {
    const { verifier, challenge } = pkce()
    const { code } = await authorizeCode(a.origin, cookie, { clientId, redirectUri: REDIRECT, challenge }, { projects: [projects.github] })
    const issued = await tokenRequest(a.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId })
    const access = String(issued.body.access_token)
    t.equal(issued.body.scope, 'mcp')
    const del = await a.app.inject({ method: 'DELETE', url: `${MCP_PATH}/tokens/${access.slice(7, 23)}`, headers: { authorization: `Bearer ${await a.session(users.demo)}` } })
    t.equal(del.statusCode, 200)
    t.equal((await bearer(access)).status, 401)
    const refresh = await tokenRequest(a.origin, { grant_type: 'refresh_token', refresh_token: String(issued.body.refresh_token), client_id: clientId })
    t.equal(refresh.body.error, 'invalid_grant')
  })

  await t.test('revocation (RFC 7009): the refresh token ends the grant; unknown tokens answer 200', async t => {
    const { verifier, challenge } = pkce()
    const { code } = await authorizeCode(a.origin, cookie, { clientId, redirectUri: REDIRECT, challenge }, { projects: [projects.github] })
    const issued = await tokenRequest(a.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId })
    const revoke = async (fields: Record<string, string>): Promise<Response> => await fetch(`${a.endpoint}/oauth/revoke`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString()
    })
    t.equal((await revoke({ token: 'ibmr_nothing', client_id: clientId })).status, 200)
    t.equal((await revoke({ token: String(issued.body.refresh_token), client_id: 'ibc_someoneelse' })).status, 200)
    t.equal((await bearer(String(issued.body.access_token))).status, 200, 'another client cannot revoke it')
    t.equal((await revoke({ token: String(issued.body.refresh_token), client_id: clientId })).status, 200)
    t.equal((await bearer(String(issued.body.access_token))).status, 401)
    const rows = (await accessRows(a.app, a.database.db)).filter(r => r.action === 'oauth_revoke')
    t.ok(rows.some(r => r.token_id === String(issued.body.access_token).slice(7, 23) && r.outcome === 'success'))
    t.equal((await revoke({ client_id: clientId })).status, 400)
  })

  await t.test('revocation (RFC 7009) by the access token: the grant ends with it; a forged one of the same id does nothing', async t => {
    const { verifier, challenge } = pkce()
    const { code } = await authorizeCode(a.origin, cookie, { clientId, redirectUri: REDIRECT, challenge }, { projects: [projects.github] })
    const issued = await tokenRequest(a.origin, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId })
    const access = String(issued.body.access_token)
    const revoke = async (token: string): Promise<Response> => await fetch(`${a.endpoint}/oauth/revoke`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, client_id: clientId }).toString()
    })
    // the same token id with another secret: the hash does not match, nothing is revoked
    const forged = `${access.slice(0, 24)}${access.slice(24).split('').reverse().join('')}`
    t.equal((await revoke(forged)).status, 200, 'a forged access token: 200, as RFC 7009 wants')
    t.equal((await revoke('ib_mcp_not-a-token')).status, 200, 'a malformed one: 200')
    t.equal((await bearer(access)).status, 200, 'neither revoked the real token')
    t.equal((await revoke(access)).status, 200)
    t.equal((await bearer(access)).status, 401, 'the access token stops working')
    const refresh = await tokenRequest(a.origin, { grant_type: 'refresh_token', refresh_token: String(issued.body.refresh_token), client_id: clientId })
    t.equal(refresh.body.error, 'invalid_grant', 'and its grant is over: the refresh token no longer renews it')
  })

  await t.test('deny: access_denied back to the client, audited as forbidden', async t => {
    const { challenge } = pkce()
    const page = await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge, state: 'd1' }), cookie)
    const res = await postConsent(a.origin, { ...hiddenFields(await page.text()), decision: 'deny' }, cookie)
    t.equal(res.status, 302)
    const location = new URL(res.headers.get('location') ?? '')
    t.equal(location.origin + location.pathname, REDIRECT)
    t.equal(location.searchParams.get('error'), 'access_denied')
    t.equal(location.searchParams.get('state'), 'd1')
    t.equal(location.searchParams.get('code'), null)
    const rows = (await accessRows(a.app, a.database.db)).filter(r => r.action === 'oauth_consent')
    t.ok(rows.some(r => r.outcome === 'forbidden' && r.user_id === users.demo))
    t.ok(rows.some(r => r.outcome === 'success'))
    const registrations = (await accessRows(a.app, a.database.db)).filter(r => r.action === 'oauth_register')
    t.ok(registrations.length >= 3)
  })

  await t.test('consent without a project is shown again, not granted', async t => {
    const { challenge } = pkce()
    const page = await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge }), cookie)
    const res = await postConsent(a.origin, { ...hiddenFields(await page.text()), expires_days: '30', decision: 'allow' }, cookie)
    t.equal(res.status, 400)
    t.match(await res.text(), /Choose at least one project/)
    const foreign = await postConsent(a.origin, { ...hiddenFields(await (await get(authorizeUrl(a.origin, { clientId, redirectUri: REDIRECT, challenge }), cookie)).text()), project: projects.public, expires_days: '30', decision: 'allow' }, cookie)
    t.equal(foreign.status, 403, 'a project the user does not collaborate on')
  })
})

t.test('OAuth off (no PUBLIC_BASE_URL): 404s on discovery, plain 401 challenge', async t => {
  const a = await buildApp(t)
  for (const url of ['/.well-known/oauth-protected-resource/api/v1/mcp', '/.well-known/oauth-authorization-server/api/v1/mcp/oauth', '/api/v1/mcp/oauth/register']) {
    const res = await a.app.inject({ method: url.endsWith('register') ? 'POST' : 'GET', url, headers: { authorization: 'Bearer ib_mcp_' + 'b'.repeat(48) } })
    t.equal(res.statusCode, 404, url)
  }
  const res = await a.app.inject({ method: 'GET', url: '/api/v1/mcp/projects' })
  t.equal(res.headers['www-authenticate'], 'Bearer realm="infrabox-mcp"')
})
