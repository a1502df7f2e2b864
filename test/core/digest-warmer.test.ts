// The digest warmer on real PostgreSQL: InfraBox's job_update announcing a failure gets a large log digested ahead (in either order of state change and console upload); small logs, other states, a full queue and closing.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import pg from 'pg'
import { kyselyWithOwnPool } from '../../db/connect.js'
import { buildApp } from '../helpers/app.js'
import { createTestDatabase, eventually } from '../helpers/db.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { DigestWarmer, type WarmOutcome } from '../../core/digest-warmer.js'
import { digestKept, digestLog } from '../../core/failure-summary.js'
import { JOB_UPDATE, Notifier, pgListenConnector } from '../../core/notifier.js'
import { SUMMARY_ERRORS_DEFAULT, SUMMARY_TAIL_DEFAULT } from '../../schemas/agent.js'

const log = Fastify({ logger: false }).log
const database = await createTestDatabase(t)
await seedFixture(database.db)
const project = FIXTURE.projects.github
const MIN_BYTES = 256 * 1024

/** Another connection, as InfraBox's scheduler would be. */
const scheduler = new pg.Client({ connectionString: database.url })
await scheduler.connect()
t.teardown(async () => { await scheduler.end() })

/** Every outcome, and a way to wait for a given job's (resolved by the warmer's own report: no sleeping). */
const outcomes: Array<[string, WarmOutcome]> = []
const expecting = new Map<string, (outcome: WarmOutcome) => void>()
const outcomeOf = async (jobId: string): Promise<WarmOutcome> => {
  const seen = outcomes.find(([id]) => id === jobId)
  if (seen !== undefined) return seen[1]
  return await new Promise(resolve => { expecting.set(jobId, resolve) })
}
const onOutcome = (jobId: string, outcome: WarmOutcome): void => {
  outcomes.push([jobId, outcome])
  expecting.get(jobId)?.(outcome)
}

const notifier = new Notifier(pgListenConnector(database.url, `mcp-test-warm-${process.pid}`), [JOB_UPDATE], { log, minBackoffMs: 50 })
const warmer = new DigestWarmer(database.db, notifier, { log, minBytes: MIN_BYTES, recheckMs: [50, 100, 200, 400, 800], onOutcome })
t.teardown(async () => { await warmer.close(); await notifier.close() })
const buildId = randomUUID()
await scheduler.query('INSERT INTO build (id, build_number, project_id, restart_counter) VALUES ($1, 950, $2, 1)', [buildId, project])

/** A log of about `bytes` bytes: package lines, then a compile error and npm's epilogue. */
const logOf = (bytes: number): string => {
  const lines: string[] = []
  for (let i = 0, size = 0; size < bytes; i++) {
    lines.push(`12:00:${String(i % 60).padStart(2, '0')}|fetched @shop/package-${i} ✓`)
    size += Buffer.byteLength(lines.at(-1) ?? '') + 1
  }
  return lines.join('\n') + '\n12:59:58|src/a.ts:1:1 - error TS2322: nope\n12:59:59|npm ERR! code 2\n'
}

const runningJob = async (): Promise<string> => {
  const id = randomUUID()
  await scheduler.query("INSERT INTO job (id, state, type, name, build_id, project_id, definition) VALUES ($1, 'running', 'run_project_container', 'build', $2, $3, '{}')", [id, buildId, project])
  return id
}
/** InfraBox's scheduler: the job's console rows while it runs, … */
const writeRows = async (jobId: string, text: string): Promise<void> => {
  await scheduler.query("INSERT INTO console (job_id, output, date) VALUES ($1, $2, now() - interval '1 minute'), ($1, $3, now())", [jobId, text.slice(0, 1000), text.slice(1000)])
}
/** … its state, … */
const setState = async (jobId: string, state: string): Promise<void> => {
  await scheduler.query('UPDATE job SET state = $2::job_state, end_date = now() WHERE id = $1', [jobId, state])
}
/** … and upload_console(): the rows concatenated into job.console, in a transaction of its own. */
const uploadConsole = async (jobId: string): Promise<void> => {
  await scheduler.query('BEGIN')
  await scheduler.query("UPDATE job SET console = (SELECT string_agg(output, '' ORDER BY date) FROM console WHERE job_id = $1) WHERE id = $1", [jobId])
  await scheduler.query('DELETE FROM console WHERE job_id = $1', [jobId])
  await scheduler.query('COMMIT')
}

t.test('the warmer starts the listening connection by itself', async t => {
  t.ok(await notifier.ready(5000))
})

t.test('state first, console uploaded afterwards (InfraBox\'s usual order): re-checked until job.console holds it, then digested', async t => {
  const jobId = await runningJob()
  const text = logOf(MIN_BYTES * 3)
  await writeRows(jobId, text)
  await setState(jobId, 'failure')
  // the scheduler uploads the console a moment later; the warmer re-checks meanwhile
  await new Promise(resolve => setTimeout(resolve, 120))
  await uploadConsole(jobId)
  t.equal(await outcomeOf(jobId), 'warmed')
  const bytes = Buffer.byteLength(text)
  t.ok(digestKept(jobId, bytes, SUMMARY_TAIL_DEFAULT, SUMMARY_ERRORS_DEFAULT), 'the summary\'s digest is kept')
  const digest = await digestLog(database.db, project, jobId, SUMMARY_TAIL_DEFAULT, SUMMARY_ERRORS_DEFAULT)
  t.same(digest.error_lines.map(l => l.kind), ['compiler', 'npm'])
  t.equal(digest.total_bytes, bytes)
  t.equal(digest.tail.length, SUMMARY_TAIL_DEFAULT)
})

