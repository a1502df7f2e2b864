// Failing tests of a build marked new, known or flaky from the branch's history, computed in one SQL statement; and which build "latest_failed" means.
import { sql, type Kysely } from 'kysely'
import { notFound } from '../lib/errors.js'
import type { Database } from './schema.js'

/** How many completed builds of the branch (this one included) the flaky test looks at. */
export const HISTORY_BUILDS = 10

export interface FailingTestRow {
  job_id: string
  suite: string
  name: string
  state: 'failure' | 'error'
  message: string | null
  stack: string | null
  /** failing results of the job in all (the rows are its first `perJob`) */
  failing_count: number
  /** times the outcome changed between consecutive builds of the history */
  changes: number
  /** the outcome per history build, oldest first: F failed, . passed */
  history: string
  /** it failed in the branch's previous completed build */
  failed_before: boolean
  verdict: 'new' | 'known' | 'flaky'
}

/** The branch of a build's commit (InfraBox keys commits by repository and sha; one project's repositories). */
export const branchOf = (buildAlias: string) => sql<string | null>`(
  SELECT c.branch FROM "commit" c
  WHERE c.id = ${sql.ref(`${buildAlias}.commit_id`)} AND c.project_id = ${sql.ref(`${buildAlias}.project_id`)}
    AND c.repository_id IN (SELECT r.id FROM repository r WHERE r.project_id = ${sql.ref(`${buildAlias}.project_id`)})
  ORDER BY c.repository_id LIMIT 1)`

/**
 * The history: the build itself and the newest completed builds (no job queued, scheduled or running) of the same
 * branch before it, HISTORY_BUILDS in all, walked newest first through the (project_id, build_number,
 * restart_counter) index. A build without a commit (upload projects) has the branch '' here.
 */
const historyCte = (projectId: string, buildId: string) => sql`
  cur AS (
    SELECT b.id, b.build_number, b.restart_counter, coalesce(${branchOf('b')}, '') AS branch
    FROM build b WHERE b.id = ${buildId} AND b.project_id = ${projectId}
  ),
  hist AS (
    SELECT b.id, b.build_number, b.restart_counter
    FROM build b, cur
    WHERE b.project_id = ${projectId}
      AND (b.build_number, b.restart_counter) <= (cur.build_number, cur.restart_counter)
      AND coalesce(${branchOf('b')}, '') = cur.branch
      AND (b.id = cur.id OR NOT EXISTS (
        SELECT 1 FROM job j WHERE j.build_id = b.id AND j.project_id = ${projectId} AND j.state IN ('queued', 'scheduled', 'running')))
    ORDER BY b.build_number DESC, b.restart_counter DESC
    LIMIT ${HISTORY_BUILDS}
  ),
  prev AS (
    SELECT h.id FROM hist h, cur WHERE h.id <> cur.id ORDER BY h.build_number DESC, h.restart_counter DESC LIMIT 1
  )`

/**
 * The failing results (failure or error) of the given jobs, the first `perJob` of each by suite and name, each with
 * its verdict: flaky when its outcome (failed or passed; skipped and absent runs left out) changed at least twice
 * over the history, else known when it failed in the previous completed build of the branch, else new. One
 * statement: the history is a CTE, the outcomes an aggregate per (test, build); no build is loaded into the gateway.
 */
export async function failingTests (db: Kysely<Database>, projectId: string, buildId: string, jobIds: readonly string[], perJob: number): Promise<FailingTestRow[]> {
  if (jobIds.length === 0) return []
  const { rows } = await sql<Omit<FailingTestRow, 'verdict'>>`
    WITH ${historyCte(projectId, buildId)},
    failing AS (
      SELECT tr.job_id, tr.suite, tr.name, tr.state::text AS state, tr.message, tr.stack,
        row_number() OVER (PARTITION BY tr.job_id ORDER BY tr.suite, tr.name, tr.id) AS rn,
        count(*) OVER (PARTITION BY tr.job_id) AS failing_count
      FROM test_run tr
      WHERE tr.job_id = ANY(${sql.val(jobIds)}::uuid[]) AND tr.project_id = ${projectId} AND tr.state IN ('failure', 'error')
    ),
    shown AS (SELECT * FROM failing WHERE rn <= ${perJob}),
    outcome AS (
      SELECT t.suite, t.name, h.build_number, h.restart_counter, bool_or(tr.state IN ('failure', 'error')) AS failed
      FROM (SELECT DISTINCT suite, name FROM shown) t
      CROSS JOIN hist h
      JOIN job j ON j.build_id = h.id AND j.project_id = ${projectId}
      JOIN test_run tr ON tr.job_id = j.id AND tr.project_id = ${projectId} AND tr.suite = t.suite AND tr.name = t.name AND tr.state <> 'skipped'
      GROUP BY t.suite, t.name, h.build_number, h.restart_counter
    ),
    steps AS (
      SELECT o.*, lag(o.failed) OVER (PARTITION BY o.suite, o.name ORDER BY o.build_number, o.restart_counter) AS before
      FROM outcome o
    ),
    verdict AS (
      SELECT suite, name,
        count(*) FILTER (WHERE before IS NOT NULL AND before <> failed)::int AS changes,
        string_agg(CASE WHEN failed THEN 'F' ELSE '.' END, '' ORDER BY build_number, restart_counter) AS history
      FROM steps GROUP BY suite, name
    )
    SELECT s.job_id, s.suite, s.name, s.state, s.message, s.stack, s.failing_count::int AS failing_count,
      coalesce(v.changes, 0) AS changes, coalesce(v.history, '') AS history,
      EXISTS (
        SELECT 1 FROM prev JOIN job j ON j.build_id = prev.id AND j.project_id = ${projectId}
        JOIN test_run tr ON tr.job_id = j.id AND tr.project_id = ${projectId} AND tr.suite = s.suite AND tr.name = s.name
        WHERE tr.state IN ('failure', 'error')
      ) AS failed_before
    FROM shown s LEFT JOIN verdict v ON v.suite = s.suite AND v.name = s.name
    ORDER BY s.job_id, s.rn`.execute(db)
  return rows.map(r => ({ ...r, verdict: r.changes >= 2 ? 'flaky' : r.failed_before ? 'known' : 'new' }))
}

/** The newest build of the project (of `branch` when given) whose status is failure or error; 404 when there is none. */
export async function latestFailedBuild (db: Kysely<Database>, projectId: string, branch: string | undefined): Promise<string> {
  const { rows } = await sql<{ id: string }>`
    SELECT b.id FROM build b
    WHERE b.project_id = ${projectId}
      AND ${branch === undefined ? sql`true` : sql`${branchOf('b')} = ${branch}`}
      AND EXISTS (SELECT 1 FROM job j WHERE j.build_id = b.id AND j.project_id = ${projectId} AND j.state IN ('failure', 'error'))
      AND NOT EXISTS (SELECT 1 FROM job j WHERE j.build_id = b.id AND j.project_id = ${projectId} AND j.state IN ('queued', 'scheduled', 'running'))
    ORDER BY b.build_number DESC, b.restart_counter DESC
    LIMIT 1`.execute(db)
  const found = rows[0]
  if (found === undefined) throw notFound(`no failed build in project ${projectId}${branch === undefined ? '' : ` on branch ${branch}`}`)
  return found.id
}
