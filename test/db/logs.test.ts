// Job logs against real PostgreSQL: both storage paths, byte and line windows, character boundaries, 410 for collected logs.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { readJobLog, type LogWindowOptions } from '../../db/logs.js'
import { COMPILE_LOG, DEPLOY_LOG, FIXTURE, seedFixture } from '../../db/seed.js'
import { LOG_WINDOW_MAX } from '../../schemas/data.js'
import { createTestDatabase } from '../helpers/db.js'

const testDb = await createTestDatabase(t)
const { db } = testDb
await seedFixture(db)
const { projects: P, builds: B, jobs: J } = FIXTURE
const MiB = 1024 * 1024

/** A job of the github project with the given log in job.console and/or console rows (dated a second apart). */
async function jobWithLog (console: string | null, rows: string[] = [], state: 'finished' | 'running' = 'finished'): Promise<string> {
  const id = randomUUID()
  await db.insertInto('job').values({ id, state, type: 'run_project_container', name: 'log', build_id: B.b1, project_id: P.github, definition: '{}', console }).execute()
  if (rows.length > 0) {
    await db.insertInto('console').values(rows.map((output, i) => ({ job_id: id, output, date: new Date(Date.UTC(2024, 0, 1) + i * 1000) }))).execute()
  }
  return id
}

/**
 * Checks a window against the log's bytes: it is exactly bytes [offset, offset + length), valid
 * UTF-8 cut only at character boundaries, within 3 bytes of the request at either end.
 */
function checkWindow (t: { fail: (message: string) => unknown }, full: Buffer, opts: { offset: number, length: number }, got: { log: string, offset: number, length: number, total_bytes: number, truncated: boolean }, label: string): void {
  const start = Math.min(opts.offset, full.length)
  const end = Math.min(start + opts.length, full.length)
  const bytes = Buffer.from(got.log, 'utf8')
  const ok =
    got.total_bytes === full.length &&
    bytes.equals(full.subarray(got.offset, got.offset + got.length)) &&
    got.offset >= start && got.offset - start <= 3 &&
    got.offset + got.length >= end && got.offset + got.length - end <= 3 &&
    !got.log.includes('\ufffd') &&
    got.truncated === (got.offset > 0 || got.offset + got.length < full.length)
  if (!ok) t.fail(`${label}: window ${JSON.stringify(opts)} gave ${JSON.stringify({ ...got, log: got.log.slice(0, 40) })}`)
}

t.test('a finished job\'s log comes from job.console (defect 5), whole when small', async t => {
  t.same(await readJobLog(db, P.github, J.compile), {
    log: COMPILE_LOG,
    total_bytes: Buffer.byteLength(COMPILE_LOG),
    offset: 0,
    length: Buffer.byteLength(COMPILE_LOG),
    truncated: false
  })
  // Leftover rows do not override job.console.
  const id = await jobWithLog('final log\n', ['stale row\n'])
  t.equal((await readJobLog(db, P.github, id)).log, 'final log\n')
})

t.test('a running job\'s log is its console rows by date, then id', async t => {
  t.same(await readJobLog(db, P.github, J.deploy), {
    log: DEPLOY_LOG,
    total_bytes: Buffer.byteLength(DEPLOY_LOG),
    offset: 0,
    length: Buffer.byteLength(DEPLOY_LOG),
    truncated: false
  })
  const id = await jobWithLog('', ['a\n', 'b\n'])
  t.equal((await readJobLog(db, P.github, id)).log, 'a\nb\n', 'an empty job.console falls back to the rows')
})

t.test('no log yet: empty, not an error', async t => {
  t.same(await readJobLog(db, P.github, J.b8B), { log: '', total_bytes: 0, offset: 0, length: 0, truncated: false })
})

t.test('a log the collector deleted is 410; other projects\' jobs are 404', async t => {
  await t.rejects(readJobLog(db, P.github, J.legacy), { code: 'MCP_GONE', statusCode: 410 })
  await t.rejects(readJobLog(db, P.github, J.publicRun), { code: 'MCP_NOT_FOUND', statusCode: 404 })
  await t.rejects(readJobLog(db, P.public, J.compile), { code: 'MCP_NOT_FOUND' })
  await t.rejects(readJobLog(db, P.github, randomUUID()), { code: 'MCP_NOT_FOUND' })
})

t.test('offset/length windows never split a character, on both storage paths', async t => {
  // Rows of mixed widths so windows cross row edges inside multi-byte characters.
  const rows = ['ab✓\n', 'größe 🚀\n', '', 'x', '€€€\n', '🙂🙂\n']
  const rowsJob = await jobWithLog(null, rows, 'running')
  const cases: Array<[string, string, Buffer]> = [
    ['job.console', J.compile, Buffer.from(COMPILE_LOG)],
    ['console rows', J.deploy, Buffer.from(DEPLOY_LOG)],
    ['many rows', rowsJob, Buffer.from(rows.join(''))]
  ]
  for (const [label, jobId, full] of cases) {
    let checked = 0
    for (let offset = 0; offset <= full.length + 1; offset++) {
      for (const length of [1, 5]) {
        checkWindow(t, full, { offset, length }, await readJobLog(db, P.github, jobId, { offset, length }), label)
        checked++
      }
    }
    t.pass(`${label}: ${checked} windows are exact byte ranges of whole characters`)
  }
})

