// Job logs as streamed lines against real PostgreSQL: both sources, chunk boundaries (long lines, multibyte characters), resuming, stopping, deleted logs.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { sql } from 'kysely'
import { CHUNK_BYTES, LINE_CHARS_MAX, scanLogLines } from '../../db/log-lines.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { createTestDatabase } from '../helpers/db.js'

const { db } = await createTestDatabase(t)
await seedFixture(db)
const { projects: P, builds: B } = FIXTURE

async function jobWithLog (console: string | null, rows: string[] = []): Promise<string> {
  const id = randomUUID()
  await db.insertInto('job').values({ id, state: rows.length > 0 ? 'running' : 'failure', type: 'run_project_container', name: 'log', build_id: B.b1, project_id: P.github, definition: '{}', console }).execute()
  if (rows.length > 0) await db.insertInto('console').values(rows.map((output, i) => ({ job_id: id, output, date: new Date(Date.UTC(2024, 0, 1) + i * 1000) }))).execute()
  return id
}

async function lines (jobId: string, stopAfter = Infinity): Promise<{ got: Array<[number, string]>, result: Awaited<ReturnType<typeof scanLogLines>> }> {
  const got: Array<[number, string]> = []
  const result = await scanLogLines(db, P.github, jobId, (line, n) => { got.push([n, line]); return got.length < stopAfter })
  return { got, result }
}

/** What splitting the whole log in memory gives: the reference. */
const reference = (log: string): Array<[number, string]> => {
  const parts = log.split('\n')
  if (log.endsWith('\n')) parts.pop()
  return log === '' ? [] : parts.map((line, i) => [i + 1, line.slice(0, LINE_CHARS_MAX)])
}

t.test('job.console: lines and numbers as a plain split gives them, across several chunks', async t => {
  // 2.5 MiB of lines with multibyte characters, one line longer than the boundary probe, no final newline
  const parts: string[] = []
  for (let i = 0, size = 0; size < 2.5 * CHUNK_BYTES; i++) {
    parts.push(i % 997 === 0 ? 'ü€😀'.repeat(5000) : `12:00:00|line ${i} ✓ déjà vu`)
    size += (parts.at(-1) ?? '').length + 1
  }
  const log = parts.join('\n')
  const id = await jobWithLog(log)
  const { got, result } = await lines(id)
  t.same(got, reference(log))
  t.equal(result.total_bytes, Buffer.byteLength(log))
  t.equal(result.scanned_bytes, Buffer.byteLength(log))
  t.equal(result.next, null)
  t.equal(result.source, 'job')
})

t.test('a line longer than a chunk (no newline near the cut): served cut at LINE_CHARS_MAX, counted once', async t => {
  const log = `first\n${'é'.repeat(CHUNK_BYTES)}\nlast\n`
  const id = await jobWithLog(log)
  const { got } = await lines(id)
  t.same(got.map(([n, l]) => [n, l.length]), [[1, 5], [2, LINE_CHARS_MAX], [3, 4]])
})

t.test('console rows (a running job): the concatenation, in date order', async t => {
  const rows = ['12:00:01|a\n12:00:02|b\n', '12:00:03|c', ' continued\n12:00:04|d\n']
  const id = await jobWithLog(null, rows)
  const { got, result } = await lines(id)
  t.same(got, reference(rows.join('')))
  t.equal(result.source, 'rows')
})

t.test('stopping early gives where to resume; resuming from there continues exactly', async t => {
  const log = Array.from({ length: 5000 }, (_, i) => `12:00:00|row ${i} ✓`).join('\n') + '\n'
  for (const [label, id] of [['job.console', await jobWithLog(log)], ['console rows', await jobWithLog(null, [log.slice(0, 30_000), log.slice(30_000)])]] as const) {
    const first: Array<[number, string]> = []
    const r1 = await scanLogLines(db, P.github, id, (line, n) => { first.push([n, line]); return first.length < 1234 })
    t.same(r1.next?.line, 1235, `${label}: next line number`)
    const rest: Array<[number, string]> = []
    const r2 = await scanLogLines(db, P.github, id, (line, n) => { rest.push([n, line]) }, { from: r1.next ?? undefined })
    t.same([...first, ...rest], reference(log), `${label}: first part + rest = the log`)
    t.equal(r2.next, null)
  }
})

