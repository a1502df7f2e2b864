// last_used_at bookkeeping: at most one write a minute per token, batched, off the request path.
import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database, McpToken } from '../db/schema.js'
import { touchTokens } from '../db/tokens.js'

const TOUCH_EVERY_MS = 60_000
const FLUSH_EVERY_MS = 1000

export class TokenUsage {
  private readonly pending = new Map<string, Date>()
  /** when this process last queued a write per token (the row we hold may predate it) */
  private readonly touchedAt = new Map<string, number>()
  private readonly timer: NodeJS.Timeout

  constructor (private readonly db: Kysely<Database>, private readonly log: FastifyBaseLogger) {
    this.timer = setInterval(() => { void this.flush() }, FLUSH_EVERY_MS)
    this.timer.unref()
  }

  /** Notes a use; the write happens in the next batch, and only if the last one is a minute old. */
  touch (token: McpToken, now = new Date()): void {
    const last = Math.max(token.last_used_at?.getTime() ?? 0, this.touchedAt.get(token.token_id) ?? 0)
    if (now.getTime() - last < TOUCH_EVERY_MS) return
    this.touchedAt.set(token.token_id, now.getTime())
    this.pending.set(token.token_id, now)
  }

  async flush (): Promise<void> {
    if (this.pending.size === 0) return
    const batch = new Map(this.pending)
    this.pending.clear()
    try {
      await touchTokens(this.db, batch)
    } catch (err) {
      // Losing a last_used_at update is harmless: the next use after recovery writes it.
      this.log.debug({ err: (err as Error).message }, 'last_used_at not written')
      for (const id of batch.keys()) this.touchedAt.delete(id)
    }
    // Entries older than a minute no longer suppress anything.
    if (this.touchedAt.size > 10_000) {
      const cutoff = Date.now() - TOUCH_EVERY_MS
      for (const [id, at] of this.touchedAt) if (at < cutoff) this.touchedAt.delete(id)
    }
  }

  async close (): Promise<void> {
    clearInterval(this.timer)
    await this.flush()
  }
}
