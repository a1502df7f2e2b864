// The OAuth server's settings and addresses (SPEC §12): on when a public base URL is known, off otherwise.
import type { Server } from 'node:http'
import type { Config } from '../config.js'

export const SCOPES = ['mcp', 'mcp:trigger'] as const
export type Scope = typeof SCOPES[number]
export const TRIGGER_SCOPE: Scope = 'mcp:trigger'

export interface OAuthOptions {
  /**
   * The gateway as clients reach it, scheme://host[:port]; default PUBLIC_BASE_URL. A function is read per request
   * (the embedded demo answers with the address it listens on, which may be a port picked at start).
   */
  publicBaseUrl?: string | (() => string)
  /** InfraBox's login page; default INFRABOX_LOGIN_URL */
  loginUrl?: string
  /** the embedded demo's session, handed out by the demo login page instead of a login redirect */
  demoSessionToken?: string
  /** extra CA certificates trusted when fetching client metadata documents (an internal PKI; tests) */
  metadataDocumentCa?: string | Buffer
  /** fetch deadline of a metadata document, ms (default 5000) */
  metadataDocumentTimeoutMs?: number
}

/** Where the OAuth server's addresses come from: all that the discovery documents need. */
export interface OAuthAddress {
  baseUrl: () => string
  /** where the gateway is mounted, e.g. /api/v1/mcp */
  prefix: string
}

/** The discovery address for a host that embeds the gateway (`mcpWellKnown`'s `oauth` option). */
export function oauthAddress (publicBaseUrl: string | (() => string), prefix = '/api/v1/mcp'): OAuthAddress {
  const baseUrl = typeof publicBaseUrl === 'function' ? () => trimSlash(publicBaseUrl()) : ((fixed: string) => () => fixed)(trimSlash(publicBaseUrl))
  return { baseUrl, prefix: trimSlash(prefix) }
}

export interface OAuthSettings extends OAuthAddress {
  loginUrl: string | null
  demoSessionToken: string | null
  allowPrivateMetadataHosts: boolean
  metadataDocument: { timeoutMs: number, maxBytes: number, ca: string | Buffer | null }
  accessTokenTtlSeconds: number
  codeTtlSeconds: number
  /** how long a consent page's form stays valid */
  consentTtlSeconds: number
  /** a metadata document read less than this long ago is not fetched again */
  metadataDocumentMaxAgeSeconds: number
  rpm: number
  registerRpm: number
  maxExpiryDays: number
}

const trimSlash = (url: string): string => url.replace(/\/+$/, '')

/** The address a listening server answers on, for the embedded demo (0.0.0.0 and :: become 127.0.0.1). */
export function listeningBaseUrl (server: Server, fallbackPort: number): string {
  const address = server.address()
  const port = address !== null && typeof address === 'object' ? address.port : fallbackPort
  const host = address !== null && typeof address === 'object' && !['0.0.0.0', '::', '::1'].includes(address.address)
    ? (address.family === 'IPv6' ? `[${address.address}]` : address.address)
    : '127.0.0.1'
  return `http://${host}:${port}`
}

/** Null when OAuth is off: no public base URL configured or given. */
export function oauthSettings (config: Config, prefix: string, opts: OAuthOptions = {}): OAuthSettings | null {
  const given = opts.publicBaseUrl ?? config.PUBLIC_BASE_URL
  if (given === undefined) return null
  return {
    ...oauthAddress(given, prefix),
    loginUrl: opts.loginUrl ?? config.INFRABOX_LOGIN_URL ?? null,
    demoSessionToken: opts.demoSessionToken ?? null,
    allowPrivateMetadataHosts: config.OAUTH_CIMD_ALLOW_PRIVATE,
    metadataDocument: { timeoutMs: opts.metadataDocumentTimeoutMs ?? 5000, maxBytes: 64 * 1024, ca: opts.metadataDocumentCa ?? null },
    accessTokenTtlSeconds: config.OAUTH_ACCESS_TOKEN_TTL_SECONDS,
    codeTtlSeconds: 60,
    consentTtlSeconds: 600,
    metadataDocumentMaxAgeSeconds: 300,
    rpm: config.OAUTH_RATE_LIMIT_RPM,
    registerRpm: config.OAUTH_REGISTER_RPM,
    maxExpiryDays: config.MCP_TOKEN_MAX_EXPIRY_DAYS
  }
}

export interface OAuthUrls {
  /** the protected resource: the MCP endpoint */
  resource: string
  resourceMetadata: string
  issuer: string
  authorizationServerMetadata: string
  authorize: string
  token: string
  register: string
  revoke: string
  login: string
}

/** Every address the server announces, from the base URL of this moment. */
export function oauthUrls (s: OAuthAddress): OAuthUrls {
  const base = s.baseUrl()
  const issuer = `${base}${s.prefix}/oauth`
  return {
    resource: `${base}${s.prefix}`,
    resourceMetadata: `${base}/.well-known/oauth-protected-resource${s.prefix}`,
    issuer,
    authorizationServerMetadata: `${base}/.well-known/oauth-authorization-server${s.prefix}/oauth`,
    authorize: `${issuer}/authorize`,
    token: `${issuer}/token`,
    register: `${issuer}/register`,
    revoke: `${issuer}/revoke`,
    login: `${issuer}/login`
  }
}
