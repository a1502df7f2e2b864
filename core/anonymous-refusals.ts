// Refusals before a user is known (SPEC §13.4): a 401, an unknown route, the token guard. Each costs its client
// address one unit of a per-address budget; past it the answer is 429 and, instead of one audit row per request
// (a flood would fill the audit buffer and push out legitimate rows), one aggregated row per address and minute.
import type { FastifyRequest } from 'fastify'
import { GatewayError } from '../lib/errors.js'
import type { Json } from '../db/schema.js'
import { budgetKey, WINDOW_MS, type BudgetDeps } from './budget.js'
import { LimiterUnavailableError } from './limiter.js'
import type { AuditWriter } from './audit-writer.js'

/** The audit action of an aggregated row. */
export const ANONYMOUS_FLOOD_ACTION = 'refused_before_auth'
/** The bucket of the per-address budget (its key holds the address where other keys hold a user id). */
export const UNAUTH_BUCKET = 'unauthenticated'
const FLUSH_EVERY_MS = 5_000
/** addresses tracked per minute at most; beyond, the rest of the minute is counted under one `*` row */
const MAX_ADDRESSES = 10_000

interface Tally { minute: number, count: number, actions: Record<string, number> }

export class AnonymousRefusals {
  private readonly tallies = new Map<string, Tally>()
  private readonly timer: NodeJS.Timeout

  constructor (private readonly deps: BudgetDeps & { audit: AuditWriter }, private readonly rpm: number) {
    this.timer = setInterval(() => { this.flush(false) }, FLUSH_EVERY_MS)
    this.timer.unref()
  }

  /**
   * Counts one refusal of `request`'s address. Within the budget: returns, and the caller answers (and audits) its
   * refusal as usual. Past it: the request joins its address's row of this minute, is marked not to be audited on
   * its own, and a 429 is thrown. A limiter that cannot answer lets the refusal through as usual (fail-open).
   */
  async spend (request: FastifyRequest, action: string, inAuditedScope = true): Promise<void> {
    const ip = request.ip.slice(0, 64)
    let allowed = true
    let retryAfter = 1
    try {
      const d = await this.deps.limiter.hit(budgetKey(this.deps.limiterKeyPrefix, `ip:${ip}`, UNAUTH_BUCKET), this.rpm, WINDOW_MS)
      allowed = d.allowed
      retryAfter = Math.max(1, d.retryAfterSeconds)
    } catch (err) {
      if (!(err instanceof LimiterUnavailableError)) throw err
      this.deps.metrics.rateLimitFailOpen.inc()
    }
    if (allowed) return
    if (inAuditedScope) request.mcpAudit.skip = true // (the guard, at the root, writes its rows itself)
    this.tally(ip, action)
    this.deps.metrics.refusals.inc({ reason: 'rate_limited_unauthenticated' })
    throw new GatewayError(429, 'MCP_RATE_LIMITED',
      `too many refused requests from this address (limit ${this.rpm} per minute); retry after ${retryAfter} s`, { 'retry-after': String(retryAfter) })
  }

  private tally (ip: string, action: string): void {
    const minute = Math.floor(Date.now() / 60_000)
    let key = ip
    let t = this.tallies.get(key)
    if (t !== undefined && t.minute !== minute) { this.flushOne(key, t); t = undefined }
    if (t === undefined && this.tallies.size >= MAX_ADDRESSES) { key = '*'; t = this.tallies.get(key) }
    if (t === undefined) { t = { minute, count: 0, actions: {} }; this.tallies.set(key, t) }
    t.count++
    t.actions[action] = (t.actions[action] ?? 0) + 1
  }

  /** Writes the rows of past minutes (all of them when `all`, e.g. at shutdown). */
  flush (all = true): void {
    const minute = Math.floor(Date.now() / 60_000)
    for (const [ip, t] of this.tallies) if (all || t.minute < minute) this.flushOne(ip, t)
  }

  private flushOne (ip: string, t: Tally): void {
    this.tallies.delete(ip)
    const from = new Date(t.minute * 60_000)
    const details: Record<string, Json> = { refused: t.count, actions: t.actions, minute: from.toISOString(), aggregated: true }
    this.deps.audit.record({
      token_id: null,
      user_id: null,
      action: ANONYMOUS_FLOOD_ACTION,
      outcome: 'rate_limited',
      details,
      error: `${t.count} request(s) refused before authentication beyond the per-address limit of ${this.rpm} per minute`,
      ip: ip === '*' ? null : ip,
      accessed_at: from,
      project_id: null,
      status_code: 429,
      duration_ms: null,
      method: null,
      path: null,
      request_id: null,
      via: null
    })
  }

  close (): void {
    clearInterval(this.timer)
    this.flush(true)
  }
}
