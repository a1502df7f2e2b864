// Reads of mcp_access_log: a token's own trail, newest first, keyset-paged.
import type { Kysely } from 'kysely'
import type { Database } from './schema.js'
import { decodeCursor, encodeCursor } from '../core/cursor.js'

const KIND = 'access-log'

export async function listTokenAccessLog (db: Kysely<Database>, tokenId: string, page: { limit: number, cursor?: string | undefined }) {
  let q = db.selectFrom('mcp_access_log')
    .select(['id', 'token_id', 'action', 'outcome', 'status_code', 'project_id', 'via', 'method', 'path', 'ip', 'error', 'details', 'duration_ms', 'accessed_at'])
    .where('token_id', '=', tokenId)
  if (page.cursor !== undefined) {
    const [at, id] = decodeCursor(KIND, page.cursor, ['date', 'uuid']) as [string, string]
    q = q.where(eb => eb.or([
      eb('accessed_at', '<', new Date(at)),
      eb.and([eb('accessed_at', '=', new Date(at)), eb('id', '<', id)])
    ]))
  }
  const rows = await q.orderBy('accessed_at', 'desc').orderBy('id', 'desc').limit(page.limit + 1).execute()
  const items = rows.slice(0, page.limit).map(r => ({ ...r, accessed_at: r.accessed_at.toISOString() }))
  const last = rows.length > page.limit ? rows[page.limit - 1] : undefined
  return { items, next_cursor: last === undefined ? null : encodeCursor(KIND, [last.accessed_at.toISOString(), last.id]) }
}
