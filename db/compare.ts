// compare_builds' questions in SQL: the last passing build of a branch, the commits between two builds, jobs and tests that changed.
import { sql, type Kysely } from 'kysely'
import type { Database, JobState } from './schema.js'
import { branchOf } from './failures.js'

/**
 * The newest build of the same branch before this one (by build number, restart counter) whose status is finished:
 * it has jobs and none is queued, scheduled, running, failure, error, killed or unstable. Walks the project's builds
 * newest first through the (project_id, build_number, restart_counter) index; null when there is none.
 */
export async function lastPassingBefore (db: Kysely<Database>, projectId: string, buildId: string): Promise<string | null> {
  const { rows } = await sql<{ id: string }>`
    WITH cur AS (
      SELECT b.build_number, b.restart_counter, coalesce(${branchOf('b')}, '') AS branch
      FROM build b WHERE b.id = ${buildId} AND b.project_id = ${projectId}
    )
    SELECT b.id FROM build b, cur
    WHERE b.project_id = ${projectId}
      AND (b.build_number, b.restart_counter) < (cur.build_number, cur.restart_counter)
      AND coalesce(${branchOf('b')}, '') = cur.branch
      AND EXISTS (SELECT 1 FROM job j WHERE j.build_id = b.id AND j.project_id = ${projectId})
      AND NOT EXISTS (SELECT 1 FROM job j WHERE j.build_id = b.id AND j.project_id = ${projectId}
        AND j.state IN ('queued', 'scheduled', 'running', 'failure', 'error', 'killed', 'unstable'))
    ORDER BY b.build_number DESC, b.restart_counter DESC
    LIMIT 1`.execute(db)
  return rows[0]?.id ?? null
}

export interface CommitRow { sha: string, message: string | null, author: string, timestamp: Date }

/**
 * Commits of the branch after the base's commit up to the build's (by commit time, oldest first), at most `limit`
 * + 1 (so the caller can tell a cut). Both builds' commits are looked up in the project's repositories.
 */
export async function commitsBetween (db: Kysely<Database>, projectId: string, baseId: string, buildId: string, branch: string, limit: number): Promise<CommitRow[]> {
  const { rows } = await sql<CommitRow>`
    WITH ends AS (
      SELECT
        (SELECT c."timestamp" FROM build b JOIN "commit" c ON c.id = b.commit_id AND c.project_id = b.project_id
          WHERE b.id = ${baseId} AND b.project_id = ${projectId} ORDER BY c.repository_id LIMIT 1) AS since,
        (SELECT c."timestamp" FROM build b JOIN "commit" c ON c.id = b.commit_id AND c.project_id = b.project_id
          WHERE b.id = ${buildId} AND b.project_id = ${projectId} ORDER BY c.repository_id LIMIT 1) AS until
    )
    SELECT c.id AS sha, c.message, c.author_name AS author, c."timestamp"
    FROM "commit" c, ends
    WHERE c.project_id = ${projectId}
      AND c.repository_id IN (SELECT r.id FROM repository r WHERE r.project_id = ${projectId})
      AND c.branch = ${branch}
      AND c."timestamp" > ends.since AND c."timestamp" <= ends.until
    ORDER BY c."timestamp", c.id
    LIMIT ${limit + 1}`.execute(db)
  return rows
}

export interface JobChange { name: string, before: JobState | null, after: JobState | null }

/** Jobs matched by name whose state differs (when several jobs of a build share a name, its newest one counts). */
export async function jobsChanged (db: Kysely<Database>, projectId: string, baseId: string, buildId: string): Promise<JobChange[]> {
  const { rows } = await sql<JobChange>`
    WITH a AS (SELECT DISTINCT ON (name) name, state FROM job WHERE build_id = ${baseId} AND project_id = ${projectId} ORDER BY name, created_at DESC, id DESC),
         b AS (SELECT DISTINCT ON (name) name, state FROM job WHERE build_id = ${buildId} AND project_id = ${projectId} ORDER BY name, created_at DESC, id DESC)
    SELECT coalesce(b.name, a.name) AS name, a.state::text AS before, b.state::text AS after
    FROM a FULL JOIN b ON a.name = b.name
    WHERE a.state IS DISTINCT FROM b.state
    ORDER BY 1`.execute(db)
  return rows
}

export interface TestChange { suite: string, name: string, now: 'failure' | 'error' | 'ok' | 'skipped' | null, then: 'failure' | 'error' | 'ok' | 'skipped' | null, message: string | null }

/**
 * Tests whose failing changed: each build's outcome per (suite, name) is failure/error when any of its results failed,
 * else ok when any passed, else skipped. Rows where exactly one side failed.
 */
export async function testsChanged (db: Kysely<Database>, projectId: string, baseId: string, buildId: string): Promise<TestChange[]> {
  const outcome = (id: string) => sql`
    SELECT tr.suite, tr.name,
      CASE WHEN bool_or(tr.state = 'failure') THEN 'failure' WHEN bool_or(tr.state = 'error') THEN 'error'
           WHEN bool_or(tr.state = 'ok') THEN 'ok' ELSE 'skipped' END AS outcome,
      (array_agg(tr.message ORDER BY tr.id) FILTER (WHERE tr.state IN ('failure', 'error')))[1] AS message
    FROM job j JOIN test_run tr ON tr.job_id = j.id AND tr.project_id = ${projectId}
    WHERE j.build_id = ${id} AND j.project_id = ${projectId}
    GROUP BY tr.suite, tr.name`
  const { rows } = await sql<TestChange>`
    WITH a AS (${outcome(baseId)}), b AS (${outcome(buildId)})
    SELECT coalesce(b.suite, a.suite) AS suite, coalesce(b.name, a.name) AS name, b.outcome AS now, a.outcome AS then, b.message
    FROM a FULL JOIN b ON a.suite = b.suite AND a.name = b.name
    WHERE (coalesce(b.outcome, '') IN ('failure', 'error')) <> (coalesce(a.outcome, '') IN ('failure', 'error'))
    ORDER BY 1, 2`.execute(db)
  return rows
}
