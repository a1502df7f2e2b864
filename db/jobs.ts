// Job questions: a build's jobs, one job, a job's test results; every query bound to the authorized project.
import type { Kysely, Selectable } from 'kysely'
import { decodeCursor, encodeCursor } from '../lib/cursor.js'
import { UUID } from '../lib/ids.js'
import { notFound } from '../lib/errors.js'
import { compiledShape, compiledShapes, type Slots } from './compiled.js'
import type { Job, JobDependency, JobPage, TestRun, TestRunPage } from '../schemas/data.js'
import type { Database, JobTable, Json, TestResult } from './schema.js'

export interface PageOptions {
  limit: number
  cursor?: string | undefined
}

export interface TestRunsOptions extends PageOptions {
  state?: TestResult | undefined
}

/** The columns a Job is made of; shared with db/builds.ts so both answer with the same shape. */
export const JOB_COLUMNS = [
  'job.id', 'job.build_id', 'job.name', 'job.type', 'job.state', 'job.start_date', 'job.end_date',
  'job.created_at', 'job.message', 'job.dependencies'
] as const

type JobRow = Pick<Selectable<JobTable>, 'id' | 'build_id' | 'name' | 'type' | 'state' | 'start_date' | 'end_date' | 'created_at' | 'message' | 'dependencies'>

const iso = (d: Date | null): string | null => d === null ? null : d.toISOString()

export function toJob (row: JobRow): Job {
  return {
    id: row.id,
    build_id: row.build_id,
    name: row.name,
    type: row.type,
    state: row.state,
    start_date: iso(row.start_date),
    end_date: iso(row.end_date),
    created_at: row.created_at.toISOString(),
    message: row.message,
    dependencies: dependenciesOf(row.dependencies)
  }
}

/**
 * InfraBox stores `[{"job": name, "job-id": uuid, "on": [states]}]`; served as `{job, job_id, on}`.
 * Entries of any other shape are skipped rather than failing the whole answer.
 */
export function dependenciesOf (value: Json | null): JobDependency[] {
  if (!Array.isArray(value)) return []
  const out: JobDependency[] = []
  for (const entry of value) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) continue
    const { job, on } = entry
    const jobId = entry['job-id']
    if (typeof job !== 'string') continue
    out.push({
      job,
      job_id: typeof jobId === 'string' && UUID.test(jobId) ? jobId : null,
      on: Array.isArray(on) ? on.filter((s): s is string => typeof s === 'string') : []
    })
  }
  return out
}

const JOBS_CURSOR = 'jobs'

const jobsOfBuildShapes = compiledShapes((db, v: Slots<{ projectId: string, buildId: string, after: string, limit: number }>, shape: 'all' | 'first' | 'after') => {
  let query = db
    .selectFrom('job')
    .select(JOB_COLUMNS)
    .where('job.build_id', '=', v.buildId)
    .where('job.project_id', '=', v.projectId)
  if (shape === 'after') {
    // Join the row the cursor names and compare positions in SQL: no row (a foreign or vanished id), no page.
    query = query
      .innerJoin('job as seen', join => join.on('seen.id', '=', v.after).on('seen.build_id', '=', v.buildId))
      .where(eb => eb(eb.refTuple('job.created_at', 'job.id'), '>', eb.refTuple('seen.created_at', 'seen.id')))
  }
  query = query.orderBy('job.created_at').orderBy('job.id')
  return shape === 'all' ? query : query.limit(v.limit)
})

/**
 * A build's jobs in creation order, keyset-paged on (created_at, id). The cursor holds the last job's
 * id and the position is read back in SQL, so timestamps keep their microseconds (a JS Date would not).
 */
export async function listJobs (db: Kysely<Database>, projectId: string, buildId: string, page: PageOptions): Promise<JobPage> {
  const after = page.cursor === undefined ? null : String(decodeCursor(JOBS_CURSOR, page.cursor, ['uuid'])[0])
  const rows = await jobsOfBuildShapes(after === null ? 'first' : 'after')
    .execute(db, { projectId, buildId, after: after ?? '', limit: page.limit + 1 })
  // Only an empty page pays for telling "no such build here" (404) from "no more jobs".
  if (rows.length === 0) await assertBuildInProject(db, projectId, buildId)
  const items = rows.slice(0, page.limit).map(toJob)
  const last = items.at(-1)
  return {
    items,
    next_cursor: rows.length > page.limit && last !== undefined ? encodeCursor(JOBS_CURSOR, [last.id]) : null
  }
}