t.test('window arithmetic', async t => {
  const full = Buffer.from(COMPILE_LOG)
  t.same(await readJobLog(db, P.github, J.compile, { offset: 0, length: 10 }), { log: '10:00:00|S', total_bytes: full.length, offset: 0, length: 10, truncated: true })
  const past = await readJobLog(db, P.github, J.compile, { offset: full.length + 100 })
  t.same(past, { log: '', total_bytes: full.length, offset: full.length, length: 0, truncated: true }, 'an offset past the end is an empty window at the end')
  const lastTen = await readJobLog(db, P.github, J.compile, { length: 10 })
  t.same(lastTen, { log: ' finished\n', total_bytes: full.length, offset: full.length - 10, length: 10, truncated: true }, 'length alone: the last bytes')
  await t.rejects(readJobLog(db, P.github, J.compile, { tail: 1, offset: 0 }), { code: 'MCP_BAD_REQUEST', statusCode: 400 })
  await t.rejects(readJobLog(db, P.github, J.compile, { length: LOG_WINDOW_MAX + 1 }), { code: 'MCP_BAD_REQUEST' })
  await t.rejects(readJobLog(db, P.github, J.compile, { offset: -1 }), { code: 'MCP_BAD_REQUEST' })
  await t.rejects(readJobLog(db, P.github, J.compile, { tail: 0 }), { code: 'MCP_BAD_REQUEST' })
})

t.test('tail: the last N lines', async t => {
  const tail = async (jobId: string, n: number): Promise<string> => (await readJobLog(db, P.github, jobId, { tail: n })).log
  t.equal(await tail(J.compile, 1), '10:00:03|Build finished\n')
  t.equal(await tail(J.compile, 2), '10:00:02|Step 3/3: RUN npm test 🚀\n10:00:03|Build finished\n')
  t.equal(await tail(J.compile, 100), COMPILE_LOG, 'more lines than the log has: all of it')
  t.equal(await tail(J.deploy, 1), '07:00:03|Step 2 — done\n', 'rows path')
  const unterminated = await jobWithLog('one\ntwo\nthree')
  t.equal(await tail(unterminated, 2), 'two\nthree', 'a last line without newline counts')
  const windowed = await readJobLog(db, P.github, J.compile, { tail: 1 })
  t.equal(windowed.offset + windowed.length, windowed.total_bytes)
  t.equal(windowed.truncated, true)
})

t.test('default window: the last 1 MiB of a larger log, cut in SQL, on character boundaries', async t => {
  // 3-byte characters with an odd prefix, so total - 1 MiB falls inside a character.
  const line = '€'.repeat(99) + '\n'
  const big = 'x' + line.repeat(Math.ceil((1.5 * MiB) / Buffer.byteLength(line)))
  const full = Buffer.from(big)
  for (const [label, id] of [
    ['job.console', await jobWithLog(big)],
    ['console rows', await jobWithLog(null, big.match(/[\s\S]{1,4000}/g) ?? [], 'running')]
  ] as const) {
    const got = await readJobLog(db, P.github, id)
    t.equal(got.total_bytes, full.length, `${label}: total`)
    t.ok(got.length <= MiB && got.length >= MiB - 3, `${label}: about 1 MiB (${got.length})`)
    t.equal(got.offset + got.length, full.length, `${label}: ends at the end`)
    t.equal(got.truncated, true, `${label}: truncated`)
    t.ok(Buffer.from(got.log).equals(full.subarray(got.offset)), `${label}: exact bytes, whole characters`)
    t.notOk(got.log.includes('\ufffd'), `${label}: no replacement characters`)

    const tailed = await readJobLog(db, P.github, id, { tail: 3 })
    t.equal(tailed.log, line.repeat(3), `${label}: tail of a large log`)
    const huge = await readJobLog(db, P.github, id, { tail: 10_000 })
    t.ok(huge.length <= MiB, `${label}: tail is capped at 1 MiB`)
    t.ok(huge.log.startsWith('€') && huge.log.endsWith('\n'), `${label}: a capped tail starts at a line start`)
    t.equal(huge.log.length % line.length, 0, `${label}: whole lines only`)
  }
})

t.test('options type is what the route passes through', async t => {
  const opts: LogWindowOptions = { offset: undefined, length: undefined, tail: undefined }
  t.equal((await readJobLog(db, P.github, J.compile, opts)).log, COMPILE_LOG)
})
