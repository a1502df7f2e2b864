// The benchmark's floor: the builds list as a person would write it by hand, one parameterised statement sent with pg.
import type pg from 'pg'
import { encodeCursor } from '../lib/cursor.js'
import type { BuildPage, BuildStatus } from '../schemas/data.js'

/**
 * The first page of a project's builds, newest first, with the same output fields as listBuilds: the commit
 * joined on (sha, project) and a LATERAL aggregate of the build's jobs for created_at, finished_at and status
 * (jobs replaced by a restart's clone left out, as listBuilds does).
 * It is the baseline issue 17 measured the gateway against; it does not pick one row when two repositories
 * of a project hold the same sha (listBuilds does), which on the bench data changes nothing.
 */
export const PLAIN_BUILDS_SQL = `
SELECT b.id, b.build_number, b.restart_counter, b.commit_id, b.source, c.branch,
       j.created_at, j.finished_at, j.status
FROM build b
CROSS JOIN LATERAL (
  SELECT min(job.created_at) AS created_at,
         CASE WHEN bool_or(job.state IN ('queued', 'scheduled', 'running') AND job.restarted IS NOT TRUE) THEN NULL ELSE max(job.end_date) END AS finished_at,
         CASE WHEN bool_or(job.state IN ('queued', 'scheduled', 'running') AND job.restarted IS NOT TRUE) THEN 'running'
              WHEN bool_or(job.state = 'failure' AND job.restarted IS NOT TRUE) THEN 'failure'
              WHEN bool_or(job.state = 'error' AND job.restarted IS NOT TRUE) THEN 'error'
              WHEN bool_or(job.state = 'killed' AND job.restarted IS NOT TRUE) THEN 'killed'
              WHEN bool_or(job.state = 'unstable' AND job.restarted IS NOT TRUE) THEN 'unstable'
              ELSE 'finished' END AS status
  FROM job WHERE job.build_id = b.id AND job.project_id = b.project_id
) j
LEFT JOIN "commit" c ON c.id = b.commit_id AND c.project_id = b.project_id
WHERE b.project_id = $1
ORDER BY b.build_number DESC, b.restart_counter DESC
LIMIT $2`

interface PlainRow {
  id: string
  build_number: number
  restart_counter: number
  commit_id: string | null
  source: string | null
  branch: string | null
  created_at: Date | null
  finished_at: Date | null
  status: BuildStatus
}

const iso = (d: Date | null): string | null => d === null ? null : d.toISOString()

export async function plainBuilds (pool: pg.Pool, projectId: string, limit: number): Promise<BuildPage> {
  const { rows } = await pool.query<PlainRow>(PLAIN_BUILDS_SQL, [projectId, limit + 1])
  const items = rows.slice(0, limit).map(r => ({
    id: r.id,
    build_number: r.build_number,
    restart_counter: r.restart_counter,
    commit_sha: r.commit_id,
    branch: r.branch,
    source: r.source,
    created_at: iso(r.created_at),
    finished_at: iso(r.finished_at),
    status: r.status
  }))
  const last = items.at(-1)
  return {
    items,
    next_cursor: rows.length > limit && last !== undefined ? encodeCursor('builds', [last.build_number, last.restart_counter]) : null
  }
}
