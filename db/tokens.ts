// Queries on mcp_token and on the rights a token is checked against (collaborator, user).
import { sql, type Kysely } from 'kysely'
import type { Database, EnabledProjects, McpToken, ProjectType, UserRole } from './schema.js'
import { prepared } from './connect.js'

/** A token row as the auth step sees it, and (when asked) the project the request names with the owner's role in it. */
export interface TokenLookup {
  token: McpToken
  /** undefined when no project was asked for; null when there is no such project */
  project?: { id: string, name: string, type: ProjectType, public: boolean, role: UserRole | null } | null
}

/**
 * The whole of auth and project access for one request, written plainly with the query builder: the token by
 * primary key, its owner (which must still exist), and optionally the project by primary key with the owner's
 * collaborator row. The gateway sends `lookupTokens` (below), which must answer exactly as this does for every
 * key; this one is kept as its reference (test/core/token-lookup.test.ts checks the two agree).
 * Nothing is cached, so a revocation, a PATCH, a deleted owner or a removed collaborator — whoever made the
 * change, on whichever replica — applies to the very next request.
 */
export async function lookupToken (db: Kysely<Database>, tokenId: string, projectId: string | null): Promise<TokenLookup | undefined> {
  const base = db.selectFrom('mcp_token')
    .innerJoin('user', 'user.id', 'mcp_token.user_id')
    .selectAll('mcp_token')
    .where('mcp_token.token_id', '=', tokenId)
  if (projectId === null) {
    const token = await base.executeTakeFirst()
    return token === undefined ? undefined : { token }
  }
  const row = await base
    .leftJoin('project', join => join.on('project.id', '=', projectId))
    .leftJoin('collaborator', join => join
      .onRef('collaborator.project_id', '=', 'project.id')
      .onRef('collaborator.user_id', '=', 'mcp_token.user_id'))
    .select(['project.id as p_id', 'project.name as p_name', 'project.type as p_type', 'project.public as p_public', 'collaborator.role as p_role'])
    .executeTakeFirst()
  if (row === undefined) return undefined
  const { p_id: id, p_name: name, p_type: type, p_public: isPublic, p_role: role, ...token } = row
  return {
    token,
    project: id === null || name === null || type === null || isPublic === null ? null : { id, name, type, public: isPublic, role }
  }
}

export interface TokenLookupKey {
  tokenId: string
  /** a lower-case UUID, or null when the request names no project */
  projectId: string | null
}

/**
 * `lookupToken` for many requests at once, in one statement: the same joins, each key matched on primary keys
 * (mcp_token_pkey, user_pkey, project_pkey, collaborator_pkey). Answers in key order; undefined where the token
 * is unknown or its owner gone. Used to coalesce the lookups of requests that arrive together (core/token-lookup.ts),
 * one request alone included: as a prepared statement it costs PostgreSQL less than `lookupToken` does unprepared.
 */
export async function lookupTokens (db: Kysely<Database>, keys: TokenLookupKey[]): Promise<Array<TokenLookup | undefined>> {
  if (keys.length === 0) return []
  // One statement text for every batch size (the keys are two array parameters), so it is prepared once per
  // connection. Each array is read through a sub-select, which the planner does not look into: it estimates
  // the keys at 10 rows whether it sees the values (a plan for these parameters) or not (the generic plan), so
  // both plans cost the same and PostgreSQL keeps the cached generic plan after the first five runs, at any
  // size of the tables: small ones hashed, large ones probed by primary key, collaborator always probed by key.
  // (Why not plain array or JSON parameters: docs/performance.md, "generic plans for the named statements".)
  // The token's columns are listed, so a column InfraBox adds later cannot change its result type.
  const tokenIds = keys.map(k => k.tokenId)
  const projectIds = keys.map(k => k.projectId)
  const { rows } = await sql<McpToken & { k_i: string, p_id: string | null, p_name: string | null, p_type: ProjectType | null, p_public: boolean | null, p_role: UserRole | null }>`${sql.raw(prepared('ib_mcp_token_lookup'))}
    SELECT k.i AS k_i, t.token_id, t.token_hash, t.user_id, t.name, t.enabled_projects, t.allow_trigger,
           t.expires_at, t.revoked_at, t.last_used_at, t.created_at,
           p.id AS p_id, p.name AS p_name, p.type AS p_type, p.public AS p_public, c.role AS p_role
    FROM unnest((SELECT ${tokenIds}::varchar[]), (SELECT ${projectIds}::uuid[])) WITH ORDINALITY AS k(token_id, project_id, i)
    JOIN mcp_token t ON t.token_id = k.token_id
    JOIN "user" u ON u.id = t.user_id
    LEFT JOIN project p ON p.id = k.project_id
    LEFT JOIN collaborator c ON c.project_id = p.id AND c.user_id = t.user_id`.execute(db)
  const out: Array<TokenLookup | undefined> = new Array(keys.length).fill(undefined)
  for (const row of rows) {
    const i = Number(row.k_i) - 1
    const { k_i: _i, p_id: id, p_name: name, p_type: type, p_public: isPublic, p_role: role, ...token } = row
    out[i] = keys[i]?.projectId === null
      ? { token }
      : { token, project: id === null || name === null || type === null || isPublic === null ? null : { id, name, type, public: isPublic, role } }
  }
  return out
}

