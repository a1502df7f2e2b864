// The grant model under @node-oauth/oauth2-server: codes, grants and refresh tokens over the gateway's tables, access tokens as ib_mcp_ rows.
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { Kysely } from 'kysely'
import OAuth2Server from '@node-oauth/oauth2-server'
import type { Database, EnabledProjects } from '../db/schema.js'
import {
  consumeCode, createGrant, endGrant, findCode, findRefreshToken, grantAlive, grantById, insertCode, rotateGrant, useRefreshToken,
  type GrantState
} from '../db/oauth.js'
import { hashToken, mintToken, mintTokenWithId, tokenIdOf } from '../core/token.js'
import { knownClient, matchesRedirectUri, type OAuthClient } from './clients.js'
import { SCOPES, type OAuthSettings } from './settings.js'

/** What the user agreed to on the consent page; the code carries it to the token endpoint. */
export interface Consent {
  userId: string
  enabledProjects: EnabledProjects
  allowTrigger: boolean
  grantExpiresAt: Date
  /** the resource the client named (always this gateway's MCP endpoint), or null */
  resource: string | null
}

/** The library's "user" of an authorization (consent page → code): who consented to what. */
export class ConsentingUser {
  constructor (readonly consent: Consent) {}
}

/** The library's "user" of a code exchange: the consent, and the id its grant is given when the code is consumed. */
export class NewGrantUser {
  constructor (readonly consent: Consent, readonly grantId: string, readonly name: string) {}
}

/** The library's "user" of a refresh: the live grant being renewed. */
export class GrantUser {
  constructor (readonly grant: GrantState) {}
}

/** The library's client: ours, with the fields it reads. */
export class LibraryClient implements OAuth2Server.Client {
  readonly id: string
  readonly redirectUris: string[]
  readonly grants = ['authorization_code', 'refresh_token']
  constructor (readonly client: OAuthClient) {
    this.id = client.clientId
    this.redirectUris = client.redirectUris
  }
}

/** What one token request did, for its audit row. */
export interface ExchangeReport {
  tokenId: string | null
  userId: string | null
  grantId: string | null
  /** a notable event: the grant ended because a used refresh token or code came back */
  event: 'refresh_token_reuse' | 'code_replay' | null
}

export const newExchangeReport = (): ExchangeReport => ({ tokenId: null, userId: null, grantId: null, event: null })

const sha256 = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex')
const REFRESH_PREFIX = 'ibmr_'

function invalidGrant (message: string): OAuth2Server.InvalidGrantError {
  return new OAuth2Server.InvalidGrantError(message)
}

type Model = OAuth2Server.AuthorizationCodeModel & OAuth2Server.RefreshTokenModel

/** Scope as the library hands it around (an array), never empty: "mcp" is what every grant has. */
function scopeList (scope: string[] | string | undefined): string[] {
  const list = Array.isArray(scope) ? scope : (scope ?? '').split(' ')
  const known = list.filter((s): s is typeof SCOPES[number] => (SCOPES as readonly string[]).includes(s))
  return known.includes('mcp') ? known : ['mcp', ...known]
}

/**
 * The model for one request: the library decides the protocol (client, PKCE, expiry, redirect URI, rotation order);
 * this says where each thing lives. `report` collects what the audit row of the request should say.
 */
