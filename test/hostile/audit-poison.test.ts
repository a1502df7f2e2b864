// SPEC §13.1: one odd id must not silence the audit. Three layers, each proven on its own: the edge refuses ids that
// are not canonical UUIDs (REST and MCP), the audit entry carries only storable values, and the writer, fed rows
// PostgreSQL refuses, writes them repaired and keeps going.
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { AuditWriter, type AuditRow } from '../../core/audit-writer.js'
import { createMetrics } from '../../core/metrics.js'
import { FIXTURE } from '../../db/seed.js'
import { createTestDatabase } from '../helpers/db.js'
import { API, accessLog, bearer, metric } from '../helpers/chain.js'
import { mintToken, post, startMcpApp } from '../helpers/mcp.js'
import { auditSettled } from '../helpers/app.js'

const { projects: P, users: U } = FIXTURE

t.test('over HTTP: urn:uuid, braces and other non-canonical ids are 400 on REST and isError over MCP; the audit keeps flowing', async t => {
  const { app, endpoint, database, session } = await startMcpApp(t, { limits: { default: 1000 } })
  const jwt = await session(U.demo)
  // scoped to another project: on main a 403 (scope refusal) still poisoned the writer
  const { token } = await mintToken(app, jwt, { enabled_projects: { [P.upload]: null } })
  const h = bearer(token)
  const id = randomUUID()
  const odd = [`urn:uuid:${id}`, `URN:UUID:${id}`, `{${id}}`, id.replaceAll('-', ''), `${id}%20`, `urn:uuid:${P.github}`]
  const before = await metric(app, 'mcp_audit_rows_written_total')
  let sent = 0
  for (const value of odd) {
    for (const path of [`/projects/${value}`, `/projects/${value}/builds`, `/projects/${P.github}/builds/${value}`]) {
      const res = await app.inject({ method: 'GET', url: `${API}${path}`, headers: h })
      sent++
      t.equal(res.statusCode, 400, `${path}: 400`)
      t.equal(res.json().code, 'FST_ERR_VALIDATION', `${path}: validation error`)
    }
  }
  const mcpHeaders = { ...h, 'mcp-protocol-version': '2025-11-25' }
  for (const [i, value] of odd.entries()) {
    const answer = await post(endpoint, { jsonrpc: '2.0', id: i + 1, method: 'tools/call', params: { name: 'list_builds', arguments: { projectId: value } } }, mcpHeaders)
    sent++
    const result = (answer.messages[0] as { result?: { isError?: boolean } } | undefined)?.result
    t.equal(result?.isError, true, `MCP list_builds with ${value}: an isError result (HTTP ${answer.status})`)
  }
  // legitimate traffic right after, of this user and of another
  const ok = await app.inject({ method: 'GET', url: `${API}/projects/${P.upload}`, headers: h })
  t.equal(ok.statusCode, 200, 'a legitimate request after the odd ones')
  sent++
  await auditSettled(app)
  const after = await metric(app, 'mcp_audit_rows_written_total')
  t.ok(after - before >= sent, `mcp_audit_rows_written_total rose by every request (${after - before} >= ${sent})`)
  t.equal(await metric(app, 'mcp_audit_flush_failures_total'), 0, 'no failed audit batch')
  t.comment(`FIGURES odd ids over HTTP: ${JSON.stringify({ oddRequests: sent - 1, rowsWritten: after - before, flushFailures: await metric(app, 'mcp_audit_flush_failures_total') })}`)
  t.equal(await metric(app, 'mcp_audit_buffer_depth'), 0, 'nothing left in the buffer')
  const rows = await accessLog(database.db)
  t.ok(rows.some(r => r.action === 'get_project' && r.status_code === 200 && r.project_id === P.upload), 'the legitimate row is written')
  t.ok(rows.every(r => r.project_id === null || /^[0-9a-f-]{36}$/.test(r.project_id)), 'only canonical ids in project_id')
})

/** A row the chain could have recorded; the test overrides fields with values PostgreSQL refuses. */
const baseRow = (over: Partial<Record<keyof AuditRow, unknown>>): AuditRow => ({
  token_id: null,
  user_id: null,
  action: 'list_builds',
  outcome: 'success',
  details: null,
  error: null,
  ip: '127.0.0.1',
  accessed_at: new Date(),
  project_id: null,
  status_code: 200,
  duration_ms: 1.5,
  method: 'GET',
  path: '/api/v1/mcp/projects',
  request_id: randomUUID(),
  via: 'rest',
  ...over
} as unknown as AuditRow) // deliberately outside the types: what a bug upstream could hand over

