// Who a token speaks for and what it may reach: token checks, project scope and the trigger right (REST and MCP alike).
import type { EnabledProjects, McpToken, ProjectType, UserRole } from '../db/schema.js'
import { getProjectAccess, scopedProjectIds } from '../db/projects.js'
import type { TokenLookup } from '../db/tokens.js'
import { UUID } from '../lib/ids.js'
import { forbiddenProject, forbiddenTrigger, GatewayError, notFound } from '../lib/errors.js'
import type { GatewayServices } from './services.js'
import { credentialFrom, isWellFormedToken, sameHash, tokenIdOf, hashToken } from './token.js'

/** A validated MCP token, as the rest of the chain sees it. */
export interface Principal {
  tokenId: string
  userId: string
  enabledProjects: EnabledProjects
  allowTrigger: boolean
  expiresAt: Date
}

export interface ProjectGrant {
  id: string
  name: string
  type: ProjectType
  public: boolean
  role: UserRole
}

export const REALM = 'Bearer realm="infrabox-mcp"'

/** One body whatever the reason, so a caller learns nothing about which tokens exist. */
export function invalidToken (credentialSent: boolean): GatewayError {
  return new GatewayError(401, 'MCP_INVALID_TOKEN', 'a valid, unexpired MCP token (Authorization: Bearer ib_mcp_...) is required',
    { 'www-authenticate': credentialSent ? `${REALM}, error="invalid_token"` : REALM })
}

/** The project a request names, looked up together with its token (undefined: none was asked for). */
export type PrefetchedProject = TokenLookup['project']

export interface Authentication {
  /** the presented token id when the credential is well-formed (for the audit row), else null */
  presentedTokenId: string | null
  principal: Principal | null
  /** the row, so the caller can note its use */
  row: McpToken | null
  credentialSent: boolean
  /** the project looked up in the same query, for the project-access step */
  project: PrefetchedProject
}

/**
 * Checks an Authorization header: the offline format first (no database work for garbage), then one indexed
 * query for the token, its owner and — when the request names one — the project and the owner's role in it.
 * The query is live (started after the request arrived); requests arriving together share one statement
 * (core/token-lookup.ts).
 */
export async function authenticate (services: GatewayServices, authorization: string | undefined, projectId: string | null = null, now = Date.now()): Promise<Authentication> {
  const credentialSent = authorization !== undefined && authorization.trim() !== ''
  const credential = credentialFrom(authorization)
  if (credential === null || !isWellFormedToken(credential)) return { presentedTokenId: null, principal: null, row: null, credentialSent, project: undefined }
  const tokenId = tokenIdOf(credential)
  const lookup = await services.tokenLookups.lookup(tokenId, projectId !== null && UUID.test(projectId) ? projectId.toLowerCase() : null)
  const row = lookup?.token ?? null
  const valid = row !== null &&
    sameHash(row.token_hash, hashToken(credential)) &&
    row.revoked_at === null &&
    row.expires_at.getTime() > now
  if (!valid) return { presentedTokenId: tokenId, principal: null, row: null, credentialSent, project: undefined }
  return {
    presentedTokenId: tokenId,
    row,
    credentialSent,
    project: lookup?.project,
    principal: {
      tokenId,
      userId: row.user_id,
      enabledProjects: row.enabled_projects,
      allowTrigger: row.allow_trigger,
      expiresAt: row.expires_at
    }
  }
}

/** Is the project in the token's scope, with its own expiry not passed? (`{}` = every project of the owner.) */
export function inScope (principal: Principal, projectId: string, now = new Date()): boolean {
  const allowed = scopedProjectIds(principal.enabledProjects, now)
  return allowed === null || allowed.includes(projectId.toLowerCase())
}

/**
 * SPEC §4 project access: out of scope → 403; in scope: no such project → 404, owner not a collaborator
 * (public or not) → 403. Uses the project fetched with the token when there is one, else one query.
 */
export async function authorizeProject (services: GatewayServices, principal: Principal, projectId: string, prefetched?: PrefetchedProject): Promise<ProjectGrant> {
  return authorizePrefetched(principal, projectId, prefetched) ?? grantOf(projectId, await projectWithRole(services, principal, projectId))
}

/**
 * `authorizeProject` without waiting when the project was fetched with the token (the REST chain's case): the grant,
 * or the same refusal thrown; null when the project still has to be looked up.
 */
export function authorizePrefetched (principal: Principal, projectId: string, prefetched?: PrefetchedProject): ProjectGrant | null {
  if (!inScope(principal, projectId)) throw forbiddenProject(projectId)
  if (prefetched === undefined || (prefetched !== null && prefetched.id !== projectId.toLowerCase())) return null
  return grantOf(projectId, prefetched)
}

function grantOf (projectId: string, project: NamedProject): ProjectGrant {
  if (project === null) throw notFound(`no project ${projectId}`)
  if (project.role === null) throw forbiddenProject(projectId)
  return { ...project, role: project.role }
}

type NamedProject = NonNullable<PrefetchedProject> | null

/**
 * The project and the owner's role when the auth step could not fetch them with the token (an MCP call names its
 * project in the body, read after auth): through the same coalesced, prepared lookup, so the calls that arrive
 * together share one statement. Should the token have gone in the meantime, the project is read on its own.
 */
async function projectWithRole (services: GatewayServices, principal: Principal, projectId: string): Promise<NamedProject> {
  const id = projectId.toLowerCase()
  if (UUID.test(id)) {
    const found = await services.tokenLookups.lookup(principal.tokenId, id)
    if (found?.project !== undefined) return found.project
  }
  const access = await getProjectAccess(services.db, principal.userId, projectId)
  return access === null ? null : { ...access.project, role: access.role }
}

/** SPEC §4 trigger access: the token's own right, on a project the owner collaborates on. */
export function authorizeTrigger (principal: Principal, grant: ProjectGrant): void {
  if (!principal.allowTrigger) throw forbiddenTrigger(grant.id)
}
