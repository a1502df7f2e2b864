// The OpenAPI 3.1 document: @fastify/swagger over the route schemas, with each route's refusals derived from the steps it passes.
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import type { FastifyInstance, RouteOptions } from 'fastify'
import { ErrorBody } from '../schemas/common.js'
import { OAuthErrorBody } from '../schemas/oauth.js'
import { JsonRpcErrorResponse, JsonRpcRequest, JsonRpcResponse } from '../schemas/mcp.js'
import { OPENAPI_TAGS, type DocumentedResponse, type McpRouteConfig } from '../core/route-config.js'
import { REASON } from '../lib/errors.js'

export interface OpenApiOptions {
  /** the gateway as clients reach it (scheme://host[:port]), read when the document is first built; null: servers is '/' */
  publicBaseUrl: () => string | null
  /** the OAuth server's endpoints while it is on: the document then offers its oauth2 scheme beside the pasted token */
  oauth: (() => { authorizationUrl: string, tokenUrl: string }) | null
}

/** Schemas the document names once under components and refers to (a route's schema is matched by identity). */
const NAMED_SCHEMAS = { ErrorBody, OAuthErrorBody, JsonRpcRequest, JsonRpcResponse, JsonRpcErrorResponse } as const
const schemaRef = (name: keyof typeof NAMED_SCHEMAS): { $ref: string } => ({ $ref: `#/components/schemas/${name}` })
function named (schema: unknown): unknown {
  for (const [name, s] of Object.entries(NAMED_SCHEMAS)) if (s === schema) return schemaRef(name as keyof typeof NAMED_SCHEMAS)
  return schema
}

/** Every header the document names; responses refer to them under components.headers. */
const HEADERS: Record<string, { description: string, schema: Record<string, unknown> }> = {
  'WWW-Authenticate': {
    description: 'Bearer realm="infrabox-mcp"; with error="invalid_token" when a credential was sent, and resource_metadata="…" (the protected-resource metadata) while the OAuth server is on',
    schema: { type: 'string' }
  },
  'Retry-After': { description: 'whole seconds (at least 1) to wait before trying again', schema: { type: 'integer', minimum: 1 } },
  'RateLimit-Policy': { description: '"<bucket>";q=<limit>;w=60 — the budget this route spends (IETF httpapi RateLimit headers draft)', schema: { type: 'string' } },
  RateLimit: { description: '"<bucket>";r=<remaining>;t=<seconds until a call is free again>', schema: { type: 'string' } },
  'X-RateLimit-Limit': { description: 'calls per minute of the bucket, per user', schema: { type: 'integer', minimum: 0 } },
  'X-RateLimit-Remaining': { description: 'calls left in the current 60 s window', schema: { type: 'integer', minimum: 0 } },
  'X-RateLimit-Reset': { description: 'seconds until a call is free again', schema: { type: 'integer', minimum: 0 } },
  'Content-Disposition': { description: 'attachment; filename="<ASCII name>"; filename*=UTF-8\'\'<the name, percent-encoded>', schema: { type: 'string' } },
  'Content-Length': { description: 'the file\'s size in bytes, when storage knows it', schema: { type: 'integer', minimum: 0 } },
  'Cache-Control': { description: 'no-store: the answer holds a secret', schema: { type: 'string', enum: ['no-store'] } },
  Location: { description: 'where the browser goes next', schema: { type: 'string' } },
  'X-Log-Total-Bytes': { description: 'text/plain only: the log\'s size in bytes', schema: { type: 'integer', minimum: 0 } },
  'X-Log-Offset': { description: 'text/plain only: the window\'s first byte', schema: { type: 'integer', minimum: 0 } },
  'X-Log-Length': { description: 'text/plain only: the window\'s length in bytes', schema: { type: 'integer', minimum: 0 } },
  'X-Log-Truncated': { description: 'text/plain only: whether the log holds more than this window', schema: { type: 'string', enum: ['true', 'false'] } }
}

