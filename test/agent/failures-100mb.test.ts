// A failing job with a 100 MB log (built in PostgreSQL with generate_series): the failure summary streams it, so the gateway's heap stays bounded; the cold and warm times, the heap's peak and the digest warmed by InfraBox's job_update are printed, not asserted.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import Fastify from 'fastify'
import { sql } from 'kysely'
import { DigestWarmer, type WarmOutcome } from '../../core/digest-warmer.js'
import { CANDIDATE_LITERALS } from '../../core/error-lines.js'
import { digestKept, failureSummary } from '../../core/failure-summary.js'
import { SEARCH_SCAN_MAX, searchBuildLogs } from '../../core/log-search.js'
import { JOB_UPDATE, Notifier, pgListenConnector } from '../../core/notifier.js'
import { scanLogLines } from '../../db/log-lines.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { SUMMARY_ERRORS_DEFAULT, SUMMARY_TAIL_DEFAULT } from '../../schemas/agent.js'
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
    t.comment(`round ${round} (${round === 1 ? 'cold: the log read and digested' : 'warm: the digest of the ended job reused'}): ${ms.toFixed(0)} ms, heap peak +${((peak - base) / MB).toFixed(1)} MiB (garbage included)`)
  }
})

t.test('the summary\'s scan streamed with COPY visits exactly the lines the cursor does, in less time', async t => {
  const scan = async (via: 'cursor' | undefined) => {
    const visited: Array<[number, string]> = []
    const started = performance.now()
    const result = await scanLogLines(db, P.github, job, (line, n) => { visited.push([n, line]) }, { only: { match: CANDIDATE_LITERALS, last: SUMMARY_TAIL_DEFAULT }, via })
    return { visited, result, ms: performance.now() - started }
  }
  // twice each, alternating: this machine's load moves single runs by a factor of two
  const copy = await scan(undefined)
  const cursor = await scan('cursor')
  const times = { copy: [copy.ms, (await scan(undefined)).ms], cursor: [cursor.ms, (await scan('cursor')).ms] }
  t.equal(copy.result.via, 'copy')
  t.same(copy.visited, cursor.visited, `the same ${copy.visited.length} lines visited, numbered and cut alike`)
  t.same({ ...copy.result, via: null }, { ...cursor.result, via: null }, 'the same totals')
  const ms = (list: number[]): string => list.map(v => v.toFixed(0)).join(', ')
  t.comment(`scan of the ${((size?.bytes ?? 0) / MB).toFixed(0)} MiB log: COPY as bytes ${ms(times.copy)} ms; cursor as text ${ms(times.cursor)} ms`)
})

t.test('a job announced failed on job_update has its digest warmed: the first summary call finds it ready', async t => {
  const log = Fastify({ logger: false }).log
  const outcomes = new Map<string, (outcome: WarmOutcome) => void>()
  const notifier = new Notifier(pgListenConnector(database.url, `mcp-test-warm-${process.pid}`), [JOB_UPDATE], { log })
  const warmer = new DigestWarmer(db, notifier, { log, minBytes: 8 * MB, onOutcome: (id, outcome) => { outcomes.get(id)?.(outcome) } })
  t.teardown(async () => { await warmer.close(); await notifier.close() })
  t.ok(await notifier.ready(5000), 'listening')
  const build2 = randomUUID()
  const job2 = randomUUID()
  await db.insertInto('build').values({ id: build2, build_number: 902, restart_counter: 1, project_id: P.github }).execute()
  await db.insertInto('job').values({ id: job2, state: 'running', type: 'run_project_container', name: 'build/huge', build_id: build2, project_id: P.github, definition: '{}' }).execute()
  const outcome = new Promise<WarmOutcome>(resolve => { outcomes.set(job2, resolve) })
  // InfraBox's scheduler: the failed state first (job_update), then upload_console() moves the log into job.console
  const announced = performance.now()
  await sql`UPDATE job SET state = 'failure', end_date = now() WHERE id = ${job2}`.execute(db)
  await sql`UPDATE job SET console = (SELECT console FROM job WHERE id = ${job}) WHERE id = ${job2}`.execute(db)
  t.equal(await outcome, 'warmed', 'the warmer digested it')
  const warmMs = performance.now() - announced
  t.ok(digestKept(job2, size?.bytes ?? 0, SUMMARY_TAIL_DEFAULT, SUMMARY_ERRORS_DEFAULT))
  const started = performance.now()
  const summary = await failureSummary(db, P.github, build2)
  const ms = performance.now() - started
  t.same(summary.failed_jobs[0]?.error_lines.map(l => l.line_number), [LINES + 1, LINES + 2, LINES + 3])
  t.comment(`warmed ${warmMs.toFixed(0)} ms after the failure was announced; the first summary call then took ${ms.toFixed(0)} ms`)
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
  // the statement COPY streams, with each chunk's bytes measured instead of sent
  const { rows } = await sql<{ 'QUERY PLAN': string }>`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)
    SELECT bd.start, bd.len, octet_length(substring(s.b FROM (bd.start + 1)::int FOR bd.len::int)) AS text
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
