// InfraBox user sessions: RS256 JWTs `{"user": {"id"}, "type": "user"}` from the `token` cookie or Authorization.
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SignJWT, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8, importSPKI, jwtVerify, type CryptoKey } from 'jose'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import { UUID } from '../lib/ids.js'
import { credentialFrom, TOKEN_PREFIX } from './token.js'

/** What a session resolves to. */
export interface SessionUser { id: string }

/** Decides who is logged in; the default reads InfraBox's JWT, a host gateway may supply its own. */
export type SessionAuthenticator = (request: { headers: Record<string, string | string[] | undefined> }) => Promise<SessionUser | null>

export interface SessionKeys {
  publicKey: CryptoKey
  /** only when the gateway generated or was given the private half (embedded demo) */
  privateKey: CryptoKey | null
}

const ALG = 'RS256'

/** The value of cookie `name` in a Cookie header, if any. */
export function cookieValue (header: string | undefined, name: string): string | null {
  if (header === undefined) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const raw = part.slice(eq + 1).trim()
      try { return decodeURIComponent(raw) } catch { return raw }
    }
  }
  return null
}

const firstHeader = (v: string | string[] | undefined): string | undefined => Array.isArray(v) ? v[0] : v

/** The session JWT a request carries: the `token` cookie, else an Authorization credential that is not an MCP token. */
export function sessionJwtFrom (headers: Record<string, string | string[] | undefined>): string | null {
  const fromHeader = credentialFrom(firstHeader(headers.authorization))
  if (fromHeader !== null && !fromHeader.startsWith(TOKEN_PREFIX)) return fromHeader
  const fromCookie = cookieValue(firstHeader(headers.cookie), 'token')
  if (fromCookie !== null && fromCookie !== '' && !fromCookie.startsWith(TOKEN_PREFIX)) return fromCookie
  return null
}

/** The default authenticator: verifies InfraBox's RS256 session and checks that the user still exists. */
export function jwtSessionAuthenticator (keys: SessionKeys, db: Kysely<Database>): SessionAuthenticator {
  return async (request) => {
    const jwt = sessionJwtFrom(request.headers)
    if (jwt === null || jwt.length > 8192) return null
    let userId: unknown
    try {
      const { payload } = await jwtVerify(jwt, keys.publicKey, { algorithms: [ALG] })
      if (payload.type !== 'user') return null
      userId = (payload.user as { id?: unknown } | undefined)?.id
    } catch {
      return null
    }
    if (typeof userId !== 'string' || !UUID.test(userId)) return null
    const user = await db.selectFrom('user').select('id').where('id', '=', userId).executeTakeFirst()
    return user === undefined ? null : { id: user.id }
  }
}

export interface KeySources {
  publicKeyPem?: string | undefined
  publicKeyPath?: string | undefined
  privateKeyPath?: string | undefined
  /** generate and keep a pair here when nothing is configured (embedded mode) */
  generateUnder?: string | undefined
}

/** Loads the configured key, or generates a pair under DATA_DIR for the embedded mode. */
export async function loadSessionKeys (src: KeySources): Promise<SessionKeys | null> {
  const privateKey = src.privateKeyPath !== undefined
    ? await importPKCS8(await readFile(src.privateKeyPath, 'utf8'), ALG)
    : null
  if (src.publicKeyPem !== undefined) return { publicKey: await importSPKI(src.publicKeyPem.replace(/\\n/g, '\n'), ALG), privateKey }
  if (src.publicKeyPath !== undefined) return { publicKey: await importSPKI(await readFile(src.publicKeyPath, 'utf8'), ALG), privateKey }
  if (src.generateUnder === undefined) return null

  const pubPath = join(src.generateUnder, 'session-public.pem')
  const privPath = join(src.generateUnder, 'session-private.pem')
  if (!existsSync(pubPath) || !existsSync(privPath)) {
    await mkdir(src.generateUnder, { recursive: true })
    const pair = await generateKeyPair(ALG, { modulusLength: 2048, extractable: true })
    await writeFile(privPath, await exportPKCS8(pair.privateKey), { mode: 0o600 })
    await writeFile(pubPath, await exportSPKI(pair.publicKey))
  }
  return {
    publicKey: await importSPKI(await readFile(pubPath, 'utf8'), ALG),
    privateKey: await importPKCS8(await readFile(privPath, 'utf8'), ALG)
  }
}

/** Signs a session exactly as InfraBox does (no `exp`). */
export async function signSession (privateKey: CryptoKey, userId: string): Promise<string> {
  return await new SignJWT({ user: { id: userId }, type: 'user' }).setProtectedHeader({ alg: ALG }).sign(privateKey)
}
