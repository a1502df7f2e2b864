// SPEC §3: no plaintext token in any table, log line or error body. Scans a test database's every text-like column
// and any captured text for `ib_mcp_` + 48 hex and for the session JWTs a test used.
import { sql, type Kysely } from 'kysely'
import type { Database } from '../../db/schema.js'

export const TOKEN_PATTERN = /ib_mcp_[0-9a-f]{48}/gi

export interface Leak { where: string, sample: string }

/** Leaks of tokens (any `ib_mcp_` + 48 hex) or of the given secrets in `text`. */
export function scanText (where: string, text: string, secrets: readonly string[] = []): Leak[] {
  const leaks: Leak[] = []
  for (const m of text.matchAll(TOKEN_PATTERN)) leaks.push({ where, sample: context(text, m.index ?? 0) })
  for (const s of secrets) {
    const i = text.indexOf(s)
    if (s !== '' && i >= 0) leaks.push({ where, sample: context(text, i) })
  }
  return leaks
}

const context = (text: string, i: number): string => text.slice(Math.max(0, i - 60), i + 80).replace(/ib_mcp_[0-9a-f]{12}/gi, 'ib_mcp_…')

export interface DatabaseScan { tables: number, columns: number, leaks: Leak[] }

/**
 * Every column of type text, varchar, char, json, jsonb (or arrays of them) in every non-system schema, searched
 * with a regular expression on the server (each column cast to text), so nothing is sampled.
 */
export async function scanDatabase (db: Kysely<Database>, secrets: readonly string[] = []): Promise<DatabaseScan> {
  const { rows: cols } = await sql<{ table_schema: string, table_name: string, column_name: string }>`
    select c.table_schema, c.table_name, c.column_name
    from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
    where c.table_schema not in ('pg_catalog', 'information_schema')
      and (c.data_type in ('text', 'character varying', 'character', 'json', 'jsonb') or (c.data_type = 'ARRAY' and c.udt_name in ('_text', '_varchar', '_json', '_jsonb')))
    order by 1, 2, 3`.execute(db)
  const leaks: Leak[] = []
  const tables = new Set<string>()
  const patterns = ['ib_mcp_[0-9a-fA-F]{48}', ...secrets.filter(s => s !== '').map(escapeRegex)]
  for (const c of cols) {
    tables.add(`${c.table_schema}.${c.table_name}`)
    const column = sql`${sql.id(c.table_schema, c.table_name, c.column_name)}::text`
    for (const p of patterns) {
      const { rows } = await sql<{ v: string }>`select ${column} as v from ${sql.id(c.table_schema, c.table_name)} where ${column} ~ ${p} limit 3`.execute(db)
      for (const r of rows) leaks.push({ where: `${c.table_schema}.${c.table_name}.${c.column_name}`, sample: context(r.v, r.v.search(new RegExp(p))) })
    }
  }
  return { tables: tables.size, columns: cols.length, leaks }
}

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
