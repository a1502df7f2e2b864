// Schemas of the OAuth server (SPEC §12): discovery documents, client registration, token and revocation requests.
import { Type, type Static } from '@fastify/type-provider-typebox'

const Url = Type.String({ maxLength: 2048 })

/** RFC 7591 client metadata, as a registration request sends it and a metadata document (CIMD) holds it. */
export const ClientMetadata = Type.Object({
  redirect_uris: Type.Array(Url, { minItems: 1, maxItems: 10 }),
  client_name: Type.Optional(Type.String({ maxLength: 512 })),
  client_uri: Type.Optional(Url),
  logo_uri: Type.Optional(Url),
  scope: Type.Optional(Type.String({ maxLength: 1024 })),
  grant_types: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 10 })),
  response_types: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 10 })),
  token_endpoint_auth_method: Type.Optional(Type.String({ maxLength: 128 })),
  software_id: Type.Optional(Type.String({ maxLength: 256 })),
  software_version: Type.Optional(Type.String({ maxLength: 256 })),
  contacts: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 10 }))
}, { additionalProperties: true })
export type ClientMetadata = Static<typeof ClientMetadata>

/** A client ID metadata document: its own URL as client_id, plus the metadata above. */
export const ClientMetadataDocument = Type.Intersect([Type.Object({ client_id: Url }), ClientMetadata])
export type ClientMetadataDocument = Static<typeof ClientMetadataDocument>

export const RegisteredClient = Type.Object({
  client_id: Type.String(),
  client_id_issued_at: Type.Integer(),
  client_name: Type.String(),
  redirect_uris: Type.Array(Type.String()),
  grant_types: Type.Array(Type.String()),
  response_types: Type.Array(Type.String()),
  token_endpoint_auth_method: Type.Literal('none'),
  scope: Type.String()
})

/** OAuth's error body (RFC 6749 §5.2, RFC 7591 §3.2.2), with the gateway's statusCode and message beside it. */
export const OAuthErrorBody = Type.Object({
  error: Type.String({ description: 'the OAuth error code, e.g. invalid_grant' }),
  error_description: Type.String(),
  statusCode: Type.Integer(),
  code: Type.String({ description: 'the same OAuth error code' }),
  message: Type.String()
})
export type OAuthErrorBody = Static<typeof OAuthErrorBody>

const Field = (description: string) => Type.Optional(Type.String({ maxLength: 4096, description }))

/** The consent page's form post (documented; the handler reads the fields itself and answers pages). */
export const ConsentForm = Type.Object({
  response_type: Type.Literal('code'),
  client_id: Type.String(),
  redirect_uri: Type.String(),
  code_challenge: Type.String(),
  code_challenge_method: Type.Literal('S256'),
  scope: Type.Optional(Type.String()),
  state: Type.Optional(Type.String()),
  resource: Type.Optional(Type.String()),
  consent_proof: Type.String({ description: 'the page\'s anti-forgery value' }),
  project: Type.Optional(Type.Union([Type.String({ format: 'uuid' }), Type.Array(Type.String({ format: 'uuid' }))], { description: 'the ticked projects (the field repeats)' })),
  expires_days: Type.Optional(Type.String({ description: 'the chosen lifetime in days' })),
  allow_trigger: Type.Optional(Type.Literal('true')),
  decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')])
})

export const TokenRequest = Type.Object({
  grant_type: Type.String({ maxLength: 64, description: 'authorization_code or refresh_token' }),
  code: Field('the authorization code'),
  redirect_uri: Field('the redirect URI the code was issued for'),
  code_verifier: Field('the PKCE verifier (S256)'),
  refresh_token: Field('a refresh token (single use: each use returns a new one)'),
  client_id: Field('the client'),
  scope: Field('a subset of the granted scope'),
  resource: Field('the MCP endpoint (RFC 8707)')
}, { additionalProperties: true })

export const TokenResponse = Type.Object({
  access_token: Type.String({ description: 'an ib_mcp_ token' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  refresh_token: Type.String(),
  scope: Type.String()
})

export const RevokeRequest = Type.Object({
  token: Type.String({ maxLength: 4096 }),
  token_type_hint: Field('access_token or refresh_token'),
  client_id: Field('the client the token was issued to')
}, { additionalProperties: true })

export const ProtectedResourceMetadata = Type.Object({
  resource: Type.String(),
  authorization_servers: Type.Array(Type.String()),
  scopes_supported: Type.Array(Type.String()),
  bearer_methods_supported: Type.Array(Type.String()),
  resource_name: Type.String()
})

export const AuthorizationServerMetadata = Type.Object({
  issuer: Type.String(),
  authorization_endpoint: Type.String(),
  token_endpoint: Type.String(),
  registration_endpoint: Type.String(),
  revocation_endpoint: Type.String(),
  response_types_supported: Type.Array(Type.String()),
  response_modes_supported: Type.Array(Type.String()),
  grant_types_supported: Type.Array(Type.String()),
  code_challenge_methods_supported: Type.Array(Type.String()),
  token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
  scopes_supported: Type.Array(Type.String()),
  client_id_metadata_document_supported: Type.Boolean(),
  authorization_response_iss_parameter_supported: Type.Boolean()
})
