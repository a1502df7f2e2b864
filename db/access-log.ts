// Reads of mcp_access_log: a token's own trail, newest first, keyset-paged.
import { randomUUID } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import type { Database, McpAccessLogTable, NewAccessLogRow } from './schema.js'
import { prepared } from './connect.js'
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

/** Every column of a row, in the order of the INSERT below (the compiler checks that none is missing). */
const COLUMNS = ['id', 'token_id', 'user_id', 'action', 'outcome', 'details', 'error', 'ip', 'accessed_at', 'project_id',
  'status_code', 'duration_ms', 'method', 'path', 'request_id', 'via'] as const satisfies ReadonlyArray<keyof McpAccessLogTable>
type Unlisted = Exclude<keyof McpAccessLogTable, typeof COLUMNS[number]>
const everyColumnListed: [Unlisted] extends [never] ? true : never = true
void everyColumnListed

/**
 * Inserts a batch of audit rows as one statement whose text does not depend on the batch size: each column is
 * one array parameter, zipped by unnest(). Prepared once per connection (db/connect.ts `prepared`), it costs
 * PostgreSQL about 40 % of a multi-row VALUES insert per row, and spares the compiling of one value per cell.
 * Absent values are NULL, which is each column's default but for id (drawn here when missing) and accessed_at
 * (required). Rows whose id exists already are skipped (a batch retried after a lost answer cannot land twice).
 */
export async function insertAccessLogRows (db: Kysely<Database>, rows: ReadonlyArray<NewAccessLogRow & { accessed_at: Date }>): Promise<void> {
  if (rows.length === 0) return
  const col = <K extends Exclude<typeof COLUMNS[number], 'id' | 'accessed_at'>>(k: K) => rows.map(r => r[k] ?? null)
  await sql`${sql.raw(prepared('ib_mcp_audit_insert'))}
    INSERT INTO mcp_access_log (id, token_id, user_id, action, outcome, details, error, ip, accessed_at, project_id,
                                status_code, duration_ms, method, path, request_id, via)
    SELECT * FROM unnest(${rows.map(r => r.id ?? randomUUID())}::uuid[], ${col('token_id')}::varchar[], ${col('user_id')}::uuid[],
                         ${col('action')}::varchar[], ${col('outcome')}::varchar[], ${col('details')}::jsonb[],
                         ${col('error')}::text[], ${col('ip')}::varchar[], ${rows.map(r => r.accessed_at.toISOString())}::timestamptz[],
                         ${col('project_id')}::uuid[], ${col('status_code')}::smallint[], ${col('duration_ms')}::real[],
                         ${col('method')}::text[], ${col('path')}::text[], ${col('request_id')}::text[], ${col('via')}::text[])
    ON CONFLICT (id) DO NOTHING`.execute(db)
}
