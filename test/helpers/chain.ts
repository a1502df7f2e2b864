// Shared steps of the chain tests (test/chain/): tokens through the real admin route, auth headers, error bodies, audit rows, metrics.
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Kysely } from 'kysely'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { REASON } from '../../lib/errors.js'
import type { Database, EnabledProjects } from '../../db/schema.js'
import type { CreatedToken } from '../../schemas/tokens.js'
import { TEST_REDIS_URL } from './app.js'
import { pythonMint } from './infrabox.js'

export const API = '/api/v1/mcp'

/**
 * For tests that count exact budgets: a generous limiter deadline, so an event-loop stall on a busy test
 * machine (parallel files, two cores) does not fail a hit open and let one request too many through.
 * The fail-open path itself is proven with the default deadline in redis-faults.test.ts.
 */
export const RELAXED_LIMITER = { RATE_LIMIT_REDIS_TIMEOUT_MS: '2000' } as const

export type { CreatedToken }

/** What the chain tests read from an injected or fetched response. */
export interface Answer {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  body: string
  json: () => any
}

export const bearer = (token: string): { authorization: string } => ({ authorization: `Bearer ${token}` })

/** A token minted by the gateway through the real POST /api/v1/mcp/tokens with the user's session. */
export async function createToken (app: FastifyInstance, sessionJwt: string, body: Record<string, unknown> = {}): Promise<CreatedToken> {
  const res = await app.inject({ method: 'POST', url: `${API}/tokens`, headers: bearer(sessionJwt), payload: { name: 'chain test', ...body } })
  if (res.statusCode !== 201) throw new Error(`token not created: ${res.statusCode} ${res.body}`)
  return res.json() as CreatedToken
}

export async function revokeToken (app: FastifyInstance, sessionJwt: string, tokenId: string): Promise<void> {
  const res = await app.inject({ method: 'DELETE', url: `${API}/tokens/${tokenId}`, headers: bearer(sessionJwt) })
  if (res.statusCode !== 200) throw new Error(`token not revoked: ${res.statusCode} ${res.body}`)
}

/**
 * A token minted by python3 as InfraBox's Python layer mints them ('ib_mcp_' + secrets.token_hex(24), no checksum),
 * its id and hash computed there by hashlib (test/helpers/infrabox.ts): not by the gateway's own functions.
 */
export function pythonMintedToken (): { token: string, tokenId: string, tokenHash: string } {
  const minted = pythonMint()
  return { token: minted.token, tokenId: minted.token_id, tokenHash: minted.token_hash }
}

/**
 * Inserts a token row the way InfraBox's Python layer did (sha256 of the whole token, no checksum,
 * scope not validated against collaborator); the only deliberate row insert of these tests.
 */
export async function insertPythonToken (db: Kysely<Database>, userId: string, opts: { enabledProjects?: EnabledProjects, allowTrigger?: boolean } = {}): Promise<string> {
  const minted = pythonMintedToken()
  await db.insertInto('mcp_token').values({
    token_id: minted.tokenId,
    token_hash: minted.tokenHash,
    user_id: userId,
    name: 'minted by the python layer',
    enabled_projects: JSON.stringify(opts.enabledProjects ?? {}),
    allow_trigger: opts.allowTrigger ?? false,
    expires_at: new Date(Date.now() + 86_400_000)
  }).execute()
  return minted.token
}

/** A user collaborating (as Developer) on the given projects; every user gets its own rate-limit buckets. */
export async function addUser (db: Kysely<Database>, projectIds: readonly string[], role: 'Developer' | 'Administrator' | 'Owner' = 'Developer'): Promise<string> {
  const id = randomUUID()
  await db.insertInto('user').values({ id, username: `user-${id.slice(0, 8)}` }).execute()
  if (projectIds.length > 0) {
    await db.insertInto('collaborator').values(projectIds.map(projectId => ({ user_id: id, project_id: projectId, role }))).execute()
  }
  return id
}

