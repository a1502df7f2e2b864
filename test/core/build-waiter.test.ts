// wait_for_build's engine on real PostgreSQL: waiters wake on InfraBox's notifications, hold no connection, survive a killed listener.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import pg from 'pg'
import { createTestDatabase, TEST_DATABASE_URL } from '../helpers/db.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { BuildWaiters } from '../../core/build-waiter.js'
import { JOB_UPDATE, Notifier, pgListenConnector } from '../../core/notifier.js'
import type { JobState } from '../../db/schema.js'
import { wellBefore, within } from '../helpers/timing.js'

const log = Fastify({ logger: false }).log
const database = await createTestDatabase(t)
await seedFixture(database.db)
const project = FIXTURE.projects.github
const LISTENER = `mcp-test-listen-${process.pid}`

/** Another connection, as InfraBox's scheduler would be. */
const scheduler = new pg.Client({ connectionString: database.url })
await scheduler.connect()
/** Watches the server (on the maintenance database, so it is not counted among the test database's backends). */
const monitor = new pg.Client({ connectionString: TEST_DATABASE_URL })
await monitor.connect()
t.teardown(async () => { await scheduler.end(); await monitor.end() })

const notifier = new Notifier(pgListenConnector(database.url, LISTENER), [JOB_UPDATE], { log, minBackoffMs: 50 })
const waiters = new BuildWaiters(database.db, notifier, { log })
t.teardown(async () => { waiters.close(); await notifier.close() })

/** A build of the github project with one job per state given; returns the build and job ids. */
async function newBuild (states: JobState[]): Promise<{ buildId: string, jobIds: string[] }> {
  const buildId = randomUUID()
  const { rows } = await scheduler.query<{ n: number }>('SELECT coalesce(max(build_number), 0) + 1 AS n FROM build WHERE project_id = $1', [project])
  await scheduler.query('INSERT INTO build (id, build_number, project_id, restart_counter) VALUES ($1, $2, $3, 1)', [buildId, rows[0]?.n, project])
  const jobIds: string[] = []
  for (const [i, state] of states.entries()) {
    const id = randomUUID()
    jobIds.push(id)
    await scheduler.query("INSERT INTO job (id, state, type, name, build_id, project_id, definition) VALUES ($1, $2, 'run_project_container', $3, $4, $5, '{}')", [id, state, `job-${i}`, buildId, project])
  }
  return { buildId, jobIds }
}

const setState = async (jobId: string, state: JobState): Promise<void> => {
  await scheduler.query('UPDATE job SET state = $2::job_state, end_date = CASE WHEN $2::job_state IN (\'queued\', \'scheduled\', \'running\') THEN NULL ELSE now() END WHERE id = $1', [jobId, state])
}

interface Backend { pid: number, application_name: string, state: string | null }
const backends = async (): Promise<Backend[]> =>
  (await monitor.query<Backend>('SELECT pid, application_name, state FROM pg_stat_activity WHERE datname = $1', [database.name])).rows

t.test('a waiter wakes on the last job leaving the running states, by a change of another connection, not at its timeout', async t => {
  const WAIT_MS = 10_000
  const { buildId, jobIds } = await newBuild(['finished', 'running', 'queued'])
  const waiting = waiters.wait(project, buildId, WAIT_MS)
  await new Promise(resolve => setTimeout(resolve, 200))
  await setState(jobIds[2] ?? '', 'running')
  await setState(jobIds[1] ?? '', 'finished')
  await new Promise(resolve => setTimeout(resolve, 200))
  t.same(waiters.size, { builds: 1, waiters: 1 }, 'still waiting while one job runs')
  const changed = performance.now()
  await setState(jobIds[2] ?? '', 'failure')
  const outcome = await waiting
  const latency = performance.now() - changed
  t.equal(outcome.finished, true)
  t.equal(outcome.build.status, 'failure')
  t.same(outcome.build.jobs.map(j => j.state), ['finished', 'finished', 'failure'])
  t.ok(latency < wellBefore(WAIT_MS), `woke ${latency.toFixed(0)} ms after the last change (the ${WAIT_MS} ms timeout would answer finished: false)`)
  t.same(waiters.size, { builds: 0, waiters: 0 }, 'nothing is left behind')
})

t.test('a build that is not running answers at once; a build of another project is 404', async t => {
  const WAIT_MS = 10_000
  const started = performance.now()
  const outcome = await waiters.wait(project, FIXTURE.builds.b1, WAIT_MS)
  t.equal(outcome.finished, true)
  t.equal(outcome.build.status, 'finished')
  t.ok(performance.now() - started < wellBefore(WAIT_MS), 'answered after one check, not at the timeout')
  await t.rejects(waiters.wait(FIXTURE.projects.upload, FIXTURE.builds.b1, 1000), { statusCode: 404, code: 'MCP_NOT_FOUND' })
  await t.rejects(waiters.wait(project, randomUUID(), 1000), { statusCode: 404, code: 'MCP_NOT_FOUND' })
})

t.test('timeout: finished false with the elapsed time and the build as last seen', async t => {
  const { buildId } = await newBuild(['running'])
  const TIMEOUT_MS = 300
  const outcome = await waiters.wait(project, buildId, TIMEOUT_MS)
  t.equal(outcome.finished, false)
  t.equal(outcome.build.status, 'running')
  // not before the timeout (Node's timers count from the event loop's cached time, so by performance.now() one may
  // fire a few ms early); after it, the answer and nothing else
  t.ok(outcome.elapsedMs >= TIMEOUT_MS - 10 && outcome.elapsedMs < within(TIMEOUT_MS, 2), `elapsed ${outcome.elapsedMs.toFixed(0)} ms`)
})