/** Every job of a build in creation order (a build has tens of jobs, not thousands): for get_build. */
export async function jobsOfBuild (db: Kysely<Database>, projectId: string, buildId: string): Promise<Job[]> {
  const rows = await jobsOfBuildShapes('all').execute(db, { projectId, buildId, after: '', limit: 0 })
  return rows.map(toJob)
}

const jobShape = compiledShape((db, v: Slots<{ projectId: string, jobId: string }>) => db
  .selectFrom('job')
  .select(JOB_COLUMNS)
  .where('job.id', '=', v.jobId)
  .where('job.project_id', '=', v.projectId))

export async function getJob (db: Kysely<Database>, projectId: string, jobId: string): Promise<Job> {
  const [row] = await jobShape.execute(db, { projectId, jobId })
  if (row === undefined) throw notFound(`job ${jobId} not found in project ${projectId}`)
  return toJob(row)
}

const TEST_RUNS_CURSOR = 'test_runs'

const testRunShapes = compiledShapes((db, v: Slots<{ projectId: string, jobId: string, state: TestResult, after: string, limit: number }>, shape: `${'' | 'state'}/${'' | 'after'}`) => {
  let query = db
    .selectFrom('test_run')
    .select(['test_run.id', 'test_run.suite', 'test_run.name', 'test_run.state', 'test_run.duration',
      'test_run.message', 'test_run.stack', 'test_run.timestamp'])
    .where('test_run.job_id', '=', v.jobId)
    .where('test_run.project_id', '=', v.projectId)
  if (shape.startsWith('state/')) query = query.where('test_run.state', '=', v.state)
  if (shape.endsWith('/after')) {
    query = query
      .innerJoin('test_run as seen', join => join.on('seen.id', '=', v.after).on('seen.job_id', '=', v.jobId))
      .where(eb => eb(
        eb.tuple(eb.fn.coalesce('test_run.suite', eb.val('')), eb.fn.coalesce('test_run.name', eb.val('')), eb.ref('test_run.id')),
        '>',
        eb.tuple(eb.fn.coalesce('seen.suite', eb.val('')), eb.fn.coalesce('seen.name', eb.val('')), eb.ref('seen.id'))
      ))
  }
  return query
    .orderBy(eb => eb.fn.coalesce('test_run.suite', eb.val('')))
    .orderBy(eb => eb.fn.coalesce('test_run.name', eb.val('')))
    .orderBy('test_run.id')
    .limit(v.limit)
})

/**
 * A job's test results by suite, then name, then id (nulls sort as ''), optionally one state only.
 * The cursor is the last row's id, its position read back in SQL: test names can be longer than a cursor may carry.
 */
export async function listTestRuns (db: Kysely<Database>, projectId: string, jobId: string, opts: TestRunsOptions): Promise<TestRunPage> {
  const after = opts.cursor === undefined ? null : String(decodeCursor(TEST_RUNS_CURSOR, opts.cursor, ['uuid'])[0])
  const rows = await testRunShapes(`${opts.state === undefined ? '' : 'state'}/${after === null ? '' : 'after'}`)
    .execute(db, { projectId, jobId, state: opts.state ?? 'ok', after: after ?? '', limit: opts.limit + 1 })
  if (rows.length === 0) await assertJobInProject(db, projectId, jobId)
  const items: TestRun[] = rows.slice(0, opts.limit).map(r => ({ ...r, timestamp: iso(r.timestamp) }))
  const last = items.at(-1)
  return {
    items,
    next_cursor: rows.length > opts.limit && last !== undefined ? encodeCursor(TEST_RUNS_CURSOR, [last.id]) : null
  }
}

const buildInProject = compiledShape((db, v: Slots<{ projectId: string, buildId: string }>) => db
  .selectFrom('build').select('build.id').where('build.id', '=', v.buildId).where('build.project_id', '=', v.projectId))

/** 404 unless the build exists in the project: an empty list must not hide a wrong id. */
export async function assertBuildInProject (db: Kysely<Database>, projectId: string, buildId: string): Promise<void> {
  const [found] = await buildInProject.execute(db, { projectId, buildId })
  if (found === undefined) throw notFound(`build ${buildId} not found in project ${projectId}`)
}

const jobInProject = compiledShape((db, v: Slots<{ projectId: string, jobId: string }>) => db
  .selectFrom('job').select('job.id').where('job.id', '=', v.jobId).where('job.project_id', '=', v.projectId))

/** 404 unless the job exists in the project. */
export async function assertJobInProject (db: Kysely<Database>, projectId: string, jobId: string): Promise<void> {
  const [found] = await jobInProject.execute(db, { projectId, jobId })
  if (found === undefined) throw notFound(`job ${jobId} not found in project ${projectId}`)
}
