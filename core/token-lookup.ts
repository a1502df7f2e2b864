// Coalesces the auth step's live lookups: requests that arrive together share one query (nothing is cached).
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import { lookupTokens, type TokenLookup, type TokenLookupKey } from '../db/tokens.js'
import { TurnBatch } from './turn-batch.js'

interface Waiting {
  key: TokenLookupKey
  resolve: (value: TokenLookup | undefined) => void
  reject: (err: unknown) => void
}

/** Lookups per statement at most (two array parameters; any size works, this bounds one statement's work). */
const MAX_BATCH = 128

/**
 * Every request still gets a lookup that *starts after it arrived* and reads the current rows — the same
 * guarantee as one query per request, so a revocation, a PATCH, a deleted owner or a removed collaborator
 * applies to the very next request. What changes is only the number of round trips: lookups asked for in
 * one turn of the event loop (the requests whose bytes arrived together) are sent as one statement when
 * the loop reaches its check phase (setImmediate). A lone request waits for nothing but that turn. The
 * statement is the same text whatever the batch size, prepared once per connection (db/connect.ts `prepared`).
 */
export class TokenLookups {
  private readonly batch = new TurnBatch<Waiting>(MAX_BATCH, waiting => { void this.send(waiting) })
  /** statements sent and lookups answered: the average batch size is lookups / statements */
  statements = 0
  lookups = 0

  constructor (private readonly db: Kysely<Database>) {}

  lookup (tokenId: string, projectId: string | null): Promise<TokenLookup | undefined> {
    return new Promise((resolve, reject) => {
      this.batch.push({ key: { tokenId, projectId }, resolve, reject })
    })
  }

  private async send (waiting: Waiting[]): Promise<void> {
    this.statements++
    this.lookups += waiting.length
    try {
      // Requests naming the same token and project (an agent's parallel calls) share one key.
      const index = new Map<string, number>()
      const keys: TokenLookupKey[] = []
      const slot = waiting.map(w => {
        const id = `${w.key.tokenId}/${w.key.projectId ?? ''}`
        let at = index.get(id)
        if (at === undefined) { at = keys.length; index.set(id, at); keys.push(w.key) }
        return at
      })
      const found = await lookupTokens(this.db, keys)
      waiting.forEach((w, i) => { w.resolve(found[slot[i] as number]) })
    } catch (err) {
      for (const w of waiting) w.reject(err)
    }
  }
}
