// EXPLAIN (ANALYZE, BUFFERS) of the benchmarked queries, exactly as the gateway sends them, on a seeded database.
//   node dist/bench/explain.js --database-url postgres://…/mcp_bench_…  [--project <uuid>]
// Prints the plans of: the builds list (listBuilds, first page, on the project with the most builds) and its
// hand-written twin (variant P), the
// auth lookup (lookupTokens, one key with a project), its coalesced form (8 keys), and one audit batch INSERT.
import { pathToFileURL } from 'node:url'
import { Kysely, PostgresDialect, type CompiledQuery } from 'kysely'
import pg from 'pg'
import { poolConfig } from '../db/connect.js'
import type { Database } from '../db/schema.js'
import { listBuilds } from '../db/builds.js'
import { lookupTokens } from '../db/tokens.js'
import { insertAccessLogJson } from '../db/access-log.js'
import { rowJson } from '../core/audit-writer.js'
import { PLAIN_BUILDS_SQL } from './plain-query.js'

export interface Plan { title: string, sql: string, plan: string }

const PREPARED = /^\/\* prepared /
const { prepareValue } = (pg as unknown as { utils: { prepareValue: (v: unknown) => unknown } }).utils
const literal = (v: unknown): string => {
  const text = prepareValue(v)
  return text === null || text === undefined ? 'NULL' : pg.escapeLiteral(String(text))
}

/** Runs `fn` on a Kysely instance that records the statements it sends. */
async function captured (pool: pg.Pool, fn: (db: Kysely<Database>) => Promise<unknown>): Promise<CompiledQuery[]> {
  const seen: CompiledQuery[] = []
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: { connect: async () => await pool.connect(), end: async () => {} } }),
    log: (event) => { if (event.level === 'query') seen.push(event.query) }
  })
  await fn(db)
  return seen
}

async function explain (pool: pg.Pool, q: Pick<CompiledQuery, 'sql' | 'parameters'>, title: string, rollback = false): Promise<Plan> {
  const client = await pool.connect()
  try {
    if (rollback) await client.query('BEGIN')
    // warm: the plan shown is the steady state (catalog and buffers cached), not the first call
    // eslint-disable-next-line no-unmodified-loop-condition -- a constant per statement, read once per loop on purpose
    for (let i = 0; i < 3 && !rollback; i++) await client.query(q.sql, q.parameters as unknown[])
    let text = `EXPLAIN (ANALYZE, BUFFERS) ${q.sql}`
    if (PREPARED.test(q.sql)) {
      // The gateway runs this one as a named statement, which keeps its cached generic plan after five runs
      // (db/tokens.ts lookupTokens): show that plan (the setting is this session's only, released below).
      await client.query("SET plan_cache_mode = 'force_generic_plan'")
      await client.query('DEALLOCATE ALL')
      await client.query(`PREPARE explained AS ${q.sql}`)
      // EXECUTE takes no bound parameters: the values go in as literals, in the text form pg would send them
      text = `EXPLAIN (ANALYZE, BUFFERS) EXECUTE explained(${q.parameters.map(literal).join(', ')})`
    }
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(text, text.includes('EXECUTE explained') ? [] : q.parameters as unknown[])
    return { title, sql: q.sql, plan: rows.map(r => r['QUERY PLAN']).join('\n') }
  } finally {
    if (rollback) await client.query('ROLLBACK')
    // the session's settings and statements go with it
    client.release(true)
  }
}

export async function explainAll (url: string, projectArg?: string): Promise<Plan[]> {
  const pool = new pg.Pool(poolConfig({ connectionString: url, max: 2 }))
  try {
    const { rows: [top] } = await pool.query<{ project_id: string, n: number }>(
      'SELECT project_id, count(*)::int AS n FROM build GROUP BY project_id ORDER BY n DESC LIMIT 1')
    const projectId = projectArg ?? top?.project_id
    if (projectId === undefined) throw new Error('no builds in this database')
    const { rows: keys } = await pool.query<{ token_id: string, project_id: string }>(
      'SELECT t.token_id, c.project_id FROM collaborator c JOIN mcp_token t ON t.user_id = c.user_id ORDER BY c.project_id = $1 DESC, t.token_id LIMIT 8', [projectId])
    const first = keys[0]
    if (first === undefined) throw new Error('no tokens in this database')
    const plans: Plan[] = []
    const [builds] = await captured(pool, async db => await listBuilds(db, projectId, { limit: 20 }))
    if (builds !== undefined) plans.push(await explain(pool, builds, `builds list, first page (project ${projectId}, ${top?.n ?? '?'} builds)`))
    plans.push(await explain(pool, { sql: PLAIN_BUILDS_SQL, parameters: [projectId, 21] }, 'the same page as the plain hand-written query (bench/plain-query.ts, variant P)'))
    const [single] = await captured(pool, async db => await lookupTokens(db, [{ tokenId: first.token_id, projectId: first.project_id }]))
    if (single !== undefined) plans.push(await explain(pool, single, 'auth: token + owner + project + role, one request'))
    const [batch] = await captured(pool, async db => await lookupTokens(db, keys.map(k => ({ tokenId: k.token_id, projectId: k.project_id }))))
    if (batch !== undefined) plans.push(await explain(pool, batch, `auth: the same for ${keys.length} requests that arrived together (one statement)`))
    const rows = Array.from({ length: 100 }, (_v, i) => rowJson({
      token_id: first.token_id,
      user_id: null,
      action: 'list_builds',
      outcome: 'success',
      details: null,
      error: null,
      ip: '127.0.0.1',
      accessed_at: new Date(),
      project_id: projectId,
      status_code: 200,
      duration_ms: 1.5,
      method: 'GET',
      path: `/api/v1/mcp/projects/${projectId}/builds`,
      request_id: `explain-${i}`,
      via: 'rest'
    }))
    const [insert] = await captured(pool, async db => await insertAccessLogJson(db, rows).catch(() => undefined))
    // the INSERT above really ran once (to capture it): remove those rows; the EXPLAIN ANALYZE below is rolled back
    await pool.query("DELETE FROM mcp_access_log WHERE request_id LIKE 'explain-%'")
    if (insert !== undefined) plans.push(await explain(pool, insert, 'audit: one batch of 100 rows, about one AUDIT_FLUSH_MS at 1000 req/s (rolled back)', true))
    return plans
  } finally {
    await pool.end()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2)
  const flag = (name: string): string | undefined => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : undefined }
  const url = flag('database-url')
  if (url === undefined) { console.error('usage: node dist/bench/explain.js --database-url postgres://…/<bench database> [--project <uuid>]'); process.exit(2) }
  explainAll(url, flag('project')).then(plans => {
    for (const p of plans) console.log(`\n### ${p.title}\n\n${p.sql}\n\n${p.plan}`)
  }, (err: unknown) => { console.error(err); process.exit(1) })
}
