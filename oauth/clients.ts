// The client registry: dynamic registration (RFC 7591), client ID metadata documents, and the redirect URI rules.
import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import { Value } from 'typebox/value'
import type { Database, Json } from '../db/schema.js'
import { findClient, saveClient, type OAuthClientRow } from '../db/oauth.js'
import { ClientMetadata, ClientMetadataDocument } from '../schemas/oauth.js'
import { fetchMetadataDocument, MetadataDocumentError } from './metadata-document.js'
import type { OAuthSettings } from './settings.js'
import { SCOPES } from './settings.js'

/** A client as the rest of the server sees it. */
export interface OAuthClient {
  clientId: string
  kind: OAuthClientRow['kind']
  name: string
  redirectUris: string[]
}

/** A refusal about the client itself: shown on a 400 page (authorize) or as invalid_client_metadata (registration). */
export class ClientError extends Error {
  override name = 'ClientError'
  constructor (message: string, readonly oauthError: 'invalid_client' | 'invalid_redirect_uri' | 'invalid_client_metadata' = 'invalid_client') {
    super(message)
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost'])
const isLoopbackHost = (hostname: string): boolean => LOOPBACK_HOSTS.has(hostname) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)

function parseUrl (raw: string): URL | null {
  try { return new URL(raw) } catch { return null }
}

/** A redirect URI a client may register: https anywhere, or http on a loopback address (any port); no fragment. */
export function redirectUriProblem (raw: string): string | null {
  const url = parseUrl(raw)
  if (url === null) return `redirect URI ${JSON.stringify(raw.slice(0, 200))} is not an absolute URL`
  if (url.hash !== '' || raw.includes('#')) return `redirect URI ${raw.slice(0, 200)} must not have a fragment`
  if (url.username !== '' || url.password !== '') return `redirect URI ${raw.slice(0, 200)} must not carry credentials`
  if (url.protocol === 'https:') return null
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return null
  return `redirect URI ${raw.slice(0, 200)} must use https, or http on a loopback address (127.0.0.1, [::1], localhost)`
}

/**
 * Does `requested` match a registered redirect URI? Exactly; for http loopback URIs the port may differ (RFC 8252
 * §7.3: a native client picks a free port at run time, and a metadata document cannot know it).
 */
export function matchesRedirectUri (client: OAuthClient, requested: string): boolean {
  if (client.redirectUris.includes(requested)) return true
  const want = parseUrl(requested)
  if (want === null || want.protocol !== 'http:' || !isLoopbackHost(want.hostname)) return false
  return client.redirectUris.some(registered => {
    const have = parseUrl(registered)
    return have !== null && have.protocol === 'http:' && have.hostname === want.hostname &&
      have.pathname === want.pathname && have.search === want.search
  })
}

/** The name shown on the consent page and in the token list: the client's own, else its redirect host. */
function displayName (given: string | undefined, redirectUris: string[], fallback: string): string {
  // control characters (C0, DEL, C1) become spaces: a name is shown on a page and in a list, never interpreted
  const name = [...(given ?? '')].map(ch => (ch.codePointAt(0) ?? 0) < 0x20 || ((ch.codePointAt(0) ?? 0) >= 0x7f && (ch.codePointAt(0) ?? 0) < 0xa0) ? ' ' : ch).join('').trim().slice(0, 128)
  if (name !== '') return name
  const host = parseUrl(redirectUris[0] ?? '')?.host
  return (host ?? fallback).slice(0, 128)
}

const toClient = (row: OAuthClientRow): OAuthClient =>
  ({ clientId: row.client_id, kind: row.kind, name: row.client_name, redirectUris: row.redirect_uris })

/** The client metadata fields kept beside name and redirect URIs (for the record; nothing trusts them). */
function extraMetadata (m: ClientMetadata): Json {
  const keep: Record<string, Json> = {}
  for (const key of ['client_uri', 'logo_uri', 'software_id', 'software_version', 'scope'] as const) {
    const v = m[key]
    if (typeof v === 'string') keep[key] = v
  }
  return keep
}

function checkMetadata (m: ClientMetadata): void {
  for (const uri of m.redirect_uris) {
    const problem = redirectUriProblem(uri)
    if (problem !== null) throw new ClientError(problem, 'invalid_redirect_uri')
  }
  const grants = m.grant_types ?? ['authorization_code', 'refresh_token']
  if (!grants.includes('authorization_code') || grants.some(g => g !== 'authorization_code' && g !== 'refresh_token')) {
    throw new ClientError('grant_types may hold only authorization_code and refresh_token, and must include authorization_code', 'invalid_client_metadata')
  }
  if (m.response_types !== undefined && (m.response_types.length === 0 || m.response_types.some(r => r !== 'code'))) {
    throw new ClientError('response_types may hold only "code"', 'invalid_client_metadata')
  }
}

export interface Registration {
  client: OAuthClient
  /** seconds since the epoch */
  issuedAt: number
  grantTypes: string[]
  scope: string
}

/**
 * Registers a public client (RFC 7591). Every client is public (token_endpoint_auth_method "none", PKCE instead of a
 * secret); one that asks for another method is told so in the answer, as RFC 7591 §3.2.1 allows.
 */
export async function registerClient (db: Kysely<Database>, body: unknown): Promise<Registration> {
  if (!Value.Check(ClientMetadata, body)) {
    const first = Value.Errors(ClientMetadata, body)[0]
    throw new ClientError(first === undefined ? 'the registration is not a JSON object' : `${first.instancePath || 'body'} ${first.message}`, 'invalid_client_metadata')
  }
  checkMetadata(body)
  const clientId = `ibc_${randomBytes(16).toString('hex')}`
  const name = displayName(body.client_name, body.redirect_uris, clientId)
  const row = await saveClient(db, { clientId, kind: 'registered', clientName: name, redirectUris: body.redirect_uris, metadata: extraMetadata(body), fetchedAt: null })
  return {
    client: toClient(row),
    issuedAt: Math.floor(row.created_at.getTime() / 1000),
    grantTypes: ['authorization_code', 'refresh_token'],
    scope: SCOPES.join(' ')
  }
}

/** Is this client_id a metadata document URL (CIMD) rather than an id the gateway issued? */
export const isMetadataDocumentId = (clientId: string): boolean => clientId.startsWith('https://')

/**
 * The client an authorization request names: a registered one from the table, or a metadata document fetched (with
 * the SSRF guards) unless read less than a few minutes ago. Throws ClientError with a sentence for the 400 page.
 */
export async function resolveClient (db: Kysely<Database>, settings: OAuthSettings, clientId: string, now: Date): Promise<OAuthClient> {
  if (clientId === '' || clientId.length > 2048) throw new ClientError('the request names no valid client_id')
  if (!isMetadataDocumentId(clientId)) {
    const row = await findClient(db, clientId)
    if (row === undefined || row.kind !== 'registered') throw new ClientError(`no client ${JSON.stringify(clientId.slice(0, 100))} is registered here`)
    return toClient(row)
  }
  const url = parseUrl(clientId)
  if (url === null || url.hash !== '' || url.pathname === '/' || url.href !== clientId) {
    throw new ClientError('a client_id URL must be an https URL with a path and no fragment, written in its normal form')
  }
  const known = await findClient(db, clientId)
  const fresh = known?.fetched_at != null && now.getTime() - known.fetched_at.getTime() < settings.metadataDocumentMaxAgeSeconds * 1000
  if (known !== undefined && fresh) return toClient(known)
  let document: unknown
  try {
    document = await fetchMetadataDocument(url, { allowPrivate: settings.allowPrivateMetadataHosts, ...settings.metadataDocument })
  } catch (err) {
    if (err instanceof MetadataDocumentError) throw new ClientError(`the client's metadata document was refused: ${err.message}`)
    throw err
  }
  if (!Value.Check(ClientMetadataDocument, document)) throw new ClientError('the client\'s metadata document does not hold client_id and redirect_uris')
  if (document.client_id !== clientId) throw new ClientError('the client\'s metadata document names another client_id than its own URL')
  try {
    checkMetadata(document)
  } catch (err) {
    if (err instanceof ClientError) throw new ClientError(`the client's metadata document is not acceptable: ${err.message}`)
    throw err
  }
  const name = displayName(document.client_name, document.redirect_uris, url.host)
  return toClient(await saveClient(db, {
    clientId, kind: 'metadata_document', clientName: name, redirectUris: document.redirect_uris, metadata: extraMetadata(document), fetchedAt: now
  }))
}

/** The client for the token and revocation endpoints: only one the server already knows (registered or seen at authorize). */
export async function knownClient (db: Kysely<Database>, clientId: string): Promise<OAuthClient | null> {
  const row = await findClient(db, clientId)
  return row === undefined ? null : toClient(row)
}
