// The MCP token model: `ib_mcp_` + 48 hex; minted with a CRC-32 tail so leaks can be checked offline; stored as SHA-256.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { crc32 } from 'node:zlib'

export const TOKEN_PREFIX = 'ib_mcp_'
const TOKEN_SHAPE = /^ib_mcp_[0-9a-f]{48}$/
export const TOKEN_ID_SHAPE = /^[0-9a-f]{16}$/

export interface MintedToken {
  /** the whole secret, shown once */
  token: string
  /** first 16 hex characters after the prefix: the primary key, safe to show and log */
  tokenId: string
  /** hex SHA-256 of the whole token string, prefix included */
  tokenHash: string
}

const checksumOf = (body40: string): string => crc32(Buffer.from(body40, 'ascii')).toString(16).padStart(8, '0')

/** 160 random bits as 40 hex, then the zlib CRC-32 of those 40 ASCII characters as 8 hex. */
export function mintToken (): MintedToken {
  const body = randomBytes(20).toString('hex')
  const token = `${TOKEN_PREFIX}${body}${checksumOf(body)}`
  return { token, tokenId: tokenIdOf(token), tokenHash: hashToken(token) }
}

/**
 * A new secret for an existing token id (an OAuth grant's row keeps its id while its access token rotates): the id's
 * 16 hex, 24 fresh random hex, the CRC-32 tail. As with `mintToken`, everything after the public id is random.
 */
export function mintTokenWithId (tokenId: string): MintedToken {
  if (!TOKEN_ID_SHAPE.test(tokenId)) throw new Error('a token id is 16 lowercase hex characters')
  const body = tokenId + randomBytes(12).toString('hex')
  const token = `${TOKEN_PREFIX}${body}${checksumOf(body)}`
  return { token, tokenId, tokenHash: hashToken(token) }
}

/** The offline format check: anything else is refused before any database work. */
export const isWellFormedToken = (candidate: string): boolean => TOKEN_SHAPE.test(candidate)

// A token anywhere in a text (also with its underscores percent-encoded, as it would be in a URL).
const TOKEN_ANYWHERE = /ib(?:_|%5f)mcp(?:_|%5f)[0-9a-f]{48}/gi

/**
 * The text with every token in it masked: for what the gateway writes about a request (log lines, audit paths,
 * error messages echoing a path), since a client may put its token where it does not belong (a query, a path).
 */
export const redactTokens = (text: string): string => text.replace(TOKEN_ANYWHERE, 'ib_mcp_[redacted]')

/** True for tokens this gateway minted; InfraBox's Python layer minted 48 random hex without a checksum. */
export function hasValidChecksum (token: string): boolean {
  if (!isWellFormedToken(token)) return false
  const hex = token.slice(TOKEN_PREFIX.length)
  return checksumOf(hex.slice(0, 40)) === hex.slice(40)
}

export const tokenIdOf = (token: string): string => token.slice(TOKEN_PREFIX.length, TOKEN_PREFIX.length + 16)

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex')

/** Constant-time comparison of two hex SHA-256 digests. */
export function sameHash (a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8')
  const y = Buffer.from(b, 'utf8')
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * The credential an `Authorization` header carries, whatever scheme InfraBox accepts:
 * `Bearer`/`bearer`/`token` (any case) or Basic `infrabox:<credential>`.
 * Returns null when the header carries nothing usable.
 */
export function credentialFrom (authorization: string | undefined): string | null {
  if (authorization === undefined) return null
  const match = /^\s*([A-Za-z]+)\s+(\S+)\s*$/.exec(authorization)
  if (match === null) return null
  const scheme = (match[1] ?? '').toLowerCase()
  const value = match[2] ?? ''
  if (scheme === 'bearer' || scheme === 'token') return value
  if (scheme === 'basic') {
    const halves = basicHalves(value)
    return halves === null || halves[1] === '' ? null : halves[1]
  }
  return null
}

/** user name and password of a Basic credential (base64 of `user:password`); null when it is not one. */
function basicHalves (value: string): [string, string] | null {
  const decoded = Buffer.from(value, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon < 0 ? null : [decoded.slice(0, colon), decoded.slice(colon + 1)]
}

/** Every credential an Authorization header carries: a Bearer/token value, or both halves of a Basic pair. */
export function credentialsFrom (authorization: string | undefined): string[] {
  if (authorization === undefined) return []
  const match = /^\s*([A-Za-z]+)\s+(\S+)\s*$/.exec(authorization)
  if (match === null) return []
  const scheme = (match[1] ?? '').toLowerCase()
  if (scheme === 'basic') return (basicHalves(match[2] ?? '') ?? []).filter(h => h !== '')
  const one = credentialFrom(authorization)
  return one === null ? [] : [one]
}

/** A Cookie header as a server decodes it (percent-escapes resolved), so `ib%5Fmcp%5F…` is seen for what it is. */
function decodedCookies (cookie: string): string {
  return cookie.split(';').map(part => {
    try { return decodeURIComponent(part) } catch { return part }
  }).join(';')
}

/** Does this request present an MCP credential anywhere InfraBox would read one (header or `token` cookie)? */
export function carriesMcpCredential (authorization: string | undefined, cookie: string | undefined): boolean {
  if (authorization !== undefined) {
    if (authorization.toLowerCase().includes(TOKEN_PREFIX)) return true
    // both halves of a Basic pair: a token sent as the user name is still a token (SPEC §13.8)
    if (credentialsFrom(authorization).some(c => c.toLowerCase().includes(TOKEN_PREFIX))) return true
  }
  // cookies decoded: `token=ib%5Fmcp%5F…` is the same token to any server that reads it (SPEC §13.8)
  return cookie !== undefined && (cookie.toLowerCase().includes(TOKEN_PREFIX) || decodedCookies(cookie).toLowerCase().includes(TOKEN_PREFIX))
}
