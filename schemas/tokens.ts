// Schemas of the token administration routes, in the shapes InfraBox's dashboard sends and renders.
import { Type, type Static, type TProperties } from '@fastify/type-provider-typebox'
import { DateTime, NullableDateTime, Page, PageQuery, Uuid } from './common.js'

export const TokenId = Type.String({ pattern: '^[0-9a-f]{16}$', description: 'the 16 hex characters after ib_mcp_' })
export const TokenParams = Type.Object({ tokenId: TokenId })

/** `{"<project uuid>": "<ISO 8601 expiry>" | null}`; `{}` = every project the owner collaborates on. */
export const EnabledProjects = Type.Record(
  Type.String(),
  Type.Union([Type.Null(), Type.String({ maxLength: 64 })]),
  {
    // propertyNames makes a bad key an error; a key pattern alone would let ajv's removeAdditional drop it,
    // silently widening the scope to {} (every project)
    propertyNames: { pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' },
    maxProperties: 1000,
    description: 'project id -> its own expiry (ISO 8601) or null; {} means all of the owner\'s projects'
  }
)

const Name = Type.String({ maxLength: 512, description: '1-128 characters after trimming' })

/**
 * A token body closed to unknown fields (SPEC §13.7): `additionalProperties: false` for the document, and
 * `propertyNames` to make an unknown field a 400, because Fastify's Ajv (removeAdditional) would otherwise drop
 * it silently — a PATCH of only unknown fields then reached the handler empty.
 */
const closed = <P extends TProperties>(properties: P) =>
  Type.Object(properties, { additionalProperties: false, propertyNames: { enum: Object.keys(properties) } })

export const CreateTokenBody = closed({
  name: Name,
  enabled_projects: Type.Optional(EnabledProjects),
  expires_days: Type.Optional(Type.Integer({ description: 'lifetime in days, 1 to MCP_TOKEN_MAX_EXPIRY_DAYS (default the maximum)' })),
  allow_trigger: Type.Optional(Type.Boolean({ default: false }))
})
export type CreateTokenBody = Static<typeof CreateTokenBody>

export const UpdateTokenBody = closed({
  name: Type.Optional(Name),
  enabled_projects: Type.Optional(EnabledProjects),
  expires_days: Type.Optional(Type.Integer()),
  allow_trigger: Type.Optional(Type.Boolean())
})
export type UpdateTokenBody = Static<typeof UpdateTokenBody>

export const TokenView = Type.Object({
  token_id: TokenId,
  name: Type.String(),
  enabled_projects: EnabledProjects,
  allow_trigger: Type.Boolean(),
  expires_at: DateTime,
  created_at: DateTime,
  last_used_at: NullableDateTime,
  revoked_at: Type.Optional(NullableDateTime),
  oauth_grant: Type.Optional(Type.Object({
    client_id: Type.String(),
    client_name: Type.String(),
    client_kind: Type.Union([Type.Literal('registered'), Type.Literal('metadata_document')]),
    scope: Type.String(),
    access_token_expires_at: DateTime
  }, { description: 'present when the entry is an OAuth grant: a client connected through the consent page; its expires_at is the grant\'s, its access token rotates' }))
})
export type TokenView = Static<typeof TokenView>

export const CreatedToken = Type.Object({
  token_id: TokenId,
  token: Type.String({ description: 'the secret, shown only in this response' }),
  name: Type.String(),
  enabled_projects: EnabledProjects,
  allow_trigger: Type.Boolean(),
  expires_at: DateTime
})
export type CreatedToken = Static<typeof CreatedToken>

export const ListTokensQuery = Type.Object({
  include: Type.Optional(Type.Literal('revoked', { description: '`revoked` adds revoked tokens' }))
})

export const Done = Type.Object({ message: Type.String(), status: Type.Literal(200) })

export const AccessLogEntry = Type.Object({
  id: Uuid,
  token_id: Type.Union([Type.String(), Type.Null()]),
  action: Type.String(),
  outcome: Type.String(),
  status_code: Type.Union([Type.Integer(), Type.Null()]),
  project_id: Type.Union([Type.String(), Type.Null()]),
  via: Type.Union([Type.String(), Type.Null()]),
  method: Type.Union([Type.String(), Type.Null()]),
  path: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  details: Type.Unknown(),
  duration_ms: Type.Union([Type.Number(), Type.Null()]),
  accessed_at: DateTime
})
export const AccessLogPage = Page(AccessLogEntry)
export const AccessLogQuery = PageQuery