t.test('maxBytes stops at a chunk boundary and says where', async t => {
  const log = Array.from({ length: 200_000 }, (_, i) => `12:00:00|row ${i}`).join('\n') + '\n'
  const id = await jobWithLog(log)
  const got: Array<[number, string]> = []
  const r1 = await scanLogLines(db, P.github, id, (line, n) => { got.push([n, line]) }, { maxBytes: 1 })
  t.ok(r1.next !== null && r1.scanned_bytes < Buffer.byteLength(log), 'stopped before the end')
  const r2 = await scanLogLines(db, P.github, id, (line, n) => { got.push([n, line]) }, { from: r1.next ?? undefined })
  t.equal(r2.next, null)
  t.same(got, reference(log))
})

t.test('empty, deleted and foreign logs', async t => {
  const empty = await lines(await jobWithLog(null))
  t.same(empty.got, [])
  t.equal(empty.result.source, 'none')
  const deleted = await lines(await jobWithLog('deleted'))
  t.same(deleted.got, [])
  t.equal(deleted.result.deleted, true)
  await t.rejects(scanLogLines(db, P.upload, await jobWithLog('x\n'), () => undefined), { code: 'MCP_NOT_FOUND', statusCode: 404 })
  await t.rejects(scanLogLines(db, P.github, randomUUID(), () => undefined), { code: 'MCP_NOT_FOUND', statusCode: 404 })
})

