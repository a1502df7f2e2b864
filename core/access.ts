// Who a token speaks for and what it may reach: token checks, project scope and the trigger right (REST and MCP alike).
import type { EnabledProjects, McpToken, ProjectType, UserRole } from '../db/schema.js'
import { getProjectAccess } from '../db/projects.js'
import { forbiddenProject, forbiddenTrigger, GatewayError, notFound } from './errors.js'
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

export interface Authentication {
  /** the presented token id when the credential is well-formed (for the audit row), else null */
  presentedTokenId: string | null
  principal: Principal | null
  /** the row, so the caller can note its use */
  row: McpToken | null
  credentialSent: boolean
}

/** Checks an Authorization header: the offline format first, then one lookup (cached) and the row's state. */
export async function authenticate (services: GatewayServices, authorization: string | undefined, now = Date.now()): Promise<Authentication> {
  const credentialSent = authorization !== undefined && authorization.trim() !== ''
  const credential = credentialFrom(authorization)
  if (credential === null || !isWellFormedToken(credential)) return { presentedTokenId: null, principal: null, row: null, credentialSent }
  const tokenId = tokenIdOf(credential)
  const row = await services.tokens.resolve(tokenId)
  const valid = row !== null &&
    sameHash(row.token_hash, hashToken(credential)) &&
    row.revoked_at === null &&
    row.expires_at.getTime() > now
  if (!valid) return { presentedTokenId: tokenId, principal: null, row: null, credentialSent }
  return {
    presentedTokenId: tokenId,
    row,
    credentialSent,
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
export function inScope (principal: Principal, projectId: string, now = Date.now()): boolean {
  const scope = principal.enabledProjects
  if (Object.keys(scope).length === 0) return true
  const id = projectId.toLowerCase()
  if (!Object.hasOwn(scope, id)) return false
  const expiry = scope[id]
  return expiry === null || expiry === undefined || Date.parse(expiry) > now
}

/**
 * SPEC §4 project access: out of scope → 403 without touching the database; in scope → one query:
 * no such project → 404, owner not a collaborator (public or not) → 403.
 */
export async function authorizeProject (services: GatewayServices, principal: Principal, projectId: string): Promise<ProjectGrant> {
  if (!inScope(principal, projectId)) throw forbiddenProject(projectId)
  const access = await getProjectAccess(services.db, principal.userId, projectId)
  if (access === null) throw notFound(`no project ${projectId}`)
  if (access.role === null) throw forbiddenProject(projectId)
  return { ...access.project, role: access.role }
}

/** SPEC §4 trigger access: the token's own right, on a project the owner collaborates on. */
export function authorizeTrigger (principal: Principal, grant: ProjectGrant): void {
  if (!principal.allowTrigger) throw forbiddenTrigger(grant.id)
}
