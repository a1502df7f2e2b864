// Token info (GET /me, get_token_info): who a token speaks for, what it reaches, and every budget read without spending it.
import { tokenScope } from '../db/token-scope.js'
import type { TokenInfo } from '../schemas/agent.js'
import type { Principal } from './access.js'
import { budgetKey, limitOf, WINDOW_MS, type BudgetRule } from './budget.js'
import { LimiterUnavailableError } from './limiter.js'
import type { GatewayServices } from './services.js'

/**
 * The token's facts and `buckets`: each bucket of `rules` (one per bucket name) read with the limiter's peek, in
 * one round trip, after the call itself has spent its own introspect hit. While the limiter cannot answer the
 * budgets are still listed with their limits and `remaining: null`.
 */
export async function tokenInfo (services: GatewayServices, principal: Principal, rules: readonly BudgetRule[]): Promise<TokenInfo> {
  const unique = [...new Map(rules.map(r => [r.bucket, r])).values()].sort((a, b) => a.bucket.localeCompare(b.bucket))
  const requests = unique.map(rule => ({ key: budgetKey(services.limiterKeyPrefix, principal.userId, rule.bucket), limit: limitOf(services, rule), windowMs: WINDOW_MS }))
  const [scope, readings] = await Promise.all([
    tokenScope(services.db, principal.userId, principal.enabledProjects),
    services.limiter.peek(requests).catch((err: unknown) => {
      if (!(err instanceof LimiterUnavailableError)) throw err
      return null
    })
  ])
  const buckets: TokenInfo['buckets'] = {}
  unique.forEach((rule, i) => {
    const reading = readings?.[i]
    buckets[rule.bucket] = reading === undefined
      ? { limit: limitOf(services, rule), remaining: null, reset_seconds: null }
      : { limit: reading.limit, remaining: reading.remaining, reset_seconds: reading.resetSeconds }
  })
  return {
    token_id: principal.tokenId,
    owner: scope.owner,
    allow_trigger: principal.allowTrigger,
    expires_at: principal.expiresAt.toISOString(),
    all_projects: scope.allProjects,
    projects: scope.projects,
    buckets
  }
}