t.test('jobs created after the first check (Create Jobs expanding the build) are followed', async t => {
  const { buildId, jobIds } = await newBuild(['running'])
  const waiting = waiters.wait(project, buildId, 10_000)
  await new Promise(resolve => setTimeout(resolve, 150))
  // Create Jobs inserts the matrix, then finishes: the build keeps running on the new job.
  const child = randomUUID()
  await scheduler.query("INSERT INTO job (id, state, type, name, build_id, project_id, definition) VALUES ($1, 'queued', 'run_project_container', 'child', $2, $3, '{}')", [child, buildId, project])
  await setState(jobIds[0] ?? '', 'finished')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.same(waiters.size.waiters, 1, 'still waiting for the child')
  await setState(child, 'running')
  await setState(child, 'finished')
  const outcome = await waiting
  t.equal(outcome.finished, true)
  t.equal(outcome.build.jobs.length, 2)
})

t.test('200 concurrent waiters hold no database connection and share one check per wake-up', async t => {
  const builds: Array<{ buildId: string, jobIds: string[] }> = []
  for (let i = 0; i < 4; i++) builds.push(await newBuild(['running']))
  // warm up: the listener is up and the pool has served four checks at once (its connections stay open, idle)
  await Promise.all([FIXTURE.builds.b1, FIXTURE.builds.b2, FIXTURE.builds.b3, FIXTURE.builds.b4].map(async b => await waiters.wait(project, b, 1000)))
  const before = await backends()
  const checksBefore = waiters.checks
  const WAIT_MS = 20_000
  const all = Array.from({ length: 200 }, async (_, i) => await waiters.wait(project, builds[i % 4]?.buildId ?? '', WAIT_MS))
  await new Promise(resolve => setTimeout(resolve, 500))
  const during = await backends()
  t.same(waiters.size, { builds: 4, waiters: 200 })
  t.ok(during.length <= before.length, `backends of the test database: ${before.length} before, ${during.length} while 200 wait`)
  t.same(during.filter(b => b.state !== 'idle').map(b => b.application_name), [], 'no backend is busy (or idle in a transaction) for a waiter')
  t.equal(during.filter(b => b.application_name === LISTENER).length, 1, 'one listening connection for the process')
  const firstChecks = waiters.checks - checksBefore
  t.ok(firstChecks <= 8, `at most two checks per build for 200 arrivals (${firstChecks})`)
  const woke = performance.now()
  for (const b of builds) await setState(b.jobIds[0] ?? '', 'finished')
  const outcomes = await Promise.all(all)
  t.ok(outcomes.every(o => o.finished), 'all 200 answered finished')
  t.ok(performance.now() - woke < wellBefore(WAIT_MS), `all woke within ${(performance.now() - woke).toFixed(0)} ms, by the notifications, not at the timeout`)
  t.ok(waiters.checks - checksBefore - firstChecks <= 8, 'one check per build woke all its waiters')
})

t.test('a killed listening connection: waiters still learn of a build that finished while nobody listened', async t => {
  const WAIT_MS = 20_000
  const { buildId, jobIds } = await newBuild(['running'])
  const waiting = Array.from({ length: 5 }, async () => await waiters.wait(project, buildId, WAIT_MS))
  await new Promise(resolve => setTimeout(resolve, 200))
  const listener = (await backends()).find(b => b.application_name === LISTENER)
  t.ok(listener !== undefined, 'the listener is there')
  const connectionsBefore = notifier.connections
  await monitor.query('SELECT pg_terminate_backend($1)', [listener?.pid])
  // The build finishes in the gap: its notification goes to nobody.
  await setState(jobIds[0] ?? '', 'finished')
  const finished = performance.now()
  const outcomes = await Promise.all(waiting)
  t.ok(outcomes.every(o => o.finished), 'every waiter answers finished: true')
  // the re-established listener's re-check answers them, not the waits' own timeout
  t.ok(performance.now() - finished < wellBefore(WAIT_MS), `within ${(performance.now() - finished).toFixed(0)} ms of the change`)
  t.equal(notifier.connections, connectionsBefore + 1, 'the listening connection was re-established')
  const after = (await backends()).filter(b => b.application_name === LISTENER)
  t.equal(after.length, 1, 'one listener again')
  t.not(after[0]?.pid, listener?.pid, 'a new backend')
})

t.test('no notifier (a host without LISTEN): one process-wide re-check a second still wakes waiters', async t => {
  const polling = new BuildWaiters(database.db, null, { log, pollMs: 200 })
  t.teardown(() => { polling.close() })
  const { buildId, jobIds } = await newBuild(['running'])
  const waiting = polling.wait(project, buildId, 5000)
  await new Promise(resolve => setTimeout(resolve, 100))
  await setState(jobIds[0] ?? '', 'killed')
  const outcome = await waiting
  t.equal(outcome.finished, true)
  t.equal(outcome.build.status, 'killed')
})

t.test('closing: every waiter answers at once with finished: false, and so does a new one', async t => {
  const closing = new BuildWaiters(database.db, notifier, { log })
  const { buildId } = await newBuild(['running'])
  const waiting = Array.from({ length: 10 }, async () => await closing.wait(project, buildId, 30_000))
  await new Promise(resolve => setTimeout(resolve, 200))
  const started = performance.now()
  closing.closing()
  const outcomes = await Promise.all(waiting)
  t.ok(outcomes.every(o => !o.finished && o.build.status === 'running'))
  // "at once": not after the waits' own 30 s; a loaded host's stall is all the room it needs (test/helpers/timing.ts)
  t.ok(performance.now() - started < within(0), `answered in ${(performance.now() - started).toFixed(1)} ms, not after the 30 s wait`)
  const late = await closing.wait(project, buildId, 30_000)
  t.equal(late.finished, false, 'a wait that starts while closing answers after one check')
  closing.close()
})
