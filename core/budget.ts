// Spends one unit of a user's budget in a bucket: the limiter decision as headers, a 429, or fail-open/closed.
import type { FastifyBaseLogger } from 'fastify'
import { GatewayError } from '../lib/errors.js'
import { LimiterUnavailableError, type RateLimitDecision, type RateLimitStore } from './limiter.js'
import type { Metrics } from './metrics.js'

export const WINDOW_MS = 60_000
const WARN_EVERY_MS = 10_000

/** Requests per minute of each bucket (SPEC §5, §11, §13); overridable per deployment. */
export interface BucketLimits {
  default: number
  log: number
  artifact: number
  trigger: number
  /** token info: reads every other budget without spending it */
  introspect: number
  /** MCP protocol traffic that is not a tool call: initialize, discover, tools/list, ping, unknown tools (bucket mcp_protocol) */
  protocol: number
  /** refusals before a user is known, per client address */
  unauth: number
}

/** What spending a budget needs; the gateway's services provide it, and so can a bare benchmark server. */
export interface BudgetDeps {
  limiter: RateLimitStore
  limits: BucketLimits
  limiterHealth: LimiterHealth
  /** keys are `<prefix>:{<user_id>}:<bucket>` */
  limiterKeyPrefix: string
  log: FastifyBaseLogger
  metrics: Metrics
}

export interface BudgetRule { bucket: string, rpm: keyof BucketLimits | number, failClosed?: boolean | undefined }

export interface BudgetOutcome {
  /** null when the limiter failed open */
  decision: RateLimitDecision | null
  limit: number
  headers: Record<string, string>
}

/** `ib_mcp_rl:{<user_id>}:<bucket>`: the braces keep one user's buckets on one Redis Cluster slot. */
export const budgetKey = (prefix: string, userId: string, bucket: string): string => `${prefix}:{${userId}}:${bucket}`

export function limitOf (services: BudgetDeps, rule: BudgetRule): number {
  return typeof rule.rpm === 'number' ? rule.rpm : services.limits[rule.rpm]
}

// The parts of the headers that depend only on the bucket and its limit, built once per pair.
const policies = new Map<string, { policy: string, quoted: string, limit: string }>()
function policyOf (bucket: string, limit: number): { policy: string, quoted: string, limit: string } {
  const key = `${bucket}\u0000${limit}`
  let p = policies.get(key)
  if (p === undefined) {
    p = { policy: `"${bucket}";q=${limit};w=${WINDOW_MS / 1000}`, quoted: `"${bucket}";r=`, limit: String(limit) }
    if (policies.size < 10_000) policies.set(key, p)
  }
  return p
}

function headersFor (bucket: string, d: RateLimitDecision): Record<string, string> {
  const p = policyOf(bucket, d.limit)
  const h: Record<string, string> = {
    'ratelimit-policy': p.policy,
    ratelimit: `${p.quoted}${d.remaining};t=${d.resetSeconds}`,
    'x-ratelimit-limit': p.limit,
    'x-ratelimit-remaining': String(d.remaining),
    'x-ratelimit-reset': String(d.resetSeconds)
  }
  if (!d.allowed) h['retry-after'] = String(Math.max(1, d.retryAfterSeconds))
  return h
}

/** Limiter health as /readyz reports it. */
export class LimiterHealth {
  lastFailureAt = 0
  private lastWarnAt = 0
  get degraded (): boolean { return Date.now() - this.lastFailureAt < WARN_EVERY_MS }
  /** true when a warning may be logged now (at most once per 10 s) */
  noteFailure (): boolean {
    const now = Date.now()
    this.lastFailureAt = now
    if (now - this.lastWarnAt < WARN_EVERY_MS) return false
    this.lastWarnAt = now
    return true
  }
}

/** Spends one hit; throws 429 (refused) or 503 (store down on a fail-closed rule), else returns the headers to send. */
export async function spendBudget (services: BudgetDeps, userId: string, rule: BudgetRule): Promise<BudgetOutcome> {
  const limit = limitOf(services, rule)
  let decision: RateLimitDecision
  try {
    decision = await services.limiter.hit(budgetKey(services.limiterKeyPrefix, userId, rule.bucket), limit, WINDOW_MS)
  } catch (err) {
    if (!(err instanceof LimiterUnavailableError)) throw err
    if (services.limiterHealth.noteFailure()) {
      services.log.warn({ err: err.message, reason: err.reason }, rule.failClosed === true ? 'rate limiter unavailable: failing closed' : 'rate limiter unavailable: failing open')
    }
    if (rule.failClosed === true) {
      services.metrics.rateLimitFailClosed.inc()
      throw new GatewayError(503, 'MCP_UNAVAILABLE', 'the rate limiter is unavailable and this action is not allowed without it; retry shortly', { 'retry-after': '1' })
    }
    services.metrics.rateLimitFailOpen.inc()
    return { decision: null, limit, headers: {} }
  }
  const headers = headersFor(rule.bucket, decision)
  if (!decision.allowed) {
    throw new GatewayError(429, 'MCP_RATE_LIMITED',
      `rate limit of ${limit} requests per minute for "${rule.bucket}" reached; retry after ${headers['retry-after'] ?? '1'} s`, headers)
  }
  return { decision, limit, headers }
}
