// Queries of the OAuth server: clients, codes, grants and refresh tokens (the gateway's own tables), and the consent's reads.
import { randomBytes } from 'node:crypto'
import { sql, type Kysely, type Selectable } from 'kysely'
import type { Database, EnabledProjects, Json, McpOAuthClientTable, McpOAuthCodeTable, ProjectType, UserRole } from './schema.js'
import { countLiveEntries, insertToken, lockUserTokens } from './tokens.js'

export type OAuthClientRow = Selectable<McpOAuthClientTable>
export type OAuthCodeRow = Selectable<McpOAuthCodeTable>

const KEY_ID = 1

/** The shared secret of the consent form (created once, by whichever replica asks first). */
export async function oauthFormKey (db: Kysely<Database>): Promise<string> {
  await db.insertInto('mcp_oauth_key')
    .values({ id: KEY_ID, secret: randomBytes(32).toString('hex') })
    .onConflict(oc => oc.column('id').doNothing())
    .execute()
  const row = await db.selectFrom('mcp_oauth_key').select('secret').where('id', '=', KEY_ID).executeTakeFirstOrThrow()
  return row.secret
}

export interface ClientRecord {
  clientId: string
  kind: OAuthClientRow['kind']
  clientName: string
  redirectUris: string[]
  metadata: Json
  /** metadata documents: when the document was read */
  fetchedAt: Date | null
}

/** Inserts a client, or refreshes a metadata-document client's copy of its document. */
export async function saveClient (db: Kysely<Database>, c: ClientRecord): Promise<OAuthClientRow> {
  const values = {
    client_id: c.clientId,
    kind: c.kind,
    client_name: c.clientName,
    redirect_uris: JSON.stringify(c.redirectUris),
    metadata: JSON.stringify(c.metadata),
    fetched_at: c.fetchedAt
  }
  return await db.insertInto('mcp_oauth_client').values(values)
    .onConflict(oc => oc.column('client_id').doUpdateSet({
      client_name: values.client_name,
      redirect_uris: values.redirect_uris,
      metadata: values.metadata,
      fetched_at: values.fetched_at
    }))
    .returningAll().executeTakeFirstOrThrow()
}

export async function findClient (db: Kysely<Database>, clientId: string): Promise<OAuthClientRow | undefined> {
  return await db.selectFrom('mcp_oauth_client').selectAll().where('client_id', '=', clientId).executeTakeFirst()
}

export interface NewCode {
  codeHash: string
  clientId: string
  userId: string
  redirectUri: string
  codeChallenge: string
  scope: string
  resource: string | null
  enabledProjects: EnabledProjects
  allowTrigger: boolean
  grantExpiresAt: Date
  expiresAt: Date
}

/** Stores a code; codes that expired more than a day ago go at the same time (replays of older ones need no trace). */
export async function insertCode (db: Kysely<Database>, c: NewCode, now: Date): Promise<void> {
  await db.deleteFrom('mcp_oauth_code').where('expires_at', '<', new Date(now.getTime() - 86_400_000)).execute()
  await db.insertInto('mcp_oauth_code').values({
    code_hash: c.codeHash,
    client_id: c.clientId,
    user_id: c.userId,
    redirect_uri: c.redirectUri,
    code_challenge: c.codeChallenge,
    scope: c.scope,
    resource: c.resource,
    enabled_projects: JSON.stringify(c.enabledProjects),
    allow_trigger: c.allowTrigger,
    grant_expires_at: c.grantExpiresAt,
    expires_at: c.expiresAt
  }).execute()
}

export async function findCode (db: Kysely<Database>, codeHash: string): Promise<OAuthCodeRow | undefined> {
  return await db.selectFrom('mcp_oauth_code').selectAll().where('code_hash', '=', codeHash).executeTakeFirst()
}

/** Marks a code used and names the grant it becomes; false when another exchange got there first. */
export async function consumeCode (db: Kysely<Database>, codeHash: string, grantId: string, now: Date): Promise<boolean> {
  const result = await db.updateTable('mcp_oauth_code')
    .set({ used_at: now, grant_id: grantId })
    .where('code_hash', '=', codeHash)
    .where('used_at', 'is', null)
    .executeTakeFirst()
  return result.numUpdatedRows > 0n
}