/** The contract's error body: exactly {statusCode, code, error, message}, consistent with the status. */
export function assertError (t: Test, res: Answer, status: number, code: string, what = ''): void {
  const label = what === '' ? `${status} ${code}` : `${what}: ${status} ${code}`
  t.equal(res.statusCode, status, label)
  let body: Record<string, unknown>
  try { body = res.json() } catch { t.fail(`${label}: body is not JSON: ${res.body.slice(0, 200)}`); return }
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${label}: error body shape`)
  t.equal(body.statusCode, status, `${label}: statusCode in body`)
  t.equal(body.code, code, `${label}: code`)
  t.equal(body.error, REASON[status], `${label}: reason phrase`)
  t.ok(typeof body.message === 'string' && body.message !== '', `${label}: message`)
}

/** The value of a header as one string ('' when absent). */
export const header = (res: Answer, name: string): string => {
  const v = res.headers[name.toLowerCase()]
  return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : String(v)
}

/** Every header of SPEC §4's two families on a limited response, consistent with `bucket` and `limit`. */
export function assertLimitHeaders (t: Test, res: Answer, bucket: string, limit: number, what = ''): { remaining: number, reset: number } {
  const label = what === '' ? bucket : what
  t.equal(header(res, 'ratelimit-policy'), `"${bucket}";q=${limit};w=60`, `${label}: RateLimit-Policy`)
  const m = /^"([^"]+)";r=(\d+);t=(\d+)$/.exec(header(res, 'ratelimit'))
  t.ok(m !== null, `${label}: RateLimit is "<bucket>";r=<n>;t=<s> (got ${header(res, 'ratelimit')})`)
  const remaining = Number(m?.[2] ?? NaN)
  const reset = Number(m?.[3] ?? NaN)
  t.equal(m?.[1], bucket, `${label}: RateLimit names the bucket`)
  t.equal(header(res, 'x-ratelimit-limit'), String(limit), `${label}: X-RateLimit-Limit`)
  t.equal(header(res, 'x-ratelimit-remaining'), String(remaining), `${label}: X-RateLimit-Remaining agrees with RateLimit`)
  t.equal(header(res, 'x-ratelimit-reset'), String(reset), `${label}: X-RateLimit-Reset agrees with RateLimit`)
  t.ok(reset >= 0 && reset <= 60, `${label}: reset within the window (${reset})`)
  if (res.statusCode === 429) {
    const retry = header(res, 'retry-after')
    t.match(retry, /^\d+$/, `${label}: Retry-After is whole seconds`)
    t.ok(Number(retry) >= 1 && Number(retry) <= 60, `${label}: 1 <= Retry-After <= 60 (${retry})`)
    t.equal(remaining, 0, `${label}: nothing remains on a 429`)
  } else {
    t.equal(header(res, 'retry-after'), '', `${label}: no Retry-After when allowed`)
  }
  return { remaining, reset }
}

export type AccessLogRow = Awaited<ReturnType<typeof accessLog>>[number]

/** Every audit row, oldest first. */
export async function accessLog (db: Kysely<Database>) {
  return await db.selectFrom('mcp_access_log').selectAll().orderBy('accessed_at').orderBy('id').execute()
}

export async function accessLogCount (db: Kysely<Database>): Promise<number> {
  const row = await db.selectFrom('mcp_access_log').select(eb => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  return Number(row.n)
}

/** Sum of a Prometheus metric's samples (all label sets) from GET /metrics. */
export async function metric (app: FastifyInstance, name: string): Promise<number> {
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  return metricIn(res.body, name)
}

export function metricIn (text: string, name: string, labels = ''): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    if (labels !== '' && !(m[2] ?? '').includes(labels)) continue
    sum += Number(m[3])
  }
  return sum
}

/** A plain client on the machine's Redis, to look at the limiter's sorted sets; closed in teardown. */
export function redisClient (t: Test, url = TEST_REDIS_URL): Redis {
  const r = new Redis(url, { maxRetriesPerRequest: 1 })
  r.on('error', () => { /* a test that kills Redis reports through its assertions */ })
  t.teardown(() => { r.disconnect() })
  return r
}
