// What a gateway route declares about itself, under `config.mcp` (a host's plugins own the other config names).
import type { BucketLimits } from './budget.js'

export interface McpRouteConfig {
  /** audit action, and the MCP tool twin's name (SPEC §5) */
  action?: string
  /** the rate-limit budget the route spends (SPEC §4), and its rpm: a BucketLimits key or a number */
  bucket?: string
  rpm?: keyof BucketLimits | number
  /** 503 instead of going on when the limiter cannot answer */
  failClosed?: boolean
  /** the route starts or changes builds: the token needs allow_trigger */
  trigger?: boolean
  /** false: not audited (reads of the token administration) */
  audit?: boolean
  /** the route belongs to the token-authenticated MCP namespace (the chain's scope) */
  chain?: boolean
  /** the route is the native MCP endpoint (SPEC §7): Origin-checked and audited as via='mcp' */
  endpoint?: boolean
  /**
   * an OAuth endpoint or discovery document (SPEC §12): a client still carrying an old ib_mcp_ token reaches it (the
   * token guard lets it pass); `page` ones answer in HTML, errors included. Their bucket is spent per client address.
   */
  oauth?: 'json' | 'page'
  /** the route belongs to the token administration (an InfraBox session, never an MCP token); set by its scope */
  session?: boolean
  /**
   * what the route's own handler can refuse, beyond what its chain steps refuse (those the OpenAPI document derives
   * from this config and the route's schemas): status → when, e.g. `{ 409: 'the project has no upload yet' }`
   */
  refusals?: Refusals
  /** what the OpenAPI document says beyond the route's schemas: bodies and answers that Fastify neither validates nor serialises */
  openapi?: RouteDocument
}

/** status → when the route answers it (a sentence naming the error code) */
export type Refusals = Readonly<Record<number, string>>

/** A response as the OpenAPI document shows it: its media types with their (TypeBox/JSON) schemas, and headers by name. */
export interface DocumentedResponse {
  description: string
  /** media type → schema; none: no body */
  content?: Readonly<Record<string, unknown>>
  /** header name → description; the document knows each header's schema (plugins/openapi.ts) */
  headers?: readonly string[]
}

export interface RouteDocument {
  /** a request body documented, not validated (the MCP endpoint hands its body to the SDK as it came) */
  body?: { description: string, content: Readonly<Record<string, unknown>> }
  /** responses documented as given here instead of from `schema.response` (streams, the MCP endpoint's answers) */
  responses?: Readonly<Record<number, DocumentedResponse>>
  /** headers of the answers `schema.response` declares, status → header names (e.g. `{ 201: ['Cache-Control'] }`) */
  headers?: Readonly<Record<number, readonly string[]>>
}

/** The OpenAPI document's tags: every route has exactly one. */
export const OPENAPI_TAGS = {
  tokens: { name: 'token administration', description: 'An InfraBox user manages their MCP tokens with their session (the dashboard\'s calls). An ib_mcp_ token is refused here.' },
  data: { name: 'data', description: 'InfraBox\'s records as they are (SPEC §5): projects, builds, jobs, logs, test runs, artifacts, and build triggers. Each is also an MCP tool of the same name.' },
  agent: { name: 'agent tools', description: 'Answers rather than records (SPEC §11, §14): waits, summaries, searches, text windows, token introspection and build control. Each is also an MCP tool.' },
  mcp: { name: 'MCP', description: 'The Model Context Protocol endpoint (Streamable HTTP, stateless): one JSON-RPC message per POST.' },
  oauth: { name: 'OAuth', description: 'The OAuth 2.1 authorization server for MCP clients (SPEC §12), present while PUBLIC_BASE_URL is set.' }
} as const

export type OpenApiTag = keyof typeof OPENAPI_TAGS

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the gateway's route settings; `config.rateLimit` and the rest stay free for the host's plugins */
    mcp?: McpRouteConfig
  }
}

/**
 * A gateway route's `config`: its own settings under `mcp`, and `rateLimit: false`, the documented opt-out of a
 * host's `@fastify/rate-limit` (which, registered with `global: true`, would otherwise put its per-address limit on
 * every route, ours included). The gateway limits per user itself (SPEC §4). The key is set, not declared: a
 * declaration of `rateLimit` here would clash with the one `@fastify/rate-limit` adds to a host's types.
 */
export function mcpRouteConfig (mcp: McpRouteConfig): { mcp: McpRouteConfig } {
  const config = { mcp }
  Reflect.set(config, 'rateLimit', false)
  return config
}
