// A failing job with a 100 MB log (built in PostgreSQL with generate_series): the failure summary streams it, so the gateway's heap stays bounded; time and the heap's peak are printed, not asserted.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { sql } from 'kysely'
import { failureSummary } from '../../core/failure-summary.js'
import { SEARCH_SCAN_MAX, searchBuildLogs } from '../../core/log-search.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { createTestDatabase } from '../helpers/db.js'
import { tsxArgs } from '../helpers/coverage.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const run = promisify(execFile)

const database = await createTestDatabase(t)
const { db } = database
await seedFixture(db)
const { projects: P } = FIXTURE
const build = randomUUID()
const job = randomUUID()
const LINES = 1_000_000

await db.insertInto('build').values({ id: build, build_number: 901, restart_counter: 1, project_id: P.github }).execute()
// ~117 MB: a million lines of package fetches, then a compile error, npm's epilogue and a non-zero exit
await sql`
  INSERT INTO job (id, state, type, name, build_id, project_id, definition, console)
  SELECT ${job}, 'failure', 'run_project_container', 'build/huge', ${build}, ${P.github}, '{}',
    string_agg(format('12:%s:%s|npm http fetch GET 200 https://registry.npmjs.org/@shop/dependency-%s/-/dependency-%s.tgz 12ms (cache hit)',
      lpad((i / 6000 % 60)::text, 2, '0'), lpad((i / 100 % 60)::text, 2, '0'), i, i), E'\n' ORDER BY i)
    || E'\n12:59:58|src/cart/total.ts:42:7 - error TS2322: Type ''string'' is not assignable to type ''number''.'
    || E'\n12:59:59|npm ERR! code 2\n12:59:59|The command ''/bin/sh -c npm run build'' returned a non-zero code: 2\n'
  FROM generate_series(1, ${LINES}) i`.execute(db)
const { rows: [size] } = await sql<{ bytes: number }>`SELECT octet_length(console) AS bytes FROM job WHERE id = ${job}`.execute(db)
const MB = 1024 * 1024

t.test('the summary of a 100 MB log: the error lines and tail found, the heap bounded', async t => {
  t.ok((size?.bytes ?? 0) > 100 * 1000 * 1000, `the log is ${((size?.bytes ?? 0) / MB).toFixed(1)} MiB`)
  for (const round of [1, 2]) {
    gc()
    const base = process.memoryUsage().heapUsed
    let peak = base
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().heapUsed) }, 2)
    const started = performance.now()
    const summary = await failureSummary(db, P.github, build)
    const ms = performance.now() - started
    clearInterval(sampler)
    const [failed] = summary.failed_jobs
    t.same(failed?.error_lines.map(l => [l.line_number, l.kind]), [[LINES + 1, 'compiler'], [LINES + 2, 'npm'], [LINES + 3, 'exit_code']])
    t.equal(failed?.log.total_lines, LINES + 3)
    t.equal(failed?.tail.at(-1)?.line_number, LINES + 3)
    t.equal(failed?.tail.length, 30)
    t.comment(`round ${round} (${round === 1 ? 'read' : 'the digest of the ended job reused'}): ${ms.toFixed(0)} ms, heap peak +${((peak - base) / MB).toFixed(1)} MiB (garbage included)`)
  }
})

t.test('in a process whose heap is capped below the log\'s size, the summary still answers: nothing holds the log', async t => {
  const HEAP_CAP_MB = 64
  const { stdout } = await run(process.execPath, [`--max-old-space-size=${HEAP_CAP_MB}`, ...tsxArgs(), 'test/helpers/summary-child.ts', database.url, P.github, build])
  const report = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { rounds: Array<{ ms: number, error_lines: number[], total_lines: number }>, heap_peak_mib: number, rss_mib: number }
  t.equal(report.rounds.length, 3)
  t.ok(report.rounds.every(r => r.total_lines === LINES + 3 && r.error_lines[0] === LINES + 1), 'the same answer each time')
  t.ok(report.heap_peak_mib <= HEAP_CAP_MB + 16, `heap peak ${report.heap_peak_mib} MiB under a ${HEAP_CAP_MB} MiB old-space cap, for a ${((size?.bytes ?? 0) / MB).toFixed(0)} MiB log`)
  t.comment(`capped process: ${report.rounds.map(r => `${r.ms} ms`).join(', ')}; heap peak ${report.heap_peak_mib} MiB, rss ${report.rss_mib} MiB`)
})

t.test('the plan: one row for the log, its chunks cut in PostgreSQL (no sort of the log)', async t => {
  const { rows } = await sql<{ 'QUERY PLAN': string }>`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)
    SELECT bd.start, bd.len, octet_length(convert_from(substring(s.b FROM (bd.start + 1)::int FOR bd.len::int), 'UTF8')) AS text
    FROM (SELECT convert_to(job.console, 'UTF8') AS b FROM job WHERE job.id = ${job}::uuid OFFSET 0) s,
    LATERAL (SELECT q.start, coalesce(lead(q.start) OVER (ORDER BY q.i), octet_length(s.b)) - q.start AS len
      FROM (SELECT g.i, g.i AS start FROM generate_series(0, octet_length(s.b) - 1, 1048576) g(i)) q) bd`.execute(db)
  const plan = rows.map(r => r['QUERY PLAN']).join('\n')
  t.comment(plan)
  t.match(plan, /Nested Loop/)
  t.notMatch(plan, /Sort Method: external/, 'no sort spills the log to disk')
})

t.test('search_build_logs over the same log: at most 64 MiB read per call, the cursor goes on to the match', async t => {
  const args = { q: 'TS\\d+', ignore_case: false, context: 1, limit: 5, per_job: 5 }
  const times: number[] = []
  let started = performance.now()
  const first = await searchBuildLogs(db, P.github, build, args)
  times.push(performance.now() - started)
  t.same(first.matches, [], 'nothing in the first 64 MiB')
  t.ok(first.scanned_bytes <= SEARCH_SCAN_MAX + 2 * 1024 * 1024 && first.next_cursor !== null, `read ${(first.scanned_bytes / MB).toFixed(0)} MiB, then a cursor`)
  started = performance.now()
  const second = await searchBuildLogs(db, P.github, build, { ...args, cursor: first.next_cursor ?? undefined })
  times.push(performance.now() - started)
  t.same(second.matches.map(m => m.line_number), [LINES + 1])
  t.equal(second.next_cursor, null)
  t.comment(`two calls: ${times.map(ms => `${ms.toFixed(0)} ms`).join(', ')}`)
})