export interface NewGrant {
  grantId: string
  clientId: string
  userId: string
  scope: string
  resource: string | null
  grantExpiresAt: Date
  /** the mcp_token row the grant owns */
  tokenId: string
  tokenHash: string
  name: string
  enabledProjects: EnabledProjects
  allowTrigger: boolean
  accessExpiresAt: Date
  refreshHash: string
}

/**
 * The token row, the grant and its first refresh token, together or not at all: `owner-gone` when the user no longer
 * exists, `cap-reached` when the user already holds `maxLive` live entries. The count and the inserts run under the
 * same per-user lock as a token created over REST (SPEC §13.5), so consents in flight cannot overshoot the cap.
 */
export async function createGrant (db: Kysely<Database>, g: NewGrant, maxLive: number): Promise<'created' | 'owner-gone' | 'cap-reached'> {
  return await db.transaction().execute(async (trx) => {
    await lockUserTokens(trx, g.userId)
    const owner = await trx.selectFrom('user').select('id').where('id', '=', g.userId).executeTakeFirst()
    if (owner === undefined) return 'owner-gone'
    if (await countLiveEntries(trx, g.userId, new Date()) >= maxLive) return 'cap-reached'
    await insertToken(trx, {
      tokenId: g.tokenId,
      tokenHash: g.tokenHash,
      userId: g.userId,
      name: g.name,
      enabledProjects: g.enabledProjects,
      allowTrigger: g.allowTrigger,
      expiresAt: g.accessExpiresAt
    })
    await trx.insertInto('mcp_oauth_grant').values({
      grant_id: g.grantId,
      token_id: g.tokenId,
      client_id: g.clientId,
      user_id: g.userId,
      scope: g.scope,
      resource: g.resource,
      expires_at: g.grantExpiresAt
    }).execute()
    await trx.insertInto('mcp_oauth_refresh_token').values({ token_hash: g.refreshHash, grant_id: g.grantId, expires_at: g.grantExpiresAt }).execute()
    return 'created'
  })
}

/** A grant with what decides whether it is alive: its token row's revocation and its owner. */
export interface GrantState {
  grantId: string
  tokenId: string
  clientId: string
  userId: string
  scope: string
  resource: string | null
  expiresAt: Date
  endedAt: Date | null
  /** the token row's revoked_at (DELETE /tokens/:id sets it); null also when the row is gone */
  revokedAt: Date | null
  /** the current access token's hash (null when the row is gone) */
  tokenHash: string | null
  rowExists: boolean
}

/** Alive: not ended, not expired, its token row present and not revoked. */
export const grantAlive = (g: GrantState, now: Date): boolean =>
  g.endedAt === null && g.revokedAt === null && g.rowExists && g.expiresAt.getTime() > now.getTime()

function grantStateQuery (db: Kysely<Database>) {
  return db.selectFrom('mcp_oauth_grant as g')
    .leftJoin('mcp_token as t', 't.token_id', 'g.token_id')
    .select(['g.grant_id', 'g.token_id', 'g.client_id', 'g.user_id', 'g.scope', 'g.resource', 'g.expires_at', 'g.ended_at', 't.revoked_at', 't.token_hash', 't.token_id as row_token_id'])
}

type GrantStateRow = Awaited<ReturnType<ReturnType<typeof grantStateQuery>['executeTakeFirstOrThrow']>>

const grantStateOf = (r: GrantStateRow): GrantState => ({
  grantId: r.grant_id,
  tokenId: r.token_id,
  clientId: r.client_id,
  userId: r.user_id,
  scope: r.scope,
  resource: r.resource,
  expiresAt: r.expires_at,
  endedAt: r.ended_at,
  revokedAt: r.revoked_at,
  tokenHash: r.token_hash,
  rowExists: r.row_token_id !== null
})

export async function grantById (db: Kysely<Database>, grantId: string): Promise<GrantState | undefined> {
  const r = await grantStateQuery(db).where('g.grant_id', '=', grantId).executeTakeFirst()
  return r === undefined ? undefined : grantStateOf(r)
}

export async function grantByTokenId (db: Kysely<Database>, tokenId: string): Promise<GrantState | undefined> {
  const r = await grantStateQuery(db).where('g.token_id', '=', tokenId).executeTakeFirst()
  return r === undefined ? undefined : grantStateOf(r)
}

export interface RefreshTokenState { grant: GrantState, expiresAt: Date, usedAt: Date | null }

