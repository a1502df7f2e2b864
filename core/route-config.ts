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
}

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
