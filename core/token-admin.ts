// Token administration rules (SPEC §6): name, scope and expiry checks, the per-user cap, and the views returned.
import type { Kysely } from 'kysely'
import type { Database, EnabledProjects, McpToken } from '../db/schema.js'
import { collaboratingProjects, findOwnToken, insertTokenWithinCap, listTokens, updateOwnLiveToken } from '../db/tokens.js'
import { grantsOfTokens } from '../db/oauth.js'
import { badRequest, conflict, GatewayError, notFound } from '../lib/errors.js'
import { mintToken } from './token.js'
import { UUID } from '../lib/ids.js'
import type { CreatedToken, CreateTokenBody, TokenView, UpdateTokenBody } from '../schemas/tokens.js'

export interface TokenPolicy {
  maxExpiryDays: number
  maxPerUser: number
}

const DAY_MS = 86_400_000
// Strict ISO 8601 date-time (a bare date counts as its midnight UTC); "tomorrow" or "1700000000" do not.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i

export function tokenView (t: McpToken, withRevoked = false): TokenView {
  return {
    token_id: t.token_id,
    name: t.name,
    enabled_projects: t.enabled_projects,
    allow_trigger: t.allow_trigger,
    expires_at: t.expires_at.toISOString(),
    created_at: t.created_at.toISOString(),
    last_used_at: t.last_used_at?.toISOString() ?? null,
    ...(withRevoked ? { revoked_at: t.revoked_at?.toISOString() ?? null } : {})
  }
}

function checkName (raw: string): string {
  const name = raw.trim()
  if (name.length < 1 || name.length > 128) throw badRequest('name must be 1 to 128 characters after trimming')
  if (name.includes('\u0000')) throw badRequest('name must not contain NUL characters')
  return name
}

function expiryFromDays (days: number | undefined, policy: TokenPolicy, now: Date): Date {
  const d = days ?? policy.maxExpiryDays
  if (!Number.isInteger(d) || d < 1 || d > policy.maxExpiryDays) {
    throw badRequest(`expires_days must be an integer from 1 to ${policy.maxExpiryDays}`)
  }
  return new Date(now.getTime() + d * DAY_MS)
}

/**
 * Normalises the scope map (lower-case ids, expiries as ISO UTC), refuses expiries that are malformed,
 * past or later than the token's, then checks that the owner collaborates on every project named (403).
 */
async function checkScope (db: Kysely<Database>, userId: string, scope: EnabledProjects, tokenExpiresAt: Date, now: Date): Promise<EnabledProjects> {
  const normalised: EnabledProjects = {}
  for (const [rawId, rawExpiry] of Object.entries(scope)) {
    const id = rawId.toLowerCase()
    // The route schema refuses these too; checked here as well so no embedding can widen a scope by accident.
    if (!UUID.test(id)) throw badRequest(`enabled_projects key ${JSON.stringify(rawId.slice(0, 64))} is not a project id`)
    if (rawExpiry === null) { normalised[id] = null; continue }
    if (!ISO_8601.test(rawExpiry) || Number.isNaN(Date.parse(rawExpiry))) {
      throw badRequest(`expiry of project ${id} is not an ISO 8601 date-time`)
    }
    const at = new Date(/[zZ]|[+-]\d{2}:?\d{2}$/.test(rawExpiry) || rawExpiry.length === 10 ? rawExpiry : `${rawExpiry}Z`)
    if (at.getTime() <= now.getTime()) throw badRequest(`expiry of project ${id} is in the past`)
    if (at.getTime() > tokenExpiresAt.getTime()) throw badRequest(`expiry of project ${id} is later than the token's (${tokenExpiresAt.toISOString()})`)
    normalised[id] = at.toISOString()
  }
  const ids = Object.keys(normalised)
  const allowed = await collaboratingProjects(db, userId, ids)
  const refused = ids.filter(id => !allowed.has(id))
  if (refused.length > 0) {
    throw new GatewayError(403, 'MCP_PROJECT_FORBIDDEN', `you are not a collaborator of project ${refused.join(', ')}`)
  }
  return normalised
}

