// Builds with a job graph of a test's choosing, for the tests of acting on builds (SPEC §14), and a lock held open to make two requests meet.
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { sql, type Kysely } from 'kysely'
import { FIXTURE } from '../../db/seed.js'
import type { Database, JobState, JobType } from '../../db/schema.js'

export interface JobSpec { name: string, state: JobState, type?: JobType, deps?: string[] }

let nextNumber = 100

/**
 * A build of the github project (or `project`) on commit main-1: a finished Create Jobs job (unless
 * `createJobs: false`), then `specs`, each depending on the jobs named in `deps` (default Create Jobs), a minute apart.
 */
export async function makeBuild (db: Kysely<Database>, specs: JobSpec[], opts: { createJobs?: boolean, project?: string } = {}) {
  const projectId = opts.project ?? FIXTURE.projects.github
  const buildId = randomUUID()
  const buildNumber = nextNumber++
  await db.insertInto('build').values({ id: buildId, build_number: buildNumber, project_id: projectId, restart_counter: 1, commit_id: FIXTURE.commits.main1 }).execute()
  const ids: Record<string, string> = {}
  let minute = 0
  const at = (): Date => new Date(Date.UTC(2025, 0, 1, 0, minute++))
  if (opts.createJobs !== false) {
    ids['Create Jobs'] = randomUUID()
    await db.insertInto('job').values({
      id: ids['Create Jobs'],
      state: 'finished',
      type: 'create_job_matrix',
      name: 'Create Jobs',
      build_id: buildId,
      project_id: projectId,
      dockerfile: '',
      created_at: at(),
      env_var: JSON.stringify({ GREETING: 'hi' }),
      repo: JSON.stringify({ commit: FIXTURE.commits.main1, clone_url: 'https://example.invalid/demo.git', clone_all: true }),
      definition: JSON.stringify({ build_only: false, infrabox_file: 'infrabox.json', resources: { limits: { cpu: 0.5, memory: 1024 } } })
    }).execute()
  }
  for (const spec of specs) {
    const id = randomUUID()
    ids[spec.name] = id
    const deps = (spec.deps ?? ['Create Jobs']).map(name => ({ job: name, 'job-id': ids[name], on: ['finished'] }))
    await db.insertInto('job').values({
      id,
      state: spec.state,
      type: spec.type ?? 'run_project_container',
      name: spec.name,
      build_id: buildId,
      project_id: projectId,
      dockerfile: 'infrabox/Dockerfile',
      created_at: at(),
      dependencies: JSON.stringify(deps),
      definition: JSON.stringify({ name: spec.name, type: 'docker' }),
      env_var: JSON.stringify({ JOB: spec.name }),
      build_arg: JSON.stringify({ ARG: '1' }),
      cluster_name: 'master',
      console: 'old log'
    }).execute()
  }
  /** the id of a job by name ('' for an unknown one, which no query matches) */
  const id = (name: string): string => ids[name] ?? ''
  return { buildId, buildNumber, ids, id }
}

/** A second connection holding what `statement` locks in an open transaction until release(): two requests then meet at that lock. */
export async function holdLock (url: string, statement: string, params: unknown[]): Promise<{ release: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query('BEGIN')
  await client.query(statement, params)
  return { release: async () => { await client.query('COMMIT'); await client.end() } }
}

/** Waits until `n` backends of the database wait on a lock (bounded: about 10 s). */
export async function lockWaiters (db: Kysely<Database>, n: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(db)
    if ((rows[0]?.n ?? 0) >= n) return
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  throw new Error(`never saw ${n} lock waiters`)
}
