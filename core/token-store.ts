// Resolves presented tokens to their rows: an in-process cache kept honest by Redis pub/sub, and coalesced last_used_at writes.
import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Redis } from 'ioredis'
import type { Database, McpToken } from '../db/schema.js'
import { findTokenForAuth, touchTokens } from '../db/tokens.js'
import type { Metrics } from './metrics.js'

export const INVALIDATION_CHANNEL = 'ib_mcp:token-changed'
const TOUCH_EVERY_MS = 60_000
const TOUCH_FLUSH_MS = 1000

export interface TokenStoreOptions {
  /** publishes invalidations; null = no other replica can be told, so nothing is cached */
  redis: Redis | null
  /** how long a cached row may live even if no invalidation arrives (a bound, not the mechanism) */
  ttlMs?: number
  log: FastifyBaseLogger
  metrics: Metrics
}

interface Cached { row: McpToken | null, at: number }

/**
 * The cache is used only while this process is subscribed to the invalidation channel: a revocation or
 * PATCH on any replica publishes the token id, every replica drops it, and the next request reads the
 * database. While the subscription is down (Redis away, reconnecting) every lookup goes to the database,
 * and the cache is emptied when the subscription comes back, since messages may have been missed.
 */
export class TokenStore {
  private readonly cache = new Map<string, Cached>()
  private readonly subscriber: Redis | null
  private subscribed = false
  /** bumped by every invalidation: a read that started before one may not be cached */
  private epoch = 0
  private readonly pendingTouches = new Map<string, Date>()
  private readonly touchedAt = new Map<string, number>()
  private readonly touchTimer: NodeJS.Timeout
  private readonly ttlMs: number

  constructor (private readonly db: Kysely<Database>, private readonly opts: TokenStoreOptions) {
    this.ttlMs = opts.ttlMs ?? 60_000
    this.subscriber = opts.redis === null ? null : this.subscribe(opts.redis)
    this.touchTimer = setInterval(() => { void this.flushTouches() }, TOUCH_FLUSH_MS)
    this.touchTimer.unref()
  }

  private subscribe (redis: Redis): Redis {
    // A subscribed connection can do nothing else: it needs its own, with an offline queue so the
    // SUBSCRIBE issued on every (re)connect is not refused while the socket is still coming up.
    const sub = redis.duplicate({ enableOfflineQueue: true, autoResubscribe: false, lazyConnect: false })
    sub.on('error', () => { /* reported through the limiter's client; here only the state matters */ })
    const down = (): void => { this.subscribed = false }
    sub.on('close', down)
    sub.on('end', down)
    sub.on('reconnecting', down)
    sub.on('ready', () => {
      sub.subscribe(INVALIDATION_CHANNEL).then(() => {
        this.cache.clear()
        this.epoch++
        this.subscribed = true
      }, (err: Error) => { this.opts.log.warn({ err: err.message }, 'token invalidation channel: subscribe failed') })
    })
    sub.on('message', (_channel: string, tokenId: string) => { this.forget(tokenId) })
    return sub
  }

  get caching (): boolean { return this.subscribed }

  private forget (tokenId: string): void {
    this.epoch++
    this.cache.delete(tokenId)
  }

  /** The token row with its owner (null when unknown or the owner is gone). */
  async resolve (tokenId: string): Promise<McpToken | null> {
    if (this.subscribed) {
      const hit = this.cache.get(tokenId)
      if (hit !== undefined && Date.now() - hit.at < this.ttlMs) {
        this.opts.metrics.tokenCache.inc({ result: 'hit' })
        return hit.row
      }
    }
    const epoch = this.epoch
    const row = (await findTokenForAuth(this.db, tokenId)) ?? null
    this.opts.metrics.tokenCache.inc({ result: this.subscribed ? 'miss' : 'bypass' })
    if (this.subscribed && epoch === this.epoch) {
      if (this.cache.size > 100_000) this.cache.clear()
      this.cache.set(tokenId, { row, at: Date.now() })
    }
    return row
  }

  /** Called after any change to a token: drops it here and tells every other replica. */
  async invalidate (tokenId: string): Promise<void> {
    this.forget(tokenId)
    if (this.opts.redis === null) return
    try {
      await this.opts.redis.publish(INVALIDATION_CHANNEL, tokenId)
    } catch (err) {
      // Replicas that missed it are not caching (their subscription is down too) or will expire it by TTL.
      this.opts.log.warn({ err: (err as Error).message, tokenId }, 'token invalidation not published')
    }
  }

  /** Notes a use; last_used_at is written at most once a minute per token, in batches, off the request path. */
  touch (token: McpToken, now = new Date()): void {
    const last = Math.max(token.last_used_at?.getTime() ?? 0, this.touchedAt.get(token.token_id) ?? 0)
    if (now.getTime() - last < TOUCH_EVERY_MS) return
    this.touchedAt.set(token.token_id, now.getTime())
    this.pendingTouches.set(token.token_id, now)
  }

  async flushTouches (): Promise<void> {
    if (this.pendingTouches.size === 0) return
    const batch = new Map(this.pendingTouches)
    this.pendingTouches.clear()
    try {
      await touchTokens(this.db, batch)
    } catch (err) {
      this.opts.log.debug({ err: (err as Error).message }, 'last_used_at not written (will retry with the next use)')
      for (const id of batch.keys()) this.touchedAt.delete(id)
    }
    if (this.touchedAt.size > 100_000) this.touchedAt.clear()
  }

  async close (): Promise<void> {
    clearInterval(this.touchTimer)
    await this.flushTouches()
    if (this.subscriber !== null) this.subscriber.disconnect()
  }
}