export async function findRefreshToken (db: Kysely<Database>, tokenHash: string): Promise<RefreshTokenState | undefined> {
  const r = await db.selectFrom('mcp_oauth_refresh_token').select(['grant_id', 'expires_at', 'used_at']).where('token_hash', '=', tokenHash).executeTakeFirst()
  if (r === undefined) return undefined
  const grant = await grantById(db, r.grant_id)
  return grant === undefined ? undefined : { grant, expiresAt: r.expires_at, usedAt: r.used_at }
}

/** Marks a refresh token used (compare-and-set); false when it already was, i.e. it is being presented again. */
export async function useRefreshToken (db: Kysely<Database>, tokenHash: string, now: Date): Promise<boolean> {
  const result = await db.updateTable('mcp_oauth_refresh_token')
    .set({ used_at: now })
    .where('token_hash', '=', tokenHash)
    .where('used_at', 'is', null)
    .executeTakeFirst()
  return result.numUpdatedRows > 0n
}

export interface Rotation {
  grantId: string
  tokenId: string
  tokenHash: string
  accessExpiresAt: Date
  refreshHash: string
  refreshExpiresAt: Date
}

/** A new access token (the grant's row gets the new hash) and a new refresh token; false when the row was revoked meanwhile. */
export async function rotateGrant (db: Kysely<Database>, r: Rotation): Promise<boolean> {
  return await db.transaction().execute(async (trx) => {
    const updated = await trx.updateTable('mcp_token')
      .set({ token_hash: r.tokenHash, expires_at: r.accessExpiresAt })
      .where('token_id', '=', r.tokenId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst()
    if (updated.numUpdatedRows === 0n) return false
    await trx.insertInto('mcp_oauth_refresh_token').values({ token_hash: r.refreshHash, grant_id: r.grantId, expires_at: r.refreshExpiresAt }).execute()
    return true
  })
}

/** Ends a grant: its access token (the token row is revoked, so the chain refuses it) and every refresh token with it. */
export async function endGrant (db: Kysely<Database>, grant: Pick<GrantState, 'grantId' | 'tokenId'>, reason: string, now: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('mcp_oauth_grant').set({ ended_at: now, ended_reason: reason })
      .where('grant_id', '=', grant.grantId).where('ended_at', 'is', null).execute()
    await trx.updateTable('mcp_token').set({ revoked_at: now })
      .where('token_id', '=', grant.tokenId).where('revoked_at', 'is', null).execute()
  })
}

export interface GrantEntry { tokenId: string, clientId: string, clientName: string, kind: OAuthClientRow['kind'], scope: string, expiresAt: Date }

/** The grants behind some of a user's token rows, for the token list. */
export async function grantsOfTokens (db: Kysely<Database>, userId: string, tokenIds: string[]): Promise<Map<string, GrantEntry>> {
  if (tokenIds.length === 0) return new Map()
  const rows = await db.selectFrom('mcp_oauth_grant as g')
    .innerJoin('mcp_oauth_client as c', 'c.client_id', 'g.client_id')
    .select(['g.token_id', 'g.client_id', 'c.client_name', 'c.kind', 'g.scope', 'g.expires_at'])
    .where('g.user_id', '=', userId)
    .where('g.token_id', 'in', tokenIds)
    .execute()
  return new Map(rows.map(r => [r.token_id, { tokenId: r.token_id, clientId: r.client_id, clientName: r.client_name, kind: r.kind, scope: r.scope, expiresAt: r.expires_at }]))
}

export interface ConsentProject { id: string, name: string, type: ProjectType, role: UserRole }

/** Every project the user collaborates on, by name: the consent page's choices. */
export async function collaborationsOf (db: Kysely<Database>, userId: string): Promise<ConsentProject[]> {
  return await db.selectFrom('collaborator as c')
    .innerJoin('project as p', 'p.id', 'c.project_id')
    .select(['p.id', 'p.name', 'p.type', 'c.role'])
    .where('c.user_id', '=', userId)
    .orderBy(sql`lower(p.name)`).orderBy('p.id')
    .execute()
}

/** How the consent page names the signed-in user. */
export async function displayNameOf (db: Kysely<Database>, userId: string): Promise<string | null> {
  const row = await db.selectFrom('user').select(['username', 'name', 'email']).where('id', '=', userId).executeTakeFirst()
  if (row === undefined) return null
  return row.name ?? row.username ?? row.email ?? null
}
