// The authorization server's endpoints under <prefix>/oauth: authorize + consent, token, register, revoke, and the demo login.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import OAuth2Server from '@node-oauth/oauth2-server'
import { Type } from '@fastify/type-provider-typebox'
import auditStep from '../plugins/audit.js'
import { errorHandler } from '../plugins/errors.js'
import { spendBudget } from '../core/budget.js'
import { hashToken, isWellFormedToken, sameHash, tokenIdOf } from '../core/token.js'
import type { SessionUser } from '../core/session.js'
import { collaborationsOf, displayNameOf, endGrant, findRefreshToken, grantByTokenId, oauthFormKey, type GrantState } from '../db/oauth.js'
import { countLiveEntries } from '../db/tokens.js'
import { ConsentForm, OAuthErrorBody, RegisteredClient, RevokeRequest, TokenRequest, TokenResponse } from '../schemas/oauth.js'
import {
  AuthorizationPageError, AuthorizationRedirectError, checkAuthorizationRequest, consentProof, consentProofValid, errorRedirect,
  sameResource, type AuthorizationRequest, type Fields
} from './authorization-request.js'
import { ClientError, registerClient } from './clients.js'
import { allowAnyOrigin } from './discovery.js'
import { mcpRouteConfig, type RouteDocument } from '../core/route-config.js'
import { ConsentingUser, grantModel, newExchangeReport, refreshTokenHash, type Consent } from './model.js'
import { consentPage, demoLoginPage, errorPage, pageSecurityPolicy } from './pages.js'
import { oauthUrls, TRIGGER_SCOPE, type OAuthSettings } from './settings.js'

export interface McpOAuthOptions { settings: OAuthSettings }

const FORM = 'application/x-www-form-urlencoded'
const DAY_MS = 86_400_000
const EXPIRY_CHOICES = [1, 7, 30, 90, 365]

/** A form body: a field sent once is a string, a repeated one (the project checkboxes) an array. */
function parseForm (text: string): Fields {
  const fields: Record<string, string | string[]> = {}
  for (const [name, value] of new URLSearchParams(text)) {
    const had = fields[name]
    fields[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value]
  }
  return fields
}

const fieldsOf = (value: unknown): Fields => (typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Fields : {})
const one = (fields: Fields, name: string): string | null => { const v = fields[name]; return typeof v === 'string' ? v : null }
const all = (fields: Fields, name: string): string[] => { const v = fields[name]; return v === undefined ? [] : Array.isArray(v) ? v : [v] }

export function oauthError (statusCode: number, error: string, description: string): OAuthErrorBody {
  return { error, error_description: description, statusCode, code: error, message: description }
}

/** Headers as the library reads them (lower-case, one value each). */
function flatHeaders (request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}

async function sendPage (reply: FastifyReply, status: number, html: string, formTargets: string[] = []): Promise<FastifyReply> {
  return await reply.code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .header('content-security-policy', pageSecurityPolicy(formTargets))
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    // same-origin, not no-referrer: with no-referrer the browser sends `Origin: null` on the consent post, which is refused
    .header('referrer-policy', 'same-origin')
    .send(html)
}

const redirectOrigin = (uri: string): string => new URL(uri).origin

const PAGE = { 'text/html': { type: 'string' } }
const AUTHORIZE_DOCUMENT: RouteDocument = {
  responses: {
    200: { description: 'The consent page (with an InfraBox session)', content: PAGE },
    302: { description: 'To the InfraBox login (no session yet), or back to the client\'s redirect URI with an OAuth error (a bad request from a known client)', headers: ['Location'] },
    400: { description: 'A page: an unknown client or a redirect URI it did not register (never a redirect)', content: PAGE },
    401: { description: 'A page asking to log in to InfraBox first (no session, and no INFRABOX_LOGIN_URL to send the browser to)', content: PAGE }
  }
}
const CONSENT_DOCUMENT: RouteDocument = {
  body: { description: 'The consent page\'s form: the authorization request\'s fields, its anti-forgery value, the choices and the decision', content: { [FORM]: ConsentForm } },
  responses: {
    302: { description: 'To the client\'s redirect URI: with code, state and iss (allow), or error=access_denied (deny)', headers: ['Location'] },
    400: { description: 'A page: the authorization request is bad, no project was chosen, or the lifetime is out of range', content: PAGE },
    401: { description: 'A page: the InfraBox session ended', content: PAGE },
    403: { description: 'A page: the form came from a foreign Origin or without a valid anti-forgery value, or names a project you do not collaborate on', content: PAGE },
    409: { description: 'A page: you already have MCP_TOKEN_MAX_PER_USER live tokens and grants', content: PAGE }
  }
}

