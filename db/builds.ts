// Build questions: a project's builds newest first with their status derived from their jobs, and one build in full.
import { sql, type ExpressionBuilder, type Kysely } from 'kysely'
import { decodeCursor, encodeCursor } from '../lib/cursor.js'
import { notFound } from '../lib/errors.js'
import { BUILD_STATUSES, type BuildDetail, type BuildPage, type BuildStatus, type BuildSummary } from '../schemas/data.js'
import { compiledShapes, type Slots } from './compiled.js'
import { jobsOfBuild } from './jobs.js'
import type { Database, JobState } from './schema.js'
import { SCHEMA_47_COLUMNS, type InfraboxColumns } from './infrabox-version.js'

export interface ListBuildsOptions {
  branch?: string | undefined
  status?: BuildStatus | undefined
  limit: number
  cursor?: string | undefined
}

const ACTIVE: JobState[] = ['queued', 'scheduled', 'running']
const CURSOR_KIND = 'builds'

/**
 * `bool_or(job.state in (...))` over the build's jobs that stand: a job marked `restarted` has been replaced by its
 * clone (SPEC §14), so a retried build is judged by the clones, and an original left queued does not keep it running.
 */
function anyJobIn (eb: ExpressionBuilder<Database, 'job'>, states: JobState[]) {
  return eb.fn.agg<boolean | null>('bool_or', [eb.and([eb('job.state', 'in', states), sql<boolean>`${eb.ref('job.restarted')} IS NOT TRUE`])])
}

/**
 * The project's repositories, as a sub-select. InfraBox files every commit under its project's
 * repository and its commit primary key is (repository_id, id), so naming the repository is what
 * lets a commit lookup by sha use an index on a stock InfraBox database (commit has no index on
 * project_id or id alone). Uncorrelated: PostgreSQL runs it once per statement (an InitPlan), not per build.
 */
function repositoriesOf (db: Kysely<Database>, projectId: string) {
  return db.selectFrom('repository').select('repository.id').where('repository.project_id', '=', projectId)
}

/**
 * Builds of one project with their commit and job aggregate, as one SELECT both lists and single
 * builds start from. Both joins are LATERAL, so PostgreSQL evaluates them only for the build rows
 * it walks, each through an index: jobs by job_build_id_idx, the commit by commit_pkey
 * (repository_id, id). The jobs come first so that a status filter rejects a build before its
 * commit is looked up. The commit is matched on its sha and the build's project (the same sha can
 * exist in other projects). A list reads only the commit's branch; one build (`detail`) its whole commit.
 */
function buildsOfProject (db: Kysely<Database>, projectId: string, columns: InfraboxColumns) {
  // before InfraBox 00047 (schema 46) a build has no source: null, in a query of the same shape
  const source = columns.buildSource ? sql<string | null>`build.source` : sql<string | null>`null::varchar`
  return db
    .selectFrom('build')
    .innerJoinLateral(
      // An aggregate without GROUP BY: exactly one row per build, also for a build without jobs.
      eb => eb.selectFrom('job')
        .select(eb => [
          eb.fn.min('job.created_at').as('created_at'),
          eb.case().when(anyJobIn(eb, ACTIVE)).then(null).else(eb.fn.max('job.end_date')).end().as('finished_at'),
          eb.case()
            .when(anyJobIn(eb, ACTIVE)).then('running')
            .when(anyJobIn(eb, ['failure'])).then('failure')
            .when(anyJobIn(eb, ['error'])).then('error')
            .when(anyJobIn(eb, ['killed'])).then('killed')
            .when(anyJobIn(eb, ['unstable'])).then('unstable')
            .else('finished')
            .end()
            .as('status')
        ])
        .whereRef('job.build_id', '=', 'build.id')
        .whereRef('job.project_id', '=', 'build.project_id')
        .as('build_jobs'),
      join => join.onTrue()
    )
    .leftJoinLateral(
      eb => eb.selectFrom('commit')
        .select(['commit.id', 'commit.branch', 'commit.message', 'commit.author_name', 'commit.author_email', 'commit.url'])
        .whereRef('commit.id', '=', 'build.commit_id')
        .whereRef('commit.project_id', '=', 'build.project_id')
        .where('commit.repository_id', 'in', repositoriesOf(db, projectId))
        // Two repositories of one project could both know the sha: pick one, deterministically.
        .orderBy('commit.repository_id')
        .limit(1)
        .as('build_commit'),
      join => join.onTrue()
    )
    .select([
      'build.id', 'build.build_number', 'build.restart_counter', 'build.commit_id', source.as('source'), 'build_commit.branch',
      'build_jobs.created_at', 'build_jobs.finished_at', 'build_jobs.status'
    ])
    .where('build.project_id', '=', projectId)
}

/**
 * For each status, job states one of which a build of that status must have: a semi-join on them
 * (job_project_id_idx) bounds a filtered listing by one pass over the project's jobs instead of an
 * aggregate per build when the status is rare. `finished` is the absence of the others: no witness.
 */
const STATUS_WITNESS: Record<BuildStatus, JobState[] | null> = {
  running: ACTIVE,
  failure: ['failure'],
  error: ['error'],
  killed: ['killed'],
  unstable: ['unstable'],
  finished: null
}

type BuildRow = Awaited<ReturnType<ReturnType<typeof buildsOfProject>['executeTakeFirstOrThrow']>>

const STATUS_NAMES: ReadonlySet<string> = new Set(BUILD_STATUSES)

function isBuildStatus (value: string): value is BuildStatus {
  return STATUS_NAMES.has(value)
}