t.test('the cursor is closed and the transaction ended: no statement left open', async t => {
  const id = await jobWithLog('a\nb\n')
  await lines(id, 1)
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_cursors`.execute(db)
  t.equal(rows[0]?.n, 0)
})

t.test('only: the lines a pattern finds something in and the last lines, numbered as in the whole log', async t => {
  const parts: string[] = []
  for (let i = 0, size = 0; size < 2.2 * CHUNK_BYTES; i++) {
    parts.push(i % 5000 === 17 ? `12:00:00|boom ${i}` : `12:00:00|quiet line ${i} ✓`)
    size += (parts.at(-1) ?? '').length + 3
  }
  const log = parts.join('\n') + '\n'
  for (const [label, id] of [['job.console', await jobWithLog(log)], ['console rows', await jobWithLog(null, [log.slice(0, 1000), log.slice(1000)])]] as const) {
    const got: Array<[number, string]> = []
    const result = await scanLogLines(db, P.github, id, (line, n) => { got.push([n, line]) }, { only: { match: /boom/g, last: 3 } })
    const all = reference(log)
    const shown = new Set(got.map(([n]) => n))
    t.ok(all.filter(([, line]) => line.includes('boom')).every(([n]) => shown.has(n)), `${label}: every matching line`)
    t.ok(all.slice(-3).every(([n]) => shown.has(n)), `${label}: the last lines`)
    t.ok(got.every(([n, line]) => all[n - 1]?.[1] === line), `${label}: numbered as in the log`)
    t.ok(got.length < all.length / 100, `${label}: few lines visited (${got.length} of ${all.length})`)
    t.equal(result.lines, all.length, `${label}: every line counted`)
  }
})

/** An `only` scan both ways: streamed with COPY (the default over a pg pool) and through the cursor. */
async function bothWays (jobId: string, only: { match: RegExp, last: number }, stopAfter = Infinity, from?: { byte: number, line: number }) {
  const run = async (via: 'cursor' | undefined) => {
    const got: Array<[number, string]> = []
    const result = await scanLogLines(db, P.github, jobId, (line, n) => { got.push([n, line]); return got.length < stopAfter }, { only, via, from })
    return { got, result }
  }
  return { copy: await run(undefined), cursor: await run('cursor') }
}

t.test('only, streamed with COPY as bytes: the same lines, numbers, texts and totals as through the cursor', async t => {
  // multibyte characters everywhere, lines longer than the boundary probe and than LINE_CHARS_MAX (one longer than a
  // chunk) with a match in them, CRLF and empty lines, a match in the last line, no final newline
  const lineOf = (i: number): string => {
    if (i % 997 === 0) return 'ü€😀'.repeat(5000) + (i % 2 === 0 ? ' boom' : '')
    if (i === 1500) return `${'é'.repeat(CHUNK_BYTES)} boom in a line longer than a chunk`
    if (i % 301 === 0) return `12:00:00|déjà boom ${i}\r`
    return i % 7 === 0 ? '' : `12:00:00|line ${i} ✓ déjà vu`
  }
  const parts: string[] = ['12:00:00|boom at the start']
  for (let i = 0, size = 0; size < 3.2 * CHUNK_BYTES; i++) {
    const line = lineOf(i)
    parts.push(line)
    size += Buffer.byteLength(line) + 1
  }
  parts.push('12:00:01|the end: boom')
  const log = parts.join('\n')
  const id = await jobWithLog(log)
  for (const last of [0, 3, 40]) {
    const { copy, cursor } = await bothWays(id, { match: /boom/g, last })
    t.equal(copy.result.via, 'copy', `last ${last}: read with COPY`)
    t.equal(cursor.result.via, 'cursor')
    t.same(copy.got, cursor.got, `last ${last}: the same lines visited, numbered and cut alike (${copy.got.length})`)
    t.same({ ...copy.result, via: null }, { ...cursor.result, via: null }, `last ${last}: the same totals`)
    t.equal(copy.result.lines, reference(log).length)
  }
  // the long lines come cut at LINE_CHARS_MAX characters, as from the cursor
  const { copy } = await bothWays(id, { match: /boom/g, last: 0 })
  t.ok(copy.got.some(([, line]) => line.length === LINE_CHARS_MAX && line.startsWith('éé')), 'the line longer than a chunk, cut')
  t.same(copy.got.at(-1), [reference(log).length, '12:00:01|the end: boom'])
})

t.test('only, streamed: stopping early and resuming give what the cursor gives; the connection goes back clean', async t => {
  const log = Array.from({ length: 60_000 }, (_, i) => i % 1000 === 5 ? `12:00:00|boom ${i} ✓` : `12:00:00|row ${i} ✓`).join('\n') + '\n'
  const id = await jobWithLog(log)
  const only = { match: /boom/g, last: 2 }
  const first = await bothWays(id, only, 7)
  t.equal(first.copy.result.via, 'copy')
  t.same(first.copy.got, first.cursor.got)
  t.same(first.copy.result.next, first.cursor.result.next, 'the same place to resume')
  const rest = await bothWays(id, only, Infinity, first.copy.result.next ?? undefined)
  t.same(rest.copy.got, rest.cursor.got)
  t.equal(rest.copy.result.next, null)
  t.equal(first.copy.result.lines + rest.copy.result.lines, reference(log).length, 'every line counted once')
  // nothing left open by the stopped stream: no transaction, and the pool's next statement works
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`.execute(db)
  t.equal(rows[0]?.n, 0)
})

t.test('only, streamed: console rows, empty, deleted and foreign logs answer as through the cursor', async t => {
  const rows = await bothWays(await jobWithLog(null, ['12:00:01|a boom\n12:00:02|b\n', '12:00:03|c']), { match: /boom/g, last: 1 })
  t.equal(rows.copy.result.via, 'cursor', 'a running job\'s rows are read through the cursor')
  t.same(rows.copy.got, rows.cursor.got)
  t.match(rows.copy.got, [[1, '12:00:01|a boom'], [2, '12:00:02|b'], [3, '12:00:03|c']])
  for (const console of [null, 'deleted', '']) {
    const { copy, cursor } = await bothWays(await jobWithLog(console), { match: /boom/g, last: 1 })
    t.same(copy.got, [])
    t.same({ ...copy.result, via: null }, { ...cursor.result, via: null }, `console ${String(console)}`)
  }
  await t.rejects(scanLogLines(db, P.upload, await jobWithLog('boom\n'), () => undefined, { only: { match: /boom/g, last: 1 } }), { code: 'MCP_NOT_FOUND', statusCode: 404 })
  await t.rejects(scanLogLines(db, P.github, randomUUID(), () => undefined, { only: { match: /boom/g, last: 1 } }), { code: 'MCP_NOT_FOUND', statusCode: 404 })
})