export async function mcpOAuth (fastify: FastifyInstance, opts: McpOAuthOptions): Promise<void> {
  const { settings } = opts
  const services = fastify.mcpGateway
  const db = services.db
  let formKey: Promise<string> | null = null
  const key = async (): Promise<string> => {
    formKey ??= oauthFormKey(db).catch((err: unknown) => { formKey = null; throw err })
    return await formKey
  }

  fastify.addHook('onRoute', (route) => { route.config = { ...route.config, mcp: { oauth: 'json', ...route.config?.mcp } } })
  // Form bodies for this scope only: the host's parsers and the rest of the gateway are untouched.
  fastify.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => {
    done(null, parseForm(typeof body === 'string' ? body : body.toString('utf8')))
  })
  await fastify.register(auditStep, { fallbackAction: 'oauth_request' })

  fastify.setErrorHandler(async (thrown: unknown, request, reply) => {
    const err = thrown instanceof Error ? thrown : new Error(String(thrown))
    if (request.routeOptions.config.mcp?.oauth !== 'page') { errorHandler(err, request, reply); return reply }
    const { statusCode, headers } = err as { statusCode?: unknown, headers?: Record<string, string> }
    const status = typeof statusCode === 'number' ? statusCode : 500
    if (status >= 500) request.log.error({ err }, 'OAuth page failed')
    void reply.headers(headers ?? {})
    return await sendPage(reply, status >= 400 && status < 600 ? status : 500, errorPage(status === 429 ? 'Too many attempts' : 'Something went wrong',
      status === 429 ? 'Too many authorization attempts from your address; wait a minute and try again.' : status >= 500 ? 'The gateway could not complete this step; try again shortly.' : err.message))
  })

  // Per client address, not per user: most of these requests come before anyone is known.
  fastify.addHook('onRequest', async (request, reply) => {
    const { bucket, rpm } = request.routeOptions.config.mcp ?? {}
    if (bucket === undefined || rpm === undefined) return
    const { headers } = await spendBudget(services, `ip:${request.ip}`, { bucket, rpm })
    void reply.headers(headers)
  })

  // ------------------------------------------------------------------ authorize: the consent page and its post

  async function renderConsent (reply: FastifyReply, user: SessionUser, r: AuthorizationRequest, status = 200, problem?: string, checked?: Set<string>): Promise<FastifyReply> {
    const [projects, userName, secret] = await Promise.all([collaborationsOf(db, user.id), displayNameOf(db, user.id), key()])
    const expiryChoices = [...new Set([...EXPIRY_CHOICES.filter(d => d <= settings.maxExpiryDays), settings.maxExpiryDays])].sort((a, b) => a - b)
    const hidden: Record<string, string> = {
      response_type: 'code',
      client_id: r.client.clientId,
      redirect_uri: r.redirectUri,
      code_challenge: r.codeChallenge,
      code_challenge_method: 'S256',
      scope: r.scopes.join(' '),
      ...(r.state !== null ? { state: r.state } : {}),
      ...(r.resource !== null ? { resource: r.resource } : {}),
      consent_proof: consentProof(secret, user.id, r, Date.now())
    }
    return await sendPage(reply, status, consentPage({
      clientName: r.client.name,
      clientId: r.client.clientId,
      clientKind: r.client.kind,
      redirectHost: new URL(r.redirectUri).host,
      userName,
      projects,
      triggerAsked: r.scopes.includes(TRIGGER_SCOPE),
      expiryChoices,
      defaultExpiryDays: expiryChoices.includes(30) ? 30 : settings.maxExpiryDays,
      hidden,
      action: `${settings.prefix}/oauth/authorize`,
      ...(problem !== undefined ? { problem } : {}),
      ...(checked !== undefined ? { checked } : {})
    }), [redirectOrigin(r.redirectUri)])
  }

  /** Checks the request's client and redirect URI; answers the page or the error redirect itself when they fail. */
  async function authorizationRequest (fields: Fields, reply: FastifyReply): Promise<AuthorizationRequest | null> {
    try {
      return await checkAuthorizationRequest(db, settings, fields, new Date())
    } catch (err) {
      if (err instanceof AuthorizationPageError) {
        await sendPage(reply, 400, errorPage('This sign-in request cannot be completed', err.message))
        return null
      }
      if (err instanceof AuthorizationRedirectError) {
        await reply.redirect(errorRedirect(err, oauthUrls(settings).issuer), 302)
        return null
      }
      throw err
    }
  }

  fastify.get('/authorize', {
    // no querystring schema: a bad request is answered with a page (or an error redirect), never Fastify's 400
    schema: { summary: 'Authorization endpoint: the consent page (HTML)', operationId: 'oauth_authorize', security: [{ session: [] }, {}] },
    config: mcpRouteConfig({ audit: false, bucket: 'oauth', rpm: settings.rpm, oauth: 'page', openapi: AUTHORIZE_DOCUMENT })
  }, async (request, reply) => {
    const r = await authorizationRequest(fieldsOf(request.query), reply)
    if (r === null) return reply
    const user = await services.authenticateSession(request)
    if (user !== null) return await renderConsent(reply, user, r)
    const returnTo = request.url
    if (settings.demoSessionToken !== null) {
      return await reply.redirect(`${settings.prefix}/oauth/login?return_to=${encodeURIComponent(returnTo)}`, 302)
    }
    if (settings.loginUrl !== null) {
      const back = `${settings.baseUrl()}${returnTo}`
      const target = settings.loginUrl.includes('{return_to}')
        ? settings.loginUrl.replace('{return_to}', encodeURIComponent(back))
        : (() => { const u = new URL(settings.loginUrl); u.searchParams.set('return_to', back); return u.toString() })()
      return await reply.redirect(target, 302)
    }
    return await sendPage(reply, 401, errorPage('Log in to InfraBox first', 'Log in to InfraBox in this browser, then start connecting again from your application.'))
  })

  fastify.post('/authorize', {
    schema: { summary: 'Consent decision (form post of the consent page)', security: [{ session: [] }] },
    config: mcpRouteConfig({ action: 'oauth_consent', bucket: 'oauth', rpm: settings.rpm, oauth: 'page', openapi: CONSENT_DOCUMENT })
  }, async (request, reply) => {
    const fields = fieldsOf(request.body)
    // The consent must come from the page this gateway served: same origin, and the page's own anti-forgery value.
    const expectedOrigin = new URL(settings.baseUrl()).origin
    const origin = request.headers.origin
    if (origin !== undefined && origin !== expectedOrigin) {
      request.mcpAudit.error = `consent posted from a foreign origin ${origin.slice(0, 200)}`
      return await sendPage(reply, 403, errorPage('Request refused', 'This consent was not sent from InfraBox\'s own page, so it was refused. Nothing was granted.'))
    }
    const r = await authorizationRequest(fields, reply)
    if (r === null) return reply
    request.mcpAudit.details = { client_id: r.client.clientId, client_name: r.client.name, redirect_uri: r.redirectUri }
    const user = await services.authenticateSession(request)
    if (user === null) {
      return await sendPage(reply, 401, errorPage('Your InfraBox session ended', 'Log in to InfraBox again, then start connecting again from your application. Nothing was granted.'))
    }
    request.mcpAudit.userId = user.id
    const proof = one(fields, 'consent_proof')
    if (proof === null || !consentProofValid(await key(), user.id, r, proof, Date.now(), settings.consentTtlSeconds)) {
      request.mcpAudit.error = 'consent posted without a valid anti-forgery value'
      return await sendPage(reply, 403, errorPage('Request refused', 'This consent form is not the one InfraBox showed you, or it has expired. Start connecting again from your application. Nothing was granted.'))
    }
    const issuer = oauthUrls(settings).issuer
    const decision = one(fields, 'decision')
    if (decision !== 'allow') {
      request.mcpAudit.outcome = 'forbidden'
      request.mcpAudit.details = { ...request.mcpAudit.details, decision: 'deny' }
      return await reply.redirect(errorRedirect(new AuthorizationRedirectError(r.redirectUri, 'access_denied', 'the user denied access', r.state), issuer), 302)
    }

    const mine = new Set((await collaborationsOf(db, user.id)).map(p => p.id))
    const chosen = [...new Set(all(fields, 'project').map(id => id.toLowerCase()))]
    if (chosen.length === 0) return await renderConsent(reply, user, r, 400, 'Choose at least one project, or deny.')
    if (chosen.some(id => !mine.has(id))) {
      return await renderConsent(reply, user, r, 403, 'One of the chosen projects is not one you collaborate on; choose again.', new Set(chosen.filter(id => mine.has(id))))
    }
    const days = Number(one(fields, 'expires_days'))
    if (!Number.isInteger(days) || days < 1 || days > settings.maxExpiryDays) {
      return await renderConsent(reply, user, r, 400, `Choose how long access lasts: 1 to ${settings.maxExpiryDays} days.`, new Set(chosen))
    }
    const now = new Date()
    if (await countLiveEntries(db, user.id, now) >= services.tokenPolicy.maxPerUser) {
      return await renderConsent(reply, user, r, 409, `You already have ${services.tokenPolicy.maxPerUser} live MCP tokens and grants; end one in InfraBox first.`, new Set(chosen))
    }
    const allowTrigger = r.scopes.includes(TRIGGER_SCOPE) && one(fields, 'allow_trigger') === 'true'
    const consent: Consent = {
      userId: user.id,
      enabledProjects: Object.fromEntries(chosen.map(id => [id, null])),
      allowTrigger,
      grantExpiresAt: new Date(now.getTime() + days * DAY_MS),
      resource: r.resource
    }
    const scope = allowTrigger ? ['mcp', TRIGGER_SCOPE] : ['mcp']
    const libRequest = new OAuth2Server.Request({
      method: 'POST',
      headers: {},
      query: {},
      body: {
        client_id: r.client.clientId,
        redirect_uri: r.redirectUri,
        response_type: 'code',
        scope: scope.join(' '),
        code_challenge: r.codeChallenge,
        code_challenge_method: 'S256',
        ...(r.state !== null ? { state: r.state } : {})
      }
    })
    const libResponse = new OAuth2Server.Response()
    await new OAuth2Server({ model: grantModel(db, settings, newExchangeReport(), services.tokenPolicy.maxPerUser) }).authorize(libRequest, libResponse, {
      authenticateHandler: { handle: () => new ConsentingUser(consent) },
      allowEmptyState: true,
      authorizationCodeLifetime: settings.codeTtlSeconds
    })
    const location = libResponse.get('location')
    if (typeof location !== 'string') throw new Error('the authorization produced no redirect')
    request.mcpAudit.details = { ...request.mcpAudit.details, decision: 'allow', projects: chosen, allow_trigger: allowTrigger, expires_days: days, scope: scope.join(' ') }
    const url = new URL(location)
    url.searchParams.set('iss', issuer)
    return await reply.redirect(url.toString(), 302)
  })

  // ------------------------------------------------------------------ token

  fastify.options('/token', { schema: { hide: true }, config: mcpRouteConfig({ audit: false }) }, async (_request, reply) => await allowAnyOrigin(reply).code(204).send())
  fastify.post('/token', {
    schema: {
      summary: 'Token endpoint: exchange a code (PKCE S256) or rotate a refresh token; the access token is an ib_mcp_ token',
      consumes: [FORM],
      body: TokenRequest,
      response: { 200: TokenResponse, 400: OAuthErrorBody, 401: OAuthErrorBody },
      security: []
    },
    attachValidation: true,
    config: mcpRouteConfig({
      action: 'oauth_token',
      bucket: 'oauth',
      rpm: settings.rpm,
      refusals: {
        400: 'OAuth error: invalid_request (a field missing or malformed), invalid_grant (a code or refresh token that is unknown, used, expired, or bound to another client, redirect URI or PKCE verifier; a refresh token presented twice ends the grant), unsupported_grant_type, invalid_target (a resource other than the MCP endpoint)',
        401: 'OAuth error invalid_client: the client is unknown'
      }
    })
  }, async (request, reply) => {
    allowAnyOrigin(reply).header('cache-control', 'no-store').header('pragma', 'no-cache')
    const fields = fieldsOf(request.body)
    const grantType = one(fields, 'grant_type')
    request.mcpAudit.details = { grant_type: grantType, client_id: one(fields, 'client_id') }
    const refuse = async (status: 400 | 401, error: string, description: string): Promise<FastifyReply> => {
      request.mcpAudit.error = `${error}: ${description}`
      return await reply.code(status).send(oauthError(status, error, description))
    }
    if (request.validationError !== undefined) return await refuse(400, 'invalid_request', request.validationError.message)
    const resource = one(fields, 'resource')
    if (resource !== null && !sameResource(resource, oauthUrls(settings).resource)) {
      return await refuse(400, 'invalid_target', `this server issues tokens for ${oauthUrls(settings).resource} only`)
    }
    const report = newExchangeReport()
    const libResponse = new OAuth2Server.Response()
    try {
      await new OAuth2Server({ model: grantModel(db, settings, report, services.tokenPolicy.maxPerUser) }).token(
        new OAuth2Server.Request({ method: 'POST', headers: flatHeaders(request), query: {}, body: fields }),
        libResponse,
        {
          accessTokenLifetime: settings.accessTokenTtlSeconds,
          refreshTokenLifetime: settings.maxExpiryDays * 86_400,
          requireClientAuthentication: { authorization_code: false, refresh_token: false },
          alwaysIssueNewRefreshToken: true
        })
    } catch (err) {
      if (!(err instanceof OAuth2Server.OAuthError)) throw err
      Object.assign(request.mcpAudit, { tokenId: report.tokenId, userId: report.userId })
      if (report.event !== null) request.mcpAudit.details = { ...fieldsAudit(fields), grant_ended: report.event }
      const challenge = libResponse.get('www-authenticate')
      if (typeof challenge === 'string') void reply.header('www-authenticate', challenge)
      if (err.code >= 500) throw err
      return await refuse(err.code === 401 ? 401 : 400, err.name, err.message)
    }
    Object.assign(request.mcpAudit, { tokenId: report.tokenId, userId: report.userId })
    request.mcpAudit.details = { ...fieldsAudit(fields), grant_id: report.grantId }
    return await reply.send(libResponse.body)
  })

  const fieldsAudit = (fields: Fields): Record<string, string | null> => ({ grant_type: one(fields, 'grant_type'), client_id: one(fields, 'client_id') })

  // ------------------------------------------------------------------ register (RFC 7591)

  fastify.options('/register', { schema: { hide: true }, config: mcpRouteConfig({ audit: false }) }, async (_request, reply) => await allowAnyOrigin(reply).code(204).send())
  fastify.post('/register', {
    schema: {
      summary: 'Dynamic client registration (RFC 7591); every client is public and uses PKCE',
      body: Type.Unknown(),
      response: { 201: RegisteredClient, 400: OAuthErrorBody },
      security: []
    },
    config: mcpRouteConfig({
      action: 'oauth_register',
      bucket: 'oauth_register',
      rpm: settings.registerRpm,
      refusals: { 400: 'OAuth error invalid_redirect_uri (not https, nor http on a loopback address) or invalid_client_metadata' }
    })
  }, async (request, reply) => {
    allowAnyOrigin(reply).header('cache-control', 'no-store')
    try {
      const registered = await registerClient(db, request.body)
      const c = registered.client
      request.mcpAudit.details = { client_id: c.clientId, client_name: c.name, redirect_uris: c.redirectUris }
      return await reply.code(201).send({
        client_id: c.clientId,
        client_id_issued_at: registered.issuedAt,
        client_name: c.name,
        redirect_uris: c.redirectUris,
        grant_types: registered.grantTypes,
        response_types: ['code'],
        token_endpoint_auth_method: 'none' as const,
        scope: registered.scope
      })
    } catch (err) {
      if (!(err instanceof ClientError)) throw err
      request.mcpAudit.error = err.message
      return await reply.code(400).send(oauthError(400, err.oauthError, err.message))
    }
  })

  // ------------------------------------------------------------------ revoke (RFC 7009)

  fastify.options('/revoke', { schema: { hide: true }, config: mcpRouteConfig({ audit: false }) }, async (_request, reply) => await allowAnyOrigin(reply).code(204).send())
  fastify.post('/revoke', {
    schema: {
      summary: 'Token revocation (RFC 7009): an access or refresh token ends its whole grant',
      consumes: [FORM],
      body: RevokeRequest,
      response: { 200: Type.Object({}), 400: OAuthErrorBody },
      security: []
    },
    attachValidation: true,
    config: mcpRouteConfig({ action: 'oauth_revoke', bucket: 'oauth', rpm: settings.rpm, refusals: { 400: 'OAuth error invalid_request: token and client_id are required' } })
  }, async (request, reply) => {
    allowAnyOrigin(reply).header('cache-control', 'no-store')
    const fields = fieldsOf(request.body)
    const token = one(fields, 'token')
    const clientId = one(fields, 'client_id')
    if (request.validationError !== undefined || token === null || clientId === null) {
      request.mcpAudit.error = 'token and client_id are required'
      return await reply.code(400).send(oauthError(400, 'invalid_request', 'send token and client_id (form-encoded)'))
    }
    request.mcpAudit.details = { client_id: clientId, token_type_hint: one(fields, 'token_type_hint') }
    const grant = await grantOfToken(token)
    // RFC 7009 §2.2: an unknown token, or one issued to another client, changes nothing and is still answered 200.
    if (grant !== null && grant.clientId === clientId) {
      Object.assign(request.mcpAudit, { tokenId: grant.tokenId, userId: grant.userId })
      await endGrant(db, grant, 'revoked_by_client', new Date())
      request.mcpAudit.details = { ...request.mcpAudit.details, grant_id: grant.grantId, ended: true }
    } else {
      request.mcpAudit.details = { ...request.mcpAudit.details, ended: false }
    }
    return await reply.code(200).send({})
  })

  /** The grant an access token (its full value, not only its id) or a refresh token belongs to. */
  async function grantOfToken (token: string): Promise<GrantState | null> {
    const refreshHash = refreshTokenHash(token)
    if (refreshHash !== null) return (await findRefreshToken(db, refreshHash))?.grant ?? null
    if (!isWellFormedToken(token)) return null
    const grant = await grantByTokenId(db, tokenIdOf(token))
    return grant !== undefined && grant.tokenHash !== null && sameHash(grant.tokenHash, hashToken(token)) ? grant : null
  }

  // ------------------------------------------------------------------ demo login (embedded demo only)

  const demoSession = settings.demoSessionToken
  if (demoSession !== null) {
    const authorizePath = `${settings.prefix}/oauth/authorize?`
    const safeReturn = (value: string | null): string => value !== null && value.startsWith(authorizePath) ? value : `${settings.prefix}/oauth/authorize`
    fastify.get('/login', {
      schema: { hide: true },
      config: mcpRouteConfig({ audit: false, bucket: 'oauth', rpm: settings.rpm, oauth: 'page' })
    }, async (request, reply) => await sendPage(reply, 200, demoLoginPage(`${settings.prefix}/oauth/login`, safeReturn(one(fieldsOf(request.query), 'return_to')))))
    fastify.post('/login', {
      schema: { hide: true },
      config: mcpRouteConfig({ audit: false, bucket: 'oauth', rpm: settings.rpm, oauth: 'page' })
    }, async (request, reply) => {
      const origin = request.headers.origin
      if (origin !== undefined && origin !== new URL(settings.baseUrl()).origin) {
        return await sendPage(reply, 403, errorPage('Request refused', 'This login was not sent from the gateway\'s own page.'))
      }
      const secure = settings.baseUrl().startsWith('https:') ? '; Secure' : ''
      return await reply
        .header('set-cookie', `token=${demoSession}; Path=/; HttpOnly; SameSite=Lax${secure}`)
        .header('cache-control', 'no-store')
        .redirect(safeReturn(one(fieldsOf(request.body), 'return_to')), 303)
    })
  }
}

export default mcpOAuth