const RATE_LIMIT_HEADERS = ['RateLimit-Policy', 'RateLimit', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']

/** What the document knows of a route: its gateway config and which inputs its schema validates. */
export interface RouteFacts {
  method: string
  config: McpRouteConfig
  /** path parameter names, e.g. ['projectId', 'jobId'] */
  params: string[]
  /** a query string, body or headers schema with properties: bad input is a 400 */
  validatesInput: boolean
}

export interface Refusal { status: number, why: string, headers?: readonly string[] }

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH'])
const nounOf = (param: string): string => param.replace(/Id$/, '')

/**
 * Each step a request passes (README, "the walk of one request"), in order, with what it refuses and for which
 * routes, read from the route's `config.mcp` and its schema. A route's document lists exactly these, plus its
 * handler's own `refusals`. A new chain step adds its entry here.
 */
export const STEP_REFUSALS: ReadonlyArray<{ step: string, refusals: (r: RouteFacts) => Refusal[] }> = [
  {
    step: 'token guard (plugins/token-guard.ts)',
    refusals: r => r.config.session === true ? [{ status: 403, why: 'MCP_FORBIDDEN_PATH: an ib_mcp_ token was sent; token administration takes an InfraBox session only' }] : []
  },
  {
    step: 'session (plugins/session-auth.ts)',
    refusals: r => r.config.session === true ? [{ status: 401, why: 'MCP_UNAUTHORIZED: no valid InfraBox session (the `token` cookie or an Authorization header)' }] : []
  },
  {
    step: 'Origin guard (plugins/mcp-origin.ts)',
    refusals: r => r.config.endpoint === true ? [{ status: 403, why: 'MCP_ORIGIN_FORBIDDEN: a browser Origin not listed in MCP_ALLOWED_ORIGINS' }] : []
  },
  {
    step: 'auth (plugins/mcp-auth.ts)',
    refusals: r => r.config.chain === true
      ? [{ status: 401, why: 'MCP_INVALID_TOKEN: no MCP token, or one that is malformed, unknown, revoked or expired, or whose owner is gone', headers: ['WWW-Authenticate'] }]
      : []
  },
  {
    step: 'rate limit (plugins/rate-limit.ts; the OAuth endpoints per client address)',
    refusals: r => {
      const { bucket, failClosed } = r.config
      if (bucket === undefined) return []
      const who = r.config.oauth !== undefined ? 'this client address' : 'the token\'s user'
      return [
        { status: 429, why: `MCP_RATE_LIMITED: ${who} has spent the ${bucket} budget of the last 60 s`, headers: ['Retry-After', ...RATE_LIMIT_HEADERS] },
        ...(failClosed === true ? [{ status: 503, why: 'MCP_UNAVAILABLE: the rate limiter cannot answer and this action does not go on without it', headers: ['Retry-After'] }] : [])
      ]
    }
  },
  {
    step: 'project access (plugins/project-access.ts)',
    refusals: r => r.config.chain === true && r.params.includes('projectId')
      ? [
          { status: 403, why: 'MCP_PROJECT_FORBIDDEN: the project is outside the token\'s scope, its expiry in the token has passed, or the owner is no longer a collaborator' },
          { status: 404, why: 'MCP_NOT_FOUND: no such project (within the token\'s scope)' }
        ]
      : []
  },
  {
    step: 'trigger access (plugins/project-access.ts)',
    refusals: r => r.config.trigger === true ? [{ status: 403, why: 'MCP_TRIGGER_FORBIDDEN: the token may not start or change builds (allow_trigger is off)' }] : []
  },
  {
    step: 'input (the route\'s schemas)',
    refusals: r => [
      // the OAuth endpoints answer bad input with OAuth's own errors, which they list themselves
      ...((r.validatesInput || r.params.length > 0) && r.config.oauth === undefined ? [{ status: 400, why: 'FST_ERR_VALIDATION: a path parameter, query parameter, header or body field does not match its schema' }] : []),
      ...(BODY_METHODS.has(r.method)
        ? [
            { status: 413, why: 'FST_ERR_CTP_BODY_TOO_LARGE: the body is over 1 MiB' },
            { status: 415, why: 'FST_ERR_CTP_INVALID_MEDIA_TYPE: the body is not of a media type this route reads' }
          ]
        : [])
    ]
  },
  {
    step: 'ids in the path (the handler\'s lookup)',
    refusals: r => r.params.filter(p => p !== 'projectId' || r.config.chain !== true).map(p => ({
      status: 404, why: `MCP_NOT_FOUND: no ${nounOf(p)} with that id${r.config.session === true ? ' among your live tokens' : r.params.includes('projectId') ? ' in this project' : ''}`
    }))
  },
  {
    step: 'database',
    refusals: () => [{ status: 503, why: 'MCP_UNAVAILABLE: PostgreSQL is unreachable; retry after Retry-After', headers: ['Retry-After'] }]
  },
  {
    step: 'handler (config.mcp.refusals)',
    refusals: r => Object.entries(r.config.refusals ?? {}).map(([status, why]) => ({ status: Number(status), why }))
  }
]

const SUCCESS: Record<number, string> = { 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 302: 'Found', 303: 'See Other' }

interface SwaggerResponse { description: string, headers?: Record<string, unknown>, content?: Record<string, { schema: unknown }> }

function toSwagger (r: DocumentedResponse): SwaggerResponse {
  return {
    description: r.description,
    ...(r.headers !== undefined ? { headers: Object.fromEntries(r.headers.map(h => [h, headerSchema(h)])) } : {}),
    ...(r.content !== undefined ? { content: Object.fromEntries(Object.entries(r.content).map(([type, schema]) => [type, { schema: named(schema) }])) } : {})
  }
}

/** swagger's shape for a response header: the schema with its description beside it; the document then refers to components.headers. */
function headerSchema (name: string): Record<string, unknown> {
  const h = HEADERS[name]
  if (h === undefined) throw new Error(`OpenAPI: header ${name} is not in plugins/openapi.ts HEADERS`)
  return { ...h.schema, description: h.description }
}

const whyList = (whys: string[]): string => whys.length === 1 ? whys[0] ?? '' : whys.map(w => `- ${w}`).join('\n')

/** Every response of a route: its declared answers (schema or config.mcp.openapi) and the refusals of the steps it passes. */
export function documentedResponses (facts: RouteFacts, declared: Record<string, unknown>, produces: readonly string[]): Record<string, SwaggerResponse> {
  const page = facts.config.oauth === 'page'
  const out: Record<string, SwaggerResponse> = {}
  const limited = facts.config.bucket !== undefined
  const overrides = facts.config.openapi?.responses ?? {}
  for (const [status, schema] of Object.entries(declared)) {
    const code = Number(status)
    const description = (schema as { description?: unknown }).description
    out[status] = {
      description: typeof description === 'string' ? description : SUCCESS[code] ?? REASON[code] ?? 'Response',
      content: Object.fromEntries(produces.map(type => [type, { schema: named(schema) }]))
    }
  }
  for (const [status, names] of Object.entries(facts.config.openapi?.headers ?? {})) {
    const response = out[status]
    if (response !== undefined) response.headers = { ...response.headers, ...Object.fromEntries(names.map(h => [h, headerSchema(h)])) }
  }
  for (const [status, response] of Object.entries(overrides)) out[status] = toSwagger(response)
  for (const [status, response] of Object.entries(out)) {
    if (limited && Number(status) < 300) response.headers = { ...response.headers, ...Object.fromEntries(RATE_LIMIT_HEADERS.map(h => [h, headerSchema(h)])) }
  }

  const byStatus = new Map<number, Refusal[]>()
  for (const { refusals } of STEP_REFUSALS) {
    for (const refusal of refusals(facts)) byStatus.set(refusal.status, [...byStatus.get(refusal.status) ?? [], refusal])
  }
  for (const [status, refusals] of [...byStatus].sort(([a], [b]) => a - b)) {
    const whys = [...new Set(refusals.map(r => r.why))]
    const headers = [...new Set(refusals.flatMap(r => r.headers ?? []))]
    const had = out[String(status)]
    const content = had?.content ?? (page
      ? { 'text/html': { schema: { type: 'string', description: 'a page that says what went wrong' } } }
      : { 'application/json': { schema: schemaRef('ErrorBody') } })
    out[String(status)] = {
      ...had,
      description: had !== undefined && overrides[status] !== undefined ? had.description : whyList(whys),
      ...(headers.length > 0 || had?.headers !== undefined ? { headers: { ...had?.headers, ...Object.fromEntries(headers.map(h => [h, headerSchema(h)])) } } : {}),
      content
    }
  }
  return out
}

const hasProperties = (schema: unknown): boolean =>
  typeof schema === 'object' && schema !== null && Object.keys((schema as { properties?: object }).properties ?? {}).length > 0

interface RouteSchema {
  hide?: boolean
  operationId?: string
  tags?: readonly string[]
  security?: ReadonlyArray<Record<string, readonly string[]>>
  params?: unknown
  querystring?: unknown
  body?: unknown
  headers?: unknown
  consumes?: readonly string[]
  produces?: readonly string[]
  response?: Record<string, unknown>
  [key: string]: unknown
}

/** Fields with a default are filled in by the validator: a client may leave them out, so the document does not require them. */
function optionalDefaults (schema: unknown): unknown {
  if (typeof schema !== 'object' || schema === null) return schema
  const { required, properties } = schema as { required?: unknown, properties?: Record<string, { default?: unknown }> }
  if (!Array.isArray(required) || properties === undefined) return schema
  return { ...schema, required: required.filter(name => typeof name === 'string' && properties[name]?.default === undefined) }
}

function tagOf (c: McpRouteConfig): string {
  if (c.session === true) return OPENAPI_TAGS.tokens.name
  if (c.oauth !== undefined) return OPENAPI_TAGS.oauth.name
  if (c.endpoint === true) return OPENAPI_TAGS.mcp.name
  return OPENAPI_TAGS.agent.name
}

function securityOf (c: McpRouteConfig, oauthOn: boolean): Array<Record<string, string[]>> {
  if (c.session === true) return [{ session: [] }, { sessionBearer: [] }]
  if (c.chain === true) return [{ mcpToken: [] }, ...(oauthOn ? [{ oauth: c.trigger === true ? ['mcp', 'mcp:trigger'] : ['mcp'] }] : [])]
  return []
}

/** The route's document entry: operationId, tag, security and responses derived where the route does not say them itself. */
export function documentRoute (route: RouteOptions, schema: RouteSchema, url: string, oauthOn: boolean): RouteSchema {
  const config: McpRouteConfig = route.config?.mcp ?? {}
  const method = Array.isArray(route.method) ? String(route.method[0]) : String(route.method)
  const params = [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map(m => m[1] ?? '')
  const facts: RouteFacts = { method, config, params, validatesInput: [schema.querystring, schema.body, schema.headers].some(hasProperties) }
  const body = config.openapi?.body
  const operationId = schema.operationId ?? config.action
  return {
    ...schema,
    ...(schema.querystring !== undefined ? { querystring: optionalDefaults(schema.querystring) } : {}),
    ...(schema.body !== undefined ? { body: optionalDefaults(schema.body) } : {}),
    ...(operationId !== undefined ? { operationId } : {}),
    tags: schema.tags ?? [tagOf(config)],
    security: schema.security ?? securityOf(config, oauthOn),
    ...(body !== undefined ? { body: { description: body.description, content: Object.fromEntries(Object.entries(body.content).map(([type, s]) => [type, { schema: named(s) }])) } } : {}),
    response: documentedResponses(facts, schema.response ?? {}, schema.produces ?? ['application/json'])
  }
}

interface Doc {
  servers?: unknown
  components: { schemas?: Record<string, unknown>, headers?: Record<string, unknown>, securitySchemes?: Record<string, unknown> }
  paths: Record<string, Record<string, { tags?: string[], responses?: Record<string, { headers?: Record<string, unknown> }> }>>
  tags?: unknown
  [key: string]: unknown
}

/** Response headers refer to components.headers; only the tags, headers and schemas in use are listed. */
function finish (doc: Doc, opts: OpenApiOptions): Doc {
  const usedHeaders = new Set<string>()
  const usedTags = new Set<string>()
  for (const item of Object.values(doc.paths)) {
    for (const operation of Object.values(item)) {
      for (const tag of operation.tags ?? []) usedTags.add(tag)
      for (const response of Object.values(operation.responses ?? {})) {
        for (const name of Object.keys(response.headers ?? {})) {
          if (HEADERS[name] === undefined) continue
          usedHeaders.add(name)
          ;(response.headers ?? {})[name] = { $ref: `#/components/headers/${name}` }
        }
      }
    }
  }
  const text = JSON.stringify(doc.paths)
  const schemas = Object.fromEntries(Object.entries(doc.components.schemas ?? {}).filter(([name]) => text.includes(`"#/components/schemas/${name}"`)))
  const base = opts.publicBaseUrl()
  const oauth = opts.oauth?.() ?? null
  return {
    ...doc,
    servers: base !== null
      ? [{ url: base.replace(/\/$/, ''), description: 'the gateway (PUBLIC_BASE_URL)' }]
      : [{ url: '/', description: 'the host that serves this document (PUBLIC_BASE_URL is not set)' }],
    tags: Object.values(OPENAPI_TAGS).filter(t => usedTags.has(t.name)),
    components: {
      ...doc.components,
      schemas,
      headers: Object.fromEntries([...usedHeaders].sort().map(name => [name, HEADERS[name]])),
      securitySchemes: {
        ...doc.components.securitySchemes,
        ...(oauth !== null
          ? {
              oauth: {
                type: 'oauth2',
                description: 'The gateway\'s own OAuth 2.1 server (PKCE S256, public clients); its access tokens are ib_mcp_ tokens.',
                flows: {
                  authorizationCode: {
                    authorizationUrl: oauth.authorizationUrl,
                    tokenUrl: oauth.tokenUrl,
                    refreshUrl: oauth.tokenUrl,
                    scopes: { mcp: 'read the consented projects', 'mcp:trigger': 'start and change builds, when the user allows it' }
                  }
                }
              }
            }
          : {})
      }
    }
  }
}

/**
 * Registers @fastify/swagger for the routes of the scope it is registered in (with fastify-plugin, so the gateway's
 * sibling scopes are seen). Serve `fastify.swagger()` from a route.
 */
export const openapiDocument = fp(async function openapiDocument (fastify: FastifyInstance, opts: OpenApiOptions) {
  const oauth = opts.oauth
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'InfraBox MCP Gateway',
        version: '1',
        summary: 'Scoped, rate-limited, audited access to InfraBox for AI agents',
        description: 'REST routes and a native MCP endpoint in front of InfraBox. Every route below /api/v1/mcp except the token ' +
          'administration takes an ib_mcp_ token and passes one chain: auth → rate limit → project access → trigger access → ' +
          'handler → audit. Errors are {statusCode, code, error, message} with stable codes.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' }
      },
      components: {
        schemas: { ...NAMED_SCHEMAS } as unknown as Record<string, never>,
        securitySchemes: {
          mcpToken: { type: 'http', scheme: 'bearer', bearerFormat: 'ib_mcp_ + 48 hex', description: 'An MCP token (`Authorization: Bearer ib_mcp_…`; the schemes `bearer` and `token` are read the same way), made in the InfraBox dashboard or with POST /api/v1/mcp/tokens.' },
          session: { type: 'apiKey', in: 'cookie', name: 'token', description: 'The InfraBox session (RS256 JWT) in its `token` cookie.' },
          sessionBearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The InfraBox session JWT in an Authorization header.' },
          // its URLs depend on the address the gateway is reached at: filled in when the document is built (finish)
          ...(oauth !== null ? { oauth: { type: 'oauth2', flows: {} } } : {})
        }
      }
    },
    transform: ({ schema, url, route }) => ({
      url,
      schema: (schema as RouteSchema | undefined)?.hide === true ? schema : documentRoute(route as RouteOptions, (schema ?? {}) as RouteSchema, url, oauth !== null) as typeof schema
    }),
    transformObject: (documentObject) => {
      if (!('openapiObject' in documentObject)) return documentObject.swaggerObject
      return finish(documentObject.openapiObject as unknown as Doc, opts) as unknown as typeof documentObject.openapiObject
    }
  })
}, { name: 'mcp-openapi' })
