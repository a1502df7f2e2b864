// InfraBox user sessions: RS256 JWTs `{"user": {"id"}, "type": "user"}` from the `token` cookie or Authorization.
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SignJWT, exportPKCS8, exportSPKI, generateKeyPair, importJWK, importPKCS8, importSPKI, jwtVerify, type CryptoKey } from 'jose'
import type { Kysely } from 'kysely'
import { ConfigError } from '../config.js'
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

/** Loads the configured key, or generates a pair under DATA_DIR for the embedded mode. A bad key is a ConfigError. */
export async function loadSessionKeys (src: KeySources): Promise<SessionKeys | null> {
  const privateKey = src.privateKeyPath !== undefined
    ? await privateKeyFrom(await keyFile(src.privateKeyPath, 'INFRABOX_RSA_PRIVATE_KEY_PATH'), 'INFRABOX_RSA_PRIVATE_KEY_PATH')
    : null
  if (src.publicKeyPem !== undefined) return { publicKey: await publicKeyFrom(src.publicKeyPem, 'SESSION_JWT_PUBLIC_KEY'), privateKey }
  if (src.publicKeyPath !== undefined) {
    const text = await keyFile(src.publicKeyPath, 'INFRABOX_RSA_PUBLIC_KEY_PATH')
    return { publicKey: await publicKeyFrom(text, 'INFRABOX_RSA_PUBLIC_KEY_PATH'), privateKey }
  }
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

const PUBLIC_FORMATS = 'a PEM public key (BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY) or an OpenSSH ssh-rsa line'

async function keyFile (path: string, variable: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new ConfigError(`invalid configuration: ${variable} cannot be read (${code}: ${JSON.stringify(path)})`)
  }
}

/**
 * The RSA public key InfraBox signs sessions with, in any format its own loader reads: SPKI PEM, PKCS#1 PEM (both
 * through node:crypto), or an OpenSSH `ssh-rsa` line (its wire format read here). Literal `\n` in the text (a PEM
 * pasted into one environment line) counts as a line break. Anything else: a ConfigError of one line naming `variable`.
 */
export async function publicKeyFrom (text: string, variable: string): Promise<CryptoKey> {
  const trimmed = text.replace(/\\n/g, '\n').trim()
  const refuse = (why: string): ConfigError => new ConfigError(`invalid configuration: ${variable} is not a usable RSA public key (${why}); expected ${PUBLIC_FORMATS}`)
  let key: KeyObject
  if (/^ssh-/.test(trimmed)) {
    key = sshRsaKey(trimmed, refuse)
  } else if (/^-----BEGIN (RSA )?PUBLIC KEY-----/.test(trimmed)) {
    try {
      key = createPublicKey({ key: trimmed, format: 'pem' })
    } catch {
      throw refuse('the PEM body does not decode')
    }
  } else {
    const first = /^-----BEGIN ([A-Z0-9 ]+)-----/.exec(trimmed)
    throw refuse(first !== null ? `found a PEM "${first[1] ?? ''}"` : trimmed === '' ? 'empty' : 'neither PEM nor ssh-rsa')
  }
  if (key.asymmetricKeyType !== 'rsa') throw refuse(`key type ${key.asymmetricKeyType ?? 'unknown'}`)
  return await importJWK(key.export({ format: 'jwk' }), ALG) as CryptoKey
}

/** `ssh-rsa <base64 of: string "ssh-rsa", mpint e, mpint n> [comment]` (RFC 4253 §6.6) as a KeyObject. */
function sshRsaKey (line: string, refuse: (why: string) => ConfigError): KeyObject {
  const [type, b64] = line.split(/\s+/)
  if (type !== 'ssh-rsa') throw refuse(`an OpenSSH ${JSON.stringify(type)} key`)
  if (b64 === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw refuse('the ssh-rsa line has no base64 body')
  const blob = Buffer.from(b64, 'base64')
  let at = 0
  const field = (): Buffer => {
    if (at + 4 > blob.length) throw refuse('the ssh-rsa body is truncated')
    const length = blob.readUInt32BE(at)
    at += 4
    if (at + length > blob.length) throw refuse('the ssh-rsa body is truncated')
    const value = blob.subarray(at, at + length)
    at += length
    return value
  }
  if (field().toString('latin1') !== 'ssh-rsa') throw refuse('the ssh-rsa body names another key type')
  const unsigned = (mpint: Buffer): Buffer => {
    let i = 0
    while (i < mpint.length - 1 && mpint[i] === 0) i++
    return mpint.subarray(i)
  }
  const e = unsigned(field())
  const n = unsigned(field())
  if (at !== blob.length) throw refuse('the ssh-rsa body has trailing bytes')
  if (n.length < 128 || e.length === 0 || e.length > 8) throw refuse('the ssh-rsa modulus or exponent is out of range')
  const jwk: JsonWebKey = { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') }
  try {
    return createPublicKey({ key: jwk, format: 'jwk' })
  } catch {
    throw refuse('the ssh-rsa numbers do not form a key')
  }
}

/** The private half (demo session only): PKCS#8 or PKCS#1 PEM. */
async function privateKeyFrom (text: string, variable: string): Promise<CryptoKey> {
  let key: KeyObject
  try {
    key = createPrivateKey({ key: text.trim(), format: 'pem' })
  } catch {
    throw new ConfigError(`invalid configuration: ${variable} is not a PEM private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)`)
  }
  if (key.asymmetricKeyType !== 'rsa') throw new ConfigError(`invalid configuration: ${variable} is a ${key.asymmetricKeyType ?? 'non-RSA'} key, not RSA`)
  return await importJWK(key.export({ format: 'jwk' }), ALG) as CryptoKey
}

/** Signs a session exactly as InfraBox does (no `exp`). */
export async function signSession (privateKey: CryptoKey, userId: string): Promise<string> {
  return await new SignJWT({ user: { id: userId }, type: 'user' }).setProtectedHeader({ alg: ALG }).sign(privateKey)
}
