// COPY … TO STDOUT (FORMAT binary) row by row on a pg client: fields as bytes, errors from the server or the handler, the client left usable.
import t from 'tap'
import pg from 'pg'
import { copyOutBinary } from '../../db/copy-out.js'
import { createTestDatabase } from '../helpers/db.js'

const database = await createTestDatabase(t, { bare: true })
const client = new pg.Client({ connectionString: database.url })
await client.connect()
t.teardown(async () => { await client.end() })

const ROWS = 'COPY (SELECT i::int4, convert_to(repeat(\'é\', i * 1000), \'UTF8\') FROM generate_series(1, 300) i) TO STDOUT (FORMAT binary)'

t.test('every row, in order, its fields as raw bytes (rows up to 600 kB: several socket reads each)', async t => {
  const seen: Array<[number, number, boolean]> = []
  const n = await copyOutBinary(client, ROWS, ([i, bytes]) => {
    seen.push([i?.readInt32BE(0) ?? -1, bytes?.length ?? -1, bytes?.toString('utf8') === 'é'.repeat((i?.readInt32BE(0) ?? 0) * 1000)])
    return undefined
  })
  t.equal(n, 300)
  t.same(seen, Array.from({ length: 300 }, (_, k) => [k + 1, (k + 1) * 2000, true]))
  t.same((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'the client goes on')
})

t.test('the handler says stop: the rest is dropped, the statement still ends cleanly', async t => {
  let calls = 0
  const n = await copyOutBinary(client, ROWS, () => { calls++; return calls < 5 })
  t.equal(calls, 5)
  t.equal(n, 5)
  t.same((await client.query('SELECT 2 AS two')).rows, [{ two: 2 }])
})

t.test('an error of the server mid-stream rejects with it; so does one the handler throws (after draining)', async t => {
  let rows = 0
  await t.rejects(copyOutBinary(client, 'COPY (SELECT (10 / (3 - i))::int4 FROM generate_series(1, 5) i) TO STDOUT (FORMAT binary)', () => { rows++; return undefined }), { code: '22012' })
  t.equal(rows, 2, 'the rows before the error were handed over')
  t.same((await client.query('SELECT 3 AS three')).rows, [{ three: 3 }])
  await t.rejects(copyOutBinary(client, ROWS, ([i]) => { if (i?.readInt32BE(0) === 10) throw new Error('handler failed'); return undefined }), { message: 'handler failed' })
  t.same((await client.query('SELECT 4 AS four')).rows, [{ four: 4 }])
  await t.rejects(copyOutBinary(client, 'COPY (SELECT NULL::int4) TO STDOUT (FORMAT binary)', () => undefined), { message: /NULL/ })
})

t.test('a read timeout rejects without waiting for the statement', async t => {
  const slow = new pg.Client({ connectionString: database.url })
  await slow.connect()
  const started = Date.now()
  await t.rejects(copyOutBinary(slow, 'COPY (SELECT pg_sleep(10)::text::bytea) TO STDOUT (FORMAT binary)', () => undefined, { timeoutMs: 200 }), { message: /timeout/ })
  t.ok(Date.now() - started < 8000, 'well before the statement would end')
  await slow.end().catch(() => {})
})