export function grantModel (db: Kysely<Database>, settings: OAuthSettings, report: ExchangeReport, maxLiveEntries: number): Model {
  const clientOf = async (clientId: string): Promise<LibraryClient | false> => {
    const client = await knownClient(db, clientId)
    return client === null ? false : new LibraryClient(client)
  }

  return {
    // Public clients only: a secret, if one is sent, proves nothing here; PKCE binds the code to its client instead.
    getClient: async (clientId: string) => await clientOf(clientId),

    validateRedirectUri: async (redirectUri: string, client: OAuth2Server.Client) =>
      client instanceof LibraryClient && matchesRedirectUri(client.client, redirectUri),

    validateScope: async (_user: OAuth2Server.User, _client: OAuth2Server.Client, scope?: string[]) => scopeList(scope),

    generateAuthorizationCode: async () => randomBytes(32).toString('base64url'),

    saveAuthorizationCode: async (code, client, user) => {
      if (!(user instanceof ConsentingUser) || !(client instanceof LibraryClient)) throw new OAuth2Server.ServerError('authorization without a consent')
      if (code.codeChallenge === undefined || code.codeChallengeMethod !== 'S256') throw new OAuth2Server.InvalidRequestError('code_challenge with method S256 is required')
      const c = user.consent
      await insertCode(db, {
        codeHash: sha256(code.authorizationCode),
        clientId: client.id,
        userId: c.userId,
        redirectUri: code.redirectUri,
        codeChallenge: code.codeChallenge,
        scope: scopeList(code.scope).join(' '),
        resource: c.resource,
        enabledProjects: c.enabledProjects,
        allowTrigger: c.allowTrigger,
        grantExpiresAt: c.grantExpiresAt,
        expiresAt: code.expiresAt
      }, new Date())
      return { ...code, client, user }
    },

    getAuthorizationCode: async (authorizationCode: string) => {
      const row = await findCode(db, sha256(authorizationCode))
      if (row === undefined) return false
      report.userId = row.user_id
      if (row.used_at !== null) {
        // RFC 6749 §4.1.2: a code used twice revokes what it was exchanged for; someone else may hold it.
        report.event = 'code_replay'
        if (row.grant_id !== null) {
          report.grantId = row.grant_id
          const grant = await grantById(db, row.grant_id)
          if (grant !== undefined) {
            report.tokenId = grant.tokenId
            await endGrant(db, grant, 'code_replay', new Date())
          }
        }
        return false
      }
      const client = await clientOf(row.client_id)
      if (client === false) return false
      const consent: Consent = {
        userId: row.user_id,
        enabledProjects: row.enabled_projects,
        allowTrigger: row.allow_trigger,
        grantExpiresAt: row.grant_expires_at,
        resource: row.resource
      }
      return {
        authorizationCode,
        expiresAt: row.expires_at,
        redirectUri: row.redirect_uri,
        scope: scopeList(row.scope),
        client,
        user: new NewGrantUser(consent, randomUUID(), client.client.name),
        codeChallenge: row.code_challenge,
        codeChallengeMethod: 'S256'
      }
    },

    revokeAuthorizationCode: async (code) => {
      if (!(code.user instanceof NewGrantUser)) return false
      return await consumeCode(db, sha256(code.authorizationCode), code.user.grantId, new Date())
    },

    generateAccessToken: async (_client, user) =>
      user instanceof GrantUser ? mintTokenWithId(user.grant.tokenId).token : mintToken().token,

    generateRefreshToken: async () => `${REFRESH_PREFIX}${randomBytes(32).toString('base64url')}`,

    saveToken: async (token, client, user) => {
      const now = new Date()
      const refreshToken = token.refreshToken
      if (refreshToken === undefined) throw new OAuth2Server.ServerError('no refresh token was generated')
      const tokenId = tokenIdOf(token.accessToken)
      const lifetimeEnd = new Date(now.getTime() + settings.accessTokenTtlSeconds * 1000)
      if (user instanceof NewGrantUser) {
        const c = user.consent
        const accessExpiresAt = new Date(Math.min(lifetimeEnd.getTime(), c.grantExpiresAt.getTime()))
        const created = await createGrant(db, {
          grantId: user.grantId,
          clientId: client.id,
          userId: c.userId,
          scope: scopeList(token.scope).join(' '),
          resource: c.resource,
          grantExpiresAt: c.grantExpiresAt,
          tokenId,
          tokenHash: hashToken(token.accessToken),
          name: user.name,
          enabledProjects: c.enabledProjects,
          allowTrigger: c.allowTrigger,
          accessExpiresAt,
          refreshHash: sha256(refreshToken)
        }, maxLiveEntries)
        if (created === 'owner-gone') throw invalidGrant('the user who consented no longer exists')
        // consents given in parallel each passed the page's early check; the exchange is where the cap is exact
        if (created === 'cap-reached') throw invalidGrant(`the user already has ${maxLiveEntries} live MCP tokens and grants (MCP_TOKEN_MAX_PER_USER); end one in InfraBox and authorize again`)
        Object.assign(report, { tokenId, userId: c.userId, grantId: user.grantId })
        return { ...token, accessTokenExpiresAt: accessExpiresAt, refreshTokenExpiresAt: c.grantExpiresAt, scope: scopeList(token.scope), client, user }
      }
      if (user instanceof GrantUser) {
        const g = user.grant
        const accessExpiresAt = new Date(Math.min(lifetimeEnd.getTime(), g.expiresAt.getTime()))
        const rotated = await rotateGrant(db, {
          grantId: g.grantId, tokenId: g.tokenId, tokenHash: hashToken(token.accessToken), accessExpiresAt, refreshHash: sha256(refreshToken), refreshExpiresAt: g.expiresAt
        })
        if (!rotated) throw invalidGrant('the grant has ended')
        Object.assign(report, { tokenId: g.tokenId, userId: g.userId, grantId: g.grantId })
        return { ...token, accessTokenExpiresAt: accessExpiresAt, refreshTokenExpiresAt: g.expiresAt, scope: scopeList(g.scope), client, user }
      }
      throw new OAuth2Server.ServerError('a token without a grant')
    },

    getRefreshToken: async (refreshToken: string) => {
      if (!refreshToken.startsWith(REFRESH_PREFIX)) return false
      const found = await findRefreshToken(db, sha256(refreshToken))
      if (found === undefined) return false
      const { grant } = found
      Object.assign(report, { tokenId: grant.tokenId, userId: grant.userId, grantId: grant.grantId })
      const now = new Date()
      if (found.usedAt !== null) {
        // A rotated refresh token came back: it was copied. End the whole grant, access and refresh (OAuth 2.1 §4.3.1).
        report.event = 'refresh_token_reuse'
        await endGrant(db, grant, 'refresh_token_reuse', now)
        return false
      }
      if (!grantAlive(grant, now) || found.expiresAt.getTime() <= now.getTime()) return false
      const client = await clientOf(grant.clientId)
      if (client === false) return false
      return { refreshToken, refreshTokenExpiresAt: found.expiresAt, scope: scopeList(grant.scope), client, user: new GrantUser(grant) }
    },

    revokeToken: async (token) => {
      if (!(token.user instanceof GrantUser)) return false
      if (await useRefreshToken(db, sha256(token.refreshToken), new Date())) return true
      // Two requests with the same refresh token at once: the loser is a reuse too.
      report.event = 'refresh_token_reuse'
      await endGrant(db, token.user.grant, 'refresh_token_reuse', new Date())
      return false
    },

    // The library's resource-server half is unused: the gateway's own chain checks access tokens (SPEC §4).
    getAccessToken: async () => false
  }
}

/** Hash under which a refresh token is stored (for revocation by value). */
export const refreshTokenHash = (refreshToken: string): string | null =>
  refreshToken.startsWith(REFRESH_PREFIX) ? sha256(refreshToken) : null
