// rowJson: the JSON object one audit row becomes in the batch INSERT, with its id first and unstorable strings repaired.
import t from 'tap'
import { rowJson, type AuditRow } from '../../core/audit-writer.js'

const row: AuditRow = {
  token_id: '0123456789abcdef',
  user_id: '0a1b2c3d-1111-4222-8333-444455556666',
  action: 'list_builds',
  outcome: 'success',
  details: { rpc_method: 'tools/call', quoted: 'a "b" \\ c' },
  error: null,
  ip: '127.0.0.1',
  accessed_at: new Date('2026-12-07T07:00:00.123Z'),
  project_id: null,
  status_code: 200,
  duration_ms: 1.234,
  method: 'GET',
  path: '/api/v1/mcp/projects/x/builds',
  request_id: 'r-1',
  via: 'rest'
}

t.test('the row as JSON.stringify({ id, ...row }) writes it, with a fresh UUIDv7 id first', async t => {
  const json = rowJson(row)
  const parsed = JSON.parse(json) as Record<string, unknown>
  const id = parsed['id']
  t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  t.equal(json, JSON.stringify({ id, ...row }))
  t.not(JSON.parse(rowJson(row)).id, id, 'each row its own id')
})

t.test('strings PostgreSQL would refuse are replaced, the rest kept', async t => {
  const json = rowJson({ ...row, error: 'nul \u0000 and a lone \ud800 surrogate', details: { k: 'ok' } })
  const parsed = JSON.parse(json) as Record<string, unknown>
  t.equal(parsed['error'], 'nul \ufffd and a lone \ufffd surrogate')
  t.equal(json, JSON.stringify({ id: parsed['id'], ...row, error: parsed['error'], details: { k: 'ok' } }))
})