const POISON: Array<{ name: string, row: Partial<Record<keyof AuditRow, unknown>>, nulled: string[] }> = [
  { name: 'urn:uuid project id', row: { project_id: `urn:uuid:${randomUUID()}` }, nulled: ['project_id'] },
  { name: 'a user id that is no uuid', row: { user_id: 'user-1234' }, nulled: ['user_id'] },
  { name: 'an oversized token id', row: { token_id: 'f'.repeat(40) }, nulled: ['token_id'] },
  { name: 'an oversized address', row: { ip: '1'.repeat(300) }, nulled: ['ip'] },
  { name: 'a status beyond smallint', row: { status_code: 70000 }, nulled: ['status_code'] },
  { name: 'an oversized action', row: { action: 'a'.repeat(500) }, nulled: ['action'] },
  { name: 'an invalid time', row: { accessed_at: new Date(Number.NaN) }, nulled: ['accessed_at'] },
  { name: 'details JSON cannot hold (BigInt)', row: { details: { n: 10n } }, nulled: [] },
  { name: 'NUL bytes in text and keys', row: { error: 'a\u0000b', path: '/x\u0000y', details: { 'k\u0000': 'v\u0000', lone: '\ud800' } }, nulled: [] },
  { name: 'everything at once', row: { project_id: 'urn:uuid:x', user_id: 'nope', status_code: -99999, duration_ms: Number.POSITIVE_INFINITY, token_id: 'x'.repeat(17) }, nulled: ['project_id', 'user_id', 'status_code', 'token_id'] }
]

async function feed (t: Test) {
  const database = await createTestDatabase(t)
  const metrics = createMetrics()
  const writer = new AuditWriter(database.db, { flushMs: 10, bufferMax: 10_000, batchSize: 7, log: Fastify({ logger: false }).log, metrics })
  t.teardown(async () => { await writer.close(1000) })
  const poison = POISON
  const good: string[] = []
  const bad = new Map<string, { name: string, nulled: string[] }>()
  // good and poisoned rows interleaved, three rounds: batches of 7 always hold some of each
  for (let round = 0; round < 3; round++) {
    for (const p of poison) {
      const okId = randomUUID()
      good.push(okId)
      writer.record(baseRow({ request_id: okId }))
      const badId = randomUUID()
      bad.set(badId, p)
      writer.record(baseRow({ ...p.row, request_id: badId }))
    }
  }
  await writer.flush()
  const rows = await database.db.selectFrom('mcp_access_log').selectAll().execute()
  const byRequest = new Map(rows.map(r => [r.request_id, r]))
  t.equal(writer.depth, 0, 'the queue is empty')
  t.equal(rows.length, good.length + bad.size, `every row written (${rows.length})`)
  t.ok(good.every(id => byRequest.has(id)), 'every good row is written')
  const written = (await metrics.registry.getSingleMetric('mcp_audit_rows_written_total')?.get())?.values[0]?.value
  t.equal(written, rows.length, 'mcp_audit_rows_written_total counts them all')
  const failures = (await metrics.registry.getSingleMetric('mcp_audit_flush_failures_total')?.get())?.values[0]?.value ?? 0
  t.equal(failures, 0, 'no batch was left failing')
  let repaired = 0
  for (const [id, p] of bad) {
    const row = byRequest.get(id)
    if (row === undefined) { t.fail(`${p.name}: row missing`); continue }
    const note = (row.details as { audit_repair?: { fields?: string[] } } | null)?.audit_repair
    if (note !== undefined) {
      repaired++
      for (const f of p.nulled) t.ok(note.fields?.includes(f), `${p.name}: ${f} named in the note`)
    } else {
      t.equal(p.nulled.length, 0, `${p.name}: stored as is only when nothing had to be nulled`)
    }
    for (const f of p.nulled) {
      if (f === 'action') t.equal(row.action.length, 128, `${p.name}: action cut to its column`)
      else if (f === 'accessed_at') t.ok(row.accessed_at instanceof Date && Number.isFinite(row.accessed_at.getTime()), `${p.name}: a stand-in time`)
      else t.equal(row[f as keyof typeof row], null, `${p.name}: ${f} nulled`)
    }
  }
  const counted = (await metrics.registry.getSingleMetric('mcp_audit_rows_repaired_total')?.get())?.values[0]?.value
  t.equal(counted, repaired, `mcp_audit_rows_repaired_total counts the repaired rows (${repaired})`)
  t.ok(repaired >= poison.filter(p => p.nulled.length > 0).length * 3, 'every row with an unstorable typed value was repaired')
  return { rows: rows.length, repaired }
}

t.test('the writer fed unstorable values directly: each refused row is written repaired, the others unharmed', async t => {
  const r = await feed(t)
  t.comment(`FIGURES writer fed unstorable rows: ${JSON.stringify({ rowsRecorded: r.rows, rowsWritten: r.rows, repaired: r.repaired, kinds: POISON.length })}`)
})

t.test('a connection error is still retried (not mistaken for a bad row)', async t => {
  const database = await createTestDatabase(t)
  const metrics = createMetrics()
  const writer = new AuditWriter(database.db, { flushMs: 10, bufferMax: 100, log: Fastify({ logger: false }).log, metrics })
  writer.record(baseRow({}))
  await database.drop()
  await t.rejects(writer.flush(), 'flush rejects while the database is gone')
  t.equal(writer.depth, 1, 'the row is kept for a retry')
  await writer.close(50)
})
