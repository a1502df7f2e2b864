// Reads of mcp_access_log: a token's own trail, newest first, keyset-paged.
import { sql, type Kysely } from 'kysely'
import type { Database } from './schema.js'
import { prepared } from './connect.js'
import { decodeCursor, encodeCursor } from '../lib/cursor.js'

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

/**
 * Inserts a batch of audit rows given as JSON objects (one text each, `id` and `accessed_at` included) in one
 * statement whose text does not depend on the batch size: the batch is a single JSON array parameter that
 * json_to_recordset() turns into rows, so the statement is prepared once per connection (db/connect.ts
 * `prepared`) and no value is escaped one by one. Absent keys are NULL. Rows whose id exists already are
 * skipped (a batch retried after a lost answer cannot land twice).
 */
export async function insertAccessLogJson (db: Kysely<Database>, rows: readonly string[]): Promise<void> {
  if (rows.length === 0) return
  await sql`${sql.raw(prepared('ib_mcp_audit_insert_json'))}
    INSERT INTO mcp_access_log (id, token_id, user_id, action, outcome, details, error, ip, accessed_at, project_id,
                                status_code, duration_ms, method, path, request_id, via)
    SELECT id, token_id, user_id, action, outcome, details, error, ip, accessed_at, project_id,
           status_code, duration_ms, method, path, request_id, via
    FROM json_to_recordset(${'[' + rows.join(',') + ']'}::json) AS r(
      id uuid, token_id varchar, user_id uuid, action varchar, outcome varchar, details jsonb, error text, ip varchar,
      accessed_at timestamptz, project_id uuid, status_code smallint, duration_ms real, method text, path text,
      request_id text, via text)
    ON CONFLICT (id) DO NOTHING`.execute(db)
}