export async function createToken (db: Kysely<Database>, policy: TokenPolicy, userId: string, body: CreateTokenBody, now = new Date()): Promise<CreatedToken> {
  const name = checkName(body.name)
  const expiresAt = expiryFromDays(body.expires_days, policy, now)
  const scope = await checkScope(db, userId, body.enabled_projects ?? {}, expiresAt, now)
  const minted = mintToken()
  const row = await insertTokenWithinCap(db, {
    tokenId: minted.tokenId,
    tokenHash: minted.tokenHash,
    userId,
    name,
    enabledProjects: scope,
    allowTrigger: body.allow_trigger ?? false,
    expiresAt
  }, policy.maxPerUser)
  if (row === null) throw conflict(`you already have ${policy.maxPerUser} live tokens; revoke one first`)
  return {
    token_id: row.token_id,
    token: minted.token,
    name: row.name,
    enabled_projects: row.enabled_projects,
    allow_trigger: row.allow_trigger,
    expires_at: row.expires_at.toISOString()
  }
}

export async function updateToken (db: Kysely<Database>, policy: TokenPolicy, userId: string, tokenId: string, body: UpdateTokenBody, now = new Date()): Promise<string[]> {
  const changed = Object.keys(body).filter(k => body[k as keyof UpdateTokenBody] !== undefined)
  if (changed.length === 0) throw badRequest('nothing to update: send name, enabled_projects, expires_days or allow_trigger')
  const current = await findOwnToken(db, userId, tokenId)
  if (current === undefined || current.revoked_at !== null) throw notFound(`no live token ${tokenId}`)
  if (body.expires_days !== undefined && (await grantsOfTokens(db, userId, [tokenId])).size > 0) {
    throw badRequest('this entry is an OAuth grant: its lifetime was chosen at consent and its access token renews hourly; end it with DELETE instead')
  }
  const expiresAt = body.expires_days !== undefined ? expiryFromDays(body.expires_days, policy, now) : current.expires_at
  const scope = body.enabled_projects !== undefined
    ? await checkScope(db, userId, body.enabled_projects, expiresAt, now)
    : body.expires_days !== undefined ? await checkScope(db, userId, current.enabled_projects, expiresAt, now) : undefined
  const ok = await updateOwnLiveToken(db, userId, tokenId, {
    ...(body.name !== undefined ? { name: checkName(body.name) } : {}),
    ...(scope !== undefined ? { enabledProjects: scope } : {}),
    ...(body.allow_trigger !== undefined ? { allowTrigger: body.allow_trigger } : {}),
    ...(body.expires_days !== undefined ? { expiresAt } : {})
  })
  if (!ok) throw notFound(`no live token ${tokenId}`)
  return changed
}

export async function revokeToken (db: Kysely<Database>, userId: string, tokenId: string, now = new Date()): Promise<void> {
  if (!await updateOwnLiveToken(db, userId, tokenId, { revokedAt: now })) throw notFound(`no live token ${tokenId}`)
}

export async function setTrigger (db: Kysely<Database>, userId: string, tokenId: string, allow: boolean): Promise<void> {
  if (!await updateOwnLiveToken(db, userId, tokenId, { allowTrigger: allow })) throw notFound(`no live token ${tokenId}`)
}

/**
 * The user's tokens; an OAuth grant is one of them (its token row), shown with the grant's expiry and an `oauth_grant`
 * note naming the client, so the dashboard lists and revokes it like any token.
 */
export async function listTokenViews (db: Kysely<Database>, userId: string, includeRevoked: boolean): Promise<TokenView[]> {
  const tokens = await listTokens(db, userId, includeRevoked)
  const grants = await grantsOfTokens(db, userId, tokens.map(t => t.token_id))
  return tokens.map(t => {
    const view = tokenView(t, includeRevoked)
    const grant = grants.get(t.token_id)
    if (grant === undefined) return view
    return {
      ...view,
      expires_at: grant.expiresAt.toISOString(),
      oauth_grant: { client_id: grant.clientId, client_name: grant.clientName, client_kind: grant.kind, scope: grant.scope, access_token_expires_at: view.expires_at }
    }
  })
}