t.test('console uploaded first, then the state (aborts, timeouts): digested at once', async t => {
  const jobId = await runningJob()
  await writeRows(jobId, logOf(MIN_BYTES * 2))
  await uploadConsole(jobId)
  await setState(jobId, 'killed')
  t.equal(await outcomeOf(jobId), 'warmed')
})

t.test('a summary call that comes while the same log is being read waits for that read (the same digest, read once)', async t => {
  const jobId = await runningJob()
  await writeRows(jobId, logOf(MIN_BYTES * 2))
  await uploadConsole(jobId)
  // one connection: the second call's project check runs after the first call's, so the first read is under way by then
  const single = kyselyWithOwnPool({ connectionString: database.url, max: 1 })
  t.teardown(async () => { await single.destroy() })
  const first = digestLog(single, project, jobId, 7, 3)
  const second = digestLog(single, project, jobId, 7, 3)
  const [a, b] = await Promise.all([first, second])
  t.equal(a, b, 'one digest object: the second call joined the first one\'s read')
  t.equal(a.tail.length, 7)
  // another project's call is refused before it could join
  await t.rejects(digestLog(database.db, FIXTURE.projects.upload, jobId, 7, 3), { code: 'MCP_NOT_FOUND', statusCode: 404 })
})

t.test('a small log is left to be read on demand; a job that did not fail is not looked at', async t => {
  const finished = await runningJob()
  await writeRows(finished, logOf(MIN_BYTES * 2))
  await uploadConsole(finished)
  await setState(finished, 'finished')
  const small = await runningJob()
  await writeRows(small, logOf(10_000))
  await uploadConsole(small)
  await setState(small, 'error')
  // notifications arrive in commit order and are handled in that order: once the small one is settled, the
  // finished one would have been too
  t.equal(await outcomeOf(small), 'small')
  t.notOk(outcomes.some(([id]) => id === finished), 'nothing done for a finished job')
  t.notOk(digestKept(small, Buffer.byteLength(logOf(10_000)), SUMMARY_TAIL_DEFAULT, SUMMARY_ERRORS_DEFAULT))
})

t.test('a log that never reaches job.console is given up after the re-checks', async t => {
  const jobId = await runningJob()
  await writeRows(jobId, logOf(MIN_BYTES * 2))
  await setState(jobId, 'failure')
  t.equal(await outcomeOf(jobId), 'gone')
  t.equal(warmer.pending, 0)
})

t.test('the queue is bounded; closing stops the re-checks', async t => {
  const seen: Array<[string, WarmOutcome]> = []
  const small = new DigestWarmer(database.db, notifier, { log, minBytes: MIN_BYTES, queueMax: 1, recheckMs: [60_000], onOutcome: (id, o) => { seen.push([id, o]) } })
  const waiting = await runningJob()
  await writeRows(waiting, 'still running\n')
  small.enqueue(waiting)
  const other = randomUUID()
  small.enqueue(other)
  t.same(seen, [[other, 'dropped']], 'the second job was dropped at once')
  t.equal(small.pending, 1, 'the first waits for its re-check')
  await small.close()
  t.ok(seen.every(([id, o]) => (id === other && o === 'dropped') || (id === waiting && o === 'gone')), 'the waiting job is not read after close')
  const settled = seen.length
  small.enqueue(randomUUID())
  t.equal(seen.length, settled, 'nothing taken after close')
})

t.test('malformed or foreign notifications are ignored', async t => {
  const before = outcomes.length
  await scheduler.query("SELECT pg_notify('job_update', 'not json'), pg_notify('job_update', '{\"job_id\": 5, \"state\": \"failure\"}'), pg_notify('job_update', '[1]')")
  const jobId = await runningJob()
  await setState(jobId, 'failure')
  await uploadConsole(jobId) // no rows: job.console stays empty
  t.equal(await outcomeOf(jobId), 'gone')
  t.same(outcomes.slice(before).map(([id]) => id), [jobId], 'only the real failure was handled')
})

t.test('the standalone app warms with LOG_DIGEST_WARM_BYTES and counts it; 0 turns it off', async t => {
  const { app, database: appDatabase } = await buildApp(t, { redis: false, env: { LOG_DIGEST_WARM_BYTES: String(MIN_BYTES) }, seed: async ({ db }) => { await seedFixture(db) } })
  t.ok(app.mcpGateway.warmer !== null, 'a warmer')
  const infrabox = new pg.Client({ connectionString: appDatabase.url })
  await infrabox.connect()
  t.teardown(async () => { await infrabox.end() })
  const build = randomUUID()
  const job = randomUUID()
  const text = logOf(MIN_BYTES * 2)
  await infrabox.query('INSERT INTO build (id, build_number, project_id, restart_counter) VALUES ($1, 951, $2, 1)', [build, project])
  await infrabox.query("INSERT INTO job (id, state, type, name, build_id, project_id, definition, console) VALUES ($1, 'running', 'run_project_container', 'build', $2, $3, '{}', $4)", [job, build, project, text])
  // the app's listener is up once it answers; the failure is then announced to it
  t.ok(await app.mcpGateway.notifier?.ready(5000))
  await infrabox.query("UPDATE job SET state = 'failure' WHERE id = $1", [job])
  t.ok(await eventually(async () => digestKept(job, Buffer.byteLength(text), SUMMARY_TAIL_DEFAULT, SUMMARY_ERRORS_DEFAULT)), 'digested ahead')
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  t.match(metrics.body, /mcp_log_digest_warmups_total\{outcome="warmed"\} 1/)
  const off = await buildApp(t, { redis: false, env: { LOG_DIGEST_WARM_BYTES: '0' } })
  t.equal(off.app.mcpGateway.warmer, null, 'no warmer when off')
})