function toSummary (row: BuildRow): BuildSummary {
  // The CASE above can only yield these names; the guard keeps the type honest without a cast.
  if (!isBuildStatus(row.status)) throw new Error(`unexpected build status ${row.status}`)
  return {
    id: row.id,
    build_number: row.build_number,
    restart_counter: row.restart_counter,
    commit_sha: row.commit_id,
    branch: row.branch,
    source: row.source,
    created_at: row.created_at === null ? null : row.created_at.toISOString(),
    finished_at: row.finished_at === null ? null : row.finished_at.toISOString(),
    status: row.status
  }
}

/** Which optional filters a listing uses, and whether the database has build.source: each combination is its own shape, compiled once. */
type ListShape = `${'' | 'branch'}/${BuildStatus | ''}/${'' | 'after'}/${ColumnsKey}`

/** The InfraBox column variant (InfraboxColumns, chosen at start) as a shape key. */
type ColumnsKey = 'source' | 'nosource'
const columnsKey = (columns: InfraboxColumns): ColumnsKey => columns.buildSource ? 'source' : 'nosource'
const columnsOf = (key: string | undefined): InfraboxColumns => ({ buildSource: key !== 'nosource' })

interface ListValues extends Record<string, unknown> {
  projectId: string
  branch: string
  buildNumber: number
  restartCounter: number
  limit: number
}

const listShapes = compiledShapes<ListShape, ListValues, BuildRow>((db, v, shape) => {
  const [branch, status, after, columns] = shape.split('/')
  let query = buildsOfProject(db, v.projectId, columnsOf(columns))
  if (branch === 'branch') {
    // The semi-join narrows the walk to builds of the branch's commits; the second test keeps it
    // exact for the commit row actually shown.
    query = query
      .where('build.commit_id', 'in', eb => eb.selectFrom('commit')
        .select('commit.id')
        .where('commit.project_id', '=', v.projectId)
        .where('commit.repository_id', 'in', repositoriesOf(db, v.projectId))
        .where('commit.branch', '=', v.branch))
      .where('build_commit.branch', '=', v.branch)
  }
  if (status !== undefined && isBuildStatus(status)) {
    const witness = STATUS_WITNESS[status]
    if (witness !== null) {
      query = query.where('build.id', 'in', eb => eb.selectFrom('job')
        .select('job.build_id')
        .where('job.project_id', '=', v.projectId)
        .where('job.state', 'in', witness))
    }
    query = query.where('build_jobs.status', '=', status)
  }
  if (after === 'after') {
    query = query.where(eb => eb(
      eb.refTuple('build.build_number', 'build.restart_counter'),
      '<',
      eb.tuple(v.buildNumber, v.restartCounter)
    ))
  }
  return query
    .orderBy('build.build_number', 'desc')
    .orderBy('build.restart_counter', 'desc')
    .limit(v.limit)
})

/**
 * Builds newest first by (build_number, restart_counter) desc, keyset-paged. Both filters are SQL
 * predicates ahead of the LIMIT, so a filtered page is as full as the data allows and the cursor
 * stays exact. The walk follows the unique index build (project_id, build_number, restart_counter)
 * backwards; the cursor is the last (build_number, restart_counter) served.
 */
export async function listBuilds (db: Kysely<Database>, projectId: string, opts: ListBuildsOptions, columns: InfraboxColumns = SCHEMA_47_COLUMNS): Promise<BuildPage> {
  const after = opts.cursor === undefined ? null : decodeCursor(CURSOR_KIND, opts.cursor, ['number', 'number'])
  const shape: ListShape = `${opts.branch === undefined ? '' : 'branch'}/${opts.status ?? ''}/${after === null ? '' : 'after'}/${columnsKey(columns)}`
  const rows = await listShapes(shape).execute(db, {
    projectId,
    branch: opts.branch ?? '',
    buildNumber: after === null ? 0 : Number(after[0]),
    restartCounter: after === null ? 0 : Number(after[1]),
    limit: opts.limit + 1
  })

  const items = rows.slice(0, opts.limit).map(toSummary)
  const last = items.at(-1)
  return {
    items,
    next_cursor: rows.length > opts.limit && last !== undefined
      ? encodeCursor(CURSOR_KIND, [last.build_number, last.restart_counter])
      : null
  }
}

const buildShapes = compiledShapes((db, v: Slots<{ projectId: string, buildId: string }>, columns: ColumnsKey) => buildsOfProject(db, v.projectId, columnsOf(columns))
  .select(['build_commit.id as commit_row_sha', 'build_commit.message', 'build_commit.author_name', 'build_commit.author_email', 'build_commit.url'])
  .where('build.id', '=', v.buildId))

/** One build with its commit and all its jobs; 404 when the id is not a build of this project. */
export async function getBuild (db: Kysely<Database>, projectId: string, buildId: string, columns: InfraboxColumns = SCHEMA_47_COLUMNS): Promise<BuildDetail> {
  const [row] = await buildShapes(columnsKey(columns)).execute(db, { projectId, buildId })
  if (row === undefined) throw notFound(`build ${buildId} not found in project ${projectId}`)
  const jobs = await jobsOfBuild(db, projectId, buildId)
  return {
    ...toSummary(row),
    commit: row.commit_row_sha === null || row.branch === null || row.author_name === null || row.author_email === null || row.url === null
      ? null
      : {
          sha: row.commit_row_sha,
          message: row.message,
          author_name: row.author_name,
          author_email: row.author_email,
          url: row.url,
          branch: row.branch
        },
    jobs
  }
}
