// An authorization request, checked in the order RFC 6749 §4.1.2.1 asks: client and redirect URI first (else a 400 page), then the rest (else an error redirect).
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import { ClientError, matchesRedirectUri, resolveClient, type OAuthClient } from './clients.js'
import { oauthUrls, SCOPES, type OAuthSettings } from './settings.js'

/** Form and query fields as parsed: a repeated field is an array. */
export type Fields = Record<string, string | string[] | undefined>

export interface AuthorizationRequest {
  client: OAuthClient
  redirectUri: string
  codeChallenge: string
  state: string | null
  /** what the client asked for, known scopes only ("mcp" always) */
  scopes: string[]
  resource: string | null
}

/** The request cannot be trusted to name where to send the user back: answered with a page, never a redirect. */
export class AuthorizationPageError extends Error {
  override name = 'AuthorizationPageError'
}

/** The client and redirect URI are good; the error goes back to the client (RFC 6749 §4.1.2.1). */
export class AuthorizationRedirectError extends Error {
  override name = 'AuthorizationRedirectError'
  constructor (readonly redirectUri: string, readonly error: string, message: string, readonly state: string | null) {
    super(message)
  }
}

const PARAMS = ['response_type', 'client_id', 'redirect_uri', 'code_challenge', 'code_challenge_method', 'state', 'scope', 'resource'] as const
type Param = typeof PARAMS[number]
/** RFC 7636 §4.2: base64url of a SHA-256 digest, 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/

function single (fields: Fields, name: Param): string | null {
  const v = fields[name]
  if (Array.isArray(v)) throw new AuthorizationPageError(`the parameter ${name} is sent more than once`)
  return v === undefined || v === '' ? null : v
}

/** Checks an authorization request (the GET's query, or the consent form's hidden fields). */
export async function checkAuthorizationRequest (db: Kysely<Database>, settings: OAuthSettings, fields: Fields, now: Date): Promise<AuthorizationRequest> {
  const p = Object.fromEntries(PARAMS.map(name => [name, single(fields, name)])) as Record<Param, string | null>
  if (p.client_id === null) throw new AuthorizationPageError('the request names no client (client_id is missing)')
  let client: OAuthClient
  try {
    client = await resolveClient(db, settings, p.client_id, now)
  } catch (err) {
    if (err instanceof ClientError) throw new AuthorizationPageError(err.message)
    throw err
  }
  if (p.redirect_uri === null) throw new AuthorizationPageError('the request names no redirect_uri')
  if (!matchesRedirectUri(client, p.redirect_uri)) {
    throw new AuthorizationPageError(`the redirect URI ${p.redirect_uri.slice(0, 200)} is not one the client registered`)
  }
  const back = (error: string, message: string): AuthorizationRedirectError =>
    new AuthorizationRedirectError(p.redirect_uri as string, error, message, p.state)
  if (p.state !== null && (p.state.length > 2048 || /[^\x20-\x7e]/.test(p.state))) throw back('invalid_request', 'state must be printable ASCII, at most 2048 characters')
  if (p.response_type !== 'code') throw back('unsupported_response_type', 'response_type must be code')
  if (p.code_challenge === null) throw back('invalid_request', 'PKCE is required: send code_challenge with code_challenge_method=S256')
  if (p.code_challenge_method !== 'S256') throw back('invalid_request', 'code_challenge_method must be S256 (plain is not accepted)')
  if (!S256_CHALLENGE.test(p.code_challenge)) throw back('invalid_request', 'code_challenge must be the 43-character base64url SHA-256 of the verifier')
  const resource = oauthUrls(settings).resource
  if (p.resource !== null && !sameResource(p.resource, resource)) {
    throw back('invalid_target', `this server issues tokens for ${resource} only`)
  }
  const asked = (p.scope ?? '').split(' ').filter(s => s !== '')
  // Unknown scopes are left out rather than refused (RFC 6749 §3.3): clients send what other servers use.
  const scopes = ['mcp', ...SCOPES.filter(s => s !== 'mcp' && asked.includes(s))]
  return { client, redirectUri: p.redirect_uri, codeChallenge: p.code_challenge, state: p.state, scopes, resource: p.resource === null ? null : resource }
}

/** The MCP resource, with or without a trailing slash (clients differ). */
export function sameResource (given: string, resource: string): boolean {
  return given.replace(/\/+$/, '') === resource
}

/** The error redirect of RFC 6749 §4.1.2.1, with `iss` (RFC 9207). */
export function errorRedirect (e: AuthorizationRedirectError, issuer: string): string {
  const url = new URL(e.redirectUri)
  url.searchParams.set('error', e.error)
  url.searchParams.set('error_description', e.message)
  if (e.state !== null) url.searchParams.set('state', e.state)
  url.searchParams.set('iss', issuer)
  return url.toString()
}

/**
 * The consent form's anti-forgery value: an HMAC, under the gateway's shared key, of the signed-in user, the whole
 * authorization request and the moment the page was served. A page served to one user for one request cannot be
 * posted by another user, for another request, or after it expired.
 */
export function consentProof (key: string, userId: string, r: AuthorizationRequest, issuedAt: number): string {
  const mac = createHmac('sha256', key)
    .update(JSON.stringify([userId, r.client.clientId, r.redirectUri, r.codeChallenge, r.state, r.scopes, r.resource, issuedAt]))
    .digest('base64url')
  return `${issuedAt}.${mac}`
}

export function consentProofValid (key: string, userId: string, r: AuthorizationRequest, proof: string, now: number, ttlSeconds: number): boolean {
  const dot = proof.indexOf('.')
  const issuedAt = Number(proof.slice(0, dot))
  if (dot < 1 || !Number.isSafeInteger(issuedAt) || issuedAt > now + 60_000 || now - issuedAt > ttlSeconds * 1000) return false
  const expected = Buffer.from(consentProof(key, userId, r, issuedAt))
  const given = Buffer.from(proof)
  return expected.length === given.length && timingSafeEqual(expected, given)
}
