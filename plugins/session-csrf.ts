// Cross-site request refusal for token administration under a cookie session (SPEC §13.2): InfraBox sets its
// `token` cookie without SameSite, so any page the user visits could otherwise POST here with it.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { GatewayError } from '../lib/errors.js'
import { credentialFrom, TOKEN_PREFIX } from '../core/token.js'

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

export interface SessionCsrfOptions {
  /** the gateway's own origin as clients reach it (PUBLIC_BASE_URL); unset: the request's own scheme and Host */
  publicBaseUrl?: string | undefined
  /** more origins whose pages may call the token routes with the cookie (SESSION_ALLOWED_ORIGINS) */
  allowedOrigins: ReadonlySet<string>
}

/** `scheme://host[:port]` in the form browsers send in `Origin` (lower case, default port left out); null when not a URL. */
export function originOf (url: string): string | null {
  try {
    const u = new URL(url)
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin.toLowerCase() : null
  } catch { return null }
}

const first = (v: string | string[] | undefined): string | undefined => Array.isArray(v) ? v[0] : v

/** A session credential in Authorization (not an MCP token): a script had to set it, so no browser sends it cross-site. */
function sessionInAuthorization (request: FastifyRequest): boolean {
  const credential = credentialFrom(request.headers.authorization)
  return credential !== null && !credential.toLowerCase().startsWith(TOKEN_PREFIX)
}

/** Why a cookie-session request is refused as cross-site, or null when it may go on. */
export function crossSiteReason (request: FastifyRequest, opts: SessionCsrfOptions): string | null {
  // Only what a browser attaches by itself can be ridden cross-site: cookies. A session in Authorization (or in a
  // header of an embedding host's choosing) had to be set by a script, which a foreign page cannot do without CORS.
  if (SAFE.has(request.method) || request.headers.cookie === undefined || sessionInAuthorization(request)) return null
  const hasBody = (request.headers['content-length'] !== undefined && request.headers['content-length'] !== '0') || request.headers['transfer-encoding'] !== undefined
  const type = (first(request.headers['content-type']) ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  if (hasBody && type !== 'application/json') return 'a body sent with a session cookie must be application/json'
  const site = first(request.headers['sec-fetch-site'])?.toLowerCase()
  if (site === 'same-origin' || site === 'none') return null
  const own = opts.publicBaseUrl !== undefined ? originOf(opts.publicBaseUrl) : originOf(`${request.protocol}://${request.host}`)
  const claimed = first(request.headers.origin) ?? first(request.headers.referer)
  const origin = claimed === undefined || claimed === 'null' ? null : originOf(claimed)
  if (origin !== null && (origin === own || opts.allowedOrigins.has(origin))) return null
  return origin === null
    ? 'a change made with a session cookie must say where it comes from (Origin, Referer or Sec-Fetch-Site)'
    : `a change made with a session cookie from ${origin} is refused: only the gateway's own origin and SESSION_ALLOWED_ORIGINS may make it`
}

export default fp(async function sessionCsrf (fastify: FastifyInstance, opts: SessionCsrfOptions) {
  fastify.addHook('onRequest', async (request) => {
    const reason = crossSiteReason(request, opts)
    if (reason !== null) throw new GatewayError(403, 'MCP_CROSS_SITE', reason)
  })
}, { name: 'mcp-session-csrf', dependencies: ['mcp-session-auth'] })
