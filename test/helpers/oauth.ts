// Shared steps of the OAuth tests (test/oauth/): the app on a known port with PUBLIC_BASE_URL, PKCE, registration, the consent form over HTTP.
import { createHash, randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { buildApp, type BuildOptions, type TestApp } from './app.js'
import { seedFixture } from '../../db/seed.js'

export const MCP_PATH = '/api/v1/mcp'

export interface OAuthTestApp extends TestApp {
  /** http://127.0.0.1:<port> = PUBLIC_BASE_URL */
  origin: string
  /** the MCP endpoint */
  endpoint: string
}

/** A port free a moment ago (PUBLIC_BASE_URL must name it before the app is built). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = address !== null && typeof address === 'object' ? address.port : 0
      server.close(() => { resolve(port) })
    })
  })
}

/** The real app with the fixture and OAuth on (PUBLIC_BASE_URL = where it listens); `envFor` adds settings that name the address. */
export async function startOAuthApp (t: Test, opts: BuildOptions & { envFor?: (origin: string) => Record<string, string> } = {}): Promise<OAuthTestApp> {
  const sandbox = await mkdtemp(join(tmpdir(), 'mcp-oauth-'))
  t.teardown(async () => { await rm(sandbox, { recursive: true, force: true }) })
  const artifactRoot = join(sandbox, 'artifacts')
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const built = await buildApp(t, {
    ...opts,
    env: { ARTIFACT_FS_ROOT: artifactRoot, RATE_LIMIT_REDIS_TIMEOUT_MS: '2000', PUBLIC_BASE_URL: origin, ...opts.envFor?.(origin), ...opts.env },
    seed: async (database) => {
      await seedFixture(database.db, { artifactRoot })
      if (opts.seed !== undefined) await opts.seed(database)
    }
  })
  await built.app.listen({ host: '127.0.0.1', port })
  return { ...built, origin, endpoint: `${origin}${MCP_PATH}` }
}

export interface Pkce { verifier: string, challenge: string }

export function pkce (): Pkce {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

/** RFC 7591 registration; returns the answer's status and body. */
export async function register (origin: string, metadata: Record<string, unknown>): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await fetch(`${origin}${MCP_PATH}/oauth/register`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata)
  })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

export async function registeredClientId (origin: string, redirectUri: string, name = 'Test Agent'): Promise<string> {
  const { status, body } = await register(origin, { client_name: name, redirect_uris: [redirectUri] })
  if (status !== 201 || typeof body.client_id !== 'string') throw new Error(`registration failed: ${status} ${JSON.stringify(body)}`)
  return body.client_id
}

export interface AuthorizeParams {
  clientId: string
  redirectUri: string
  challenge: string
  state?: string
  scope?: string
  resource?: string
  extra?: Record<string, string>
}

export function authorizeUrl (origin: string, p: AuthorizeParams): string {
  const url = new URL(`${origin}${MCP_PATH}/oauth/authorize`)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('client_id', p.clientId)
  url.searchParams.set('redirect_uri', p.redirectUri)
  url.searchParams.set('code_challenge', p.challenge)
  url.searchParams.set('code_challenge_method', 'S256')
  url.searchParams.set('state', p.state ?? 'st-' + randomBytes(4).toString('hex'))
  if (p.scope !== undefined) url.searchParams.set('scope', p.scope)
  if (p.resource !== undefined) url.searchParams.set('resource', p.resource)
  for (const [k, v] of Object.entries(p.extra ?? {})) url.searchParams.set(k, v)
  return url.toString()
}

const decodeHtml = (s: string): string =>
  s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')

/** The consent page's hidden fields, as a browser would post them back. */
export function hiddenFields (html: string): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[decodeHtml(m[1] ?? '')] = decodeHtml(m[2] ?? '')
  return fields
}

/** GETs a URL without following redirects, as a browser with the given cookie. */
export async function get (url: string, cookie?: string): Promise<Response> {
  return await fetch(url, { redirect: 'manual', headers: cookie === undefined ? {} : { cookie } })
}

/** Posts the consent form (fields + decision), as the page's own origin unless told otherwise. */
export async function postConsent (origin: string, fields: Record<string, string | string[]>, cookie: string, headers: Record<string, string> = {}): Promise<Response> {
  const body = new URLSearchParams()
  for (const [k, v] of Object.entries(fields)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one)
  return await fetch(`${origin}${MCP_PATH}/oauth/authorize`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, origin, ...headers },
    body: body.toString()
  })
}

export interface Consent { projects: string[], expiresDays?: number, allowTrigger?: boolean }

/** Authorize → consent page → allow: the redirect's code (and the whole redirect URL). */
export async function authorizeCode (origin: string, cookie: string, p: AuthorizeParams, consent: Consent): Promise<{ code: string, location: URL }> {
  const page = await get(authorizeUrl(origin, p), cookie)
  if (page.status !== 200) throw new Error(`consent page: ${page.status} ${await page.text()}`)
  const fields = hiddenFields(await page.text())
  const res = await postConsent(origin, {
    ...fields,
    project: consent.projects,
    expires_days: String(consent.expiresDays ?? 30),
    ...(consent.allowTrigger === true ? { allow_trigger: 'true' } : {}),
    decision: 'allow'
  }, cookie)
  const location = res.headers.get('location')
  if (res.status !== 302 || location === null) throw new Error(`consent post: ${res.status} ${await res.text()}`)
  const url = new URL(location)
  const code = url.searchParams.get('code')
  if (code === null) throw new Error(`no code in ${location}`)
  return { code, location: url }
}

/** POSTs the token endpoint (form-encoded). */
export async function tokenRequest (origin: string, fields: Record<string, string>): Promise<{ status: number, body: Record<string, unknown>, headers: Headers }> {
  const res = await fetch(`${origin}${MCP_PATH}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString()
  })
  return { status: res.status, body: await res.json() as Record<string, unknown>, headers: res.headers }
}

export const sessionCookie = (jwt: string): string => `token=${jwt}`