/**
 * Live entries of the token list, as the per-user cap counts them: tokens not revoked and not expired, plus grants
 * whose current access token lapsed but whose refresh can still renew it.
 */
export async function countLiveEntries (db: Kysely<Database>, userId: string, now: Date): Promise<number> {
  const row = await db.selectFrom('mcp_token as t')
    .leftJoin('mcp_oauth_grant as g', 'g.token_id', 't.token_id')
    .select(eb => eb.fn.countAll<string>().as('n'))
    .where('t.user_id', '=', userId)
    .where('t.revoked_at', 'is', null)
    .where(eb => eb.or([
      eb('t.expires_at', '>', now),
      eb.and([eb('g.ended_at', 'is', null), eb('g.expires_at', '>', now)])
    ]))
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

export interface NewToken {
  tokenId: string
  tokenHash: string
  userId: string
  name: string
  enabledProjects: EnabledProjects
  allowTrigger: boolean
  expiresAt: Date
}

export async function insertToken (db: Kysely<Database>, t: NewToken): Promise<McpToken> {
  return await db.insertInto('mcp_token').values({
    token_id: t.tokenId,
    token_hash: t.tokenHash,
    user_id: t.userId,
    name: t.name,
    enabled_projects: JSON.stringify(t.enabledProjects),
    allow_trigger: t.allowTrigger,
    expires_at: t.expiresAt
  }).returningAll().executeTakeFirstOrThrow()
}

/**
 * `insertToken` unless the user already holds `maxLive` live tokens (null then). The count and the insert run in one
 * transaction under a per-user advisory lock, so concurrent creations queue on it and the cap is exact (SPEC §13.5);
 * other users never wait for each other.
 */
export async function insertTokenWithinCap (db: Kysely<Database>, t: NewToken, maxLive: number): Promise<McpToken | null> {
  return await db.transaction().execute(async (trx) => {
    await lockUserTokens(trx, t.userId)
    if (await countLiveEntries(trx, t.userId, new Date()) >= maxLive) return null
    return await insertToken(trx, t)
  })
}

/** Holds the user's token-cap lock until the surrounding transaction ends. */
export async function lockUserTokens (trx: Kysely<Database>, userId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`ib_mcp_token_cap:${userId}`}, 0))`.execute(trx)
}

/** A user's tokens, newest first; revoked ones only when asked. */
export async function listTokens (db: Kysely<Database>, userId: string, includeRevoked: boolean): Promise<McpToken[]> {
  let q = db.selectFrom('mcp_token').selectAll().where('user_id', '=', userId)
  if (!includeRevoked) q = q.where('revoked_at', 'is', null)
  return await q.orderBy('created_at', 'desc').orderBy('token_id', 'desc').execute()
}

/** The user's own token, revoked or not. */
export async function findOwnToken (db: Kysely<Database>, userId: string, tokenId: string): Promise<McpToken | undefined> {
  return await db.selectFrom('mcp_token').selectAll()
    .where('token_id', '=', tokenId).where('user_id', '=', userId)
    .executeTakeFirst()
}

export interface TokenChanges {
  name?: string
  enabledProjects?: EnabledProjects
  allowTrigger?: boolean
  expiresAt?: Date
  revokedAt?: Date
}

/** Applies changes to a live (not revoked) token of the user; false when there is no such token. */
export async function updateOwnLiveToken (db: Kysely<Database>, userId: string, tokenId: string, c: TokenChanges): Promise<boolean> {
  const result = await db.updateTable('mcp_token')
    .set({
      ...(c.name !== undefined ? { name: c.name } : {}),
      ...(c.enabledProjects !== undefined ? { enabled_projects: JSON.stringify(c.enabledProjects) } : {}),
      ...(c.allowTrigger !== undefined ? { allow_trigger: c.allowTrigger } : {}),
      ...(c.expiresAt !== undefined ? { expires_at: c.expiresAt } : {}),
      ...(c.revokedAt !== undefined ? { revoked_at: c.revokedAt } : {})
    })
    .where('token_id', '=', tokenId)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  return result.numUpdatedRows > 0n
}

/** Sets last_used_at for many tokens in one statement; rows written less than a minute ago are left (replicas agree). */
export async function touchTokens (db: Kysely<Database>, usedAt: Map<string, Date>): Promise<void> {
  if (usedAt.size === 0) return
  const ids = [...usedAt.keys()]
  const times = ids.map(id => (usedAt.get(id) as Date).toISOString())
  await sql`
    UPDATE mcp_token AS t SET last_used_at = v.used_at
    FROM unnest(${ids}::varchar[], ${times}::timestamptz[]) AS v(token_id, used_at)
    WHERE t.token_id = v.token_id
      AND (t.last_used_at IS NULL OR t.last_used_at <= (v.used_at AT TIME ZONE 'UTC') - interval '1 minute')`.execute(db)
}

/** Which of `projectIds` the user collaborates on (any role). */
export async function collaboratingProjects (db: Kysely<Database>, userId: string, projectIds: string[]): Promise<Set<string>> {
  if (projectIds.length === 0) return new Set()
  const rows = await db.selectFrom('collaborator').select('project_id')
    .where('user_id', '=', userId).where('project_id', 'in', projectIds)
    .execute()
  return new Set(rows.map(r => r.project_id))
}
