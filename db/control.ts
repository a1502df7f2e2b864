// Acting on builds as InfraBox's own API does (SPEC §14): restart a build, restart/rerun/retry jobs, abort; each one transaction with compare-and-set.
import { randomUUID } from 'node:crypto'
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely'
import { conflict, notFound } from '../lib/errors.js'
import type { AbortResult, RestartedBuild, RestartedJob, RestartedJobs } from '../schemas/control.js'
import type { Database, JobState, JobTable, JobType, Json } from './schema.js'
import { SCHEMA_47_COLUMNS, type InfraboxColumns } from './infrabox-version.js'

/** Who acts: the token's owner (InfraBox's abort.user_id, the console note) and the token, named in that note. */
export interface Actor {
  userId: string
  tokenId: string
}

/** Job types InfraBox restarts (its JobRestart refuses the others, Create Jobs and wait among them). */
const RESTARTABLE_TYPES: readonly JobType[] = ['run_project_container', 'run_docker_compose']
/** States a job may be restarted from (InfraBox's restart_states). */
const RESTART_STATES: readonly JobState[] = ['finished', 'failure', 'error', 'killed', 'unstable']
/** States a job depending on a restarted one may be in: it is cloned too (InfraBox also accepts these two). */
const DEPENDENT_STATES: readonly JobState[] = [...RESTART_STATES, 'skipped', 'queued']
/** What retry_failed_jobs retries. */
const FAILED_STATES: readonly JobState[] = ['failure', 'error', 'killed', 'unstable']
/** What an abort reaches: jobs the scheduler has not finished. */
const ACTIVE_STATES = ['queued', 'scheduled', 'running'] as const
type ActiveState = typeof ACTIVE_STATES[number]
const isActive = (state: JobState): state is ActiveState => (ACTIVE_STATES as readonly JobState[]).includes(state)

type JobRow = Pick<Selectable<JobTable>, 'id' | 'name' | 'type' | 'state' | 'dependencies' | 'restarted'>

/** One entry of InfraBox's `job.dependencies`: `{"job": name, "job-id": uuid, "on": [states]}` (other keys kept as they are). */
type Dependency = Record<string, Json>

function dependencyEntries (value: Json | null): Dependency[] {
  if (!Array.isArray(value)) return []
  return value.filter((entry): entry is Dependency => typeof entry === 'object' && entry !== null && !Array.isArray(entry))
}

const dependsOn = (job: JobRow, ids: ReadonlySet<string>): boolean =>
  dependencyEntries(job.dependencies).some(dep => typeof dep['job-id'] === 'string' && ids.has(dep['job-id']))

/**
 * The clone's name, as InfraBox names it: `.1` appended to the last path segment, or its trailing `.N` raised
 * by one (`build/test` → `build/test.1` → `build/test.2`). InfraBox's own regex is unanchored and so turns
 * `v1.0-rc` into `v1.1`; here only a trailing `.N` counts.
 */
export function restartedName (name: string): string {
  const slash = name.lastIndexOf('/')
  const front = name.slice(0, slash + 1)
  const last = name.slice(slash + 1)
  const m = /^(.*)\.(\d+)$/.exec(last)
  return m === null ? `${name}.1` : `${front}${m[1] ?? ''}.${Number(m[2]) + 1}`
}

async function actorLabel (trx: Transaction<Database>, actor: Actor): Promise<string> {
  const user = await trx.selectFrom('user').select('username').where('id', '=', actor.userId).executeTakeFirst()
  return `${user?.username ?? actor.userId} via MCP token ${actor.tokenId}`
}

/**
 * The build, locked for this transaction (FOR NO KEY UPDATE), so the gateway's restarts, retries and aborts
 * of one build run one after the other: an abort sees the clones a restart just queued, or the restart comes
 * after it. 404 when the build is not the project's.
 */
async function lockBuild (trx: Transaction<Database>, projectId: string, buildId: string): Promise<void> {
  const build = await trx.selectFrom('build').select('id')
    .where('id', '=', buildId).where('project_id', '=', projectId)
    .forNoKeyUpdate()
    .executeTakeFirst()
  if (build === undefined) throw notFound('no such build in this project')
}

async function buildJobs (trx: Transaction<Database>, projectId: string, buildId: string): Promise<JobRow[]> {
  return await trx.selectFrom('job')
    .select(['id', 'name', 'type', 'state', 'dependencies', 'restarted'])
    .where('build_id', '=', buildId).where('project_id', '=', projectId)
    .orderBy('created_at').orderBy('id')
    .execute()
}

/** The job's build, then the build locked and its jobs read under the lock. 404 when the job is not the project's. */
async function lockJobBuild (trx: Transaction<Database>, projectId: string, jobId: string): Promise<{ buildId: string, jobs: JobRow[], job: JobRow }> {
  const found = await trx.selectFrom('job').select('build_id')
    .where('id', '=', jobId).where('project_id', '=', projectId)
    .executeTakeFirst()
  if (found === undefined) throw notFound('no such job in this project')
  await lockBuild(trx, projectId, found.build_id)
  const jobs = await buildJobs(trx, projectId, found.build_id)
  const job = jobs.find(j => j.id === jobId)
  if (job === undefined) throw notFound('no such job in this project')
  return { buildId: found.build_id, jobs, job }
}

/** Refuses what InfraBox's JobRestart refuses, as 409s that say why. */
function checkRestartable (job: JobRow): void {
  if (!RESTARTABLE_TYPES.includes(job.type)) {
    throw conflict(job.type === 'create_job_matrix'
      ? 'the Create Jobs job cannot be restarted; restart the whole build (restart_build) instead'
      : `a job of type ${job.type} cannot be restarted`)
  }
  if (job.restarted === true) throw conflict(`job ${job.name} has already been restarted; act on its newest clone instead`)
  if (!RESTART_STATES.includes(job.state)) {
    throw conflict(`job ${job.name} is ${job.state}; only a job in ${RESTART_STATES.join(', ')} can be restarted (abort it first)`)
  }
}

/**
 * The roots and every job depending on them, transitively, leaving out jobs already restarted (InfraBox's fix
 * for duplicate clones, its issue 227): the roots first, then each dependent after what it depends on.
 */
function withDependents (jobs: readonly JobRow[], roots: readonly JobRow[]): JobRow[] {
  const found = [...roots]
  const ids = new Set(roots.map(j => j.id))
  for (let grown = true; grown;) {
    grown = false
    for (const job of jobs) {
      if (ids.has(job.id) || job.restarted === true || !dependsOn(job, ids)) continue
      ids.add(job.id)
      found.push(job)
      grown = true
    }
  }
  return found
}

function checkDependents (closure: readonly JobRow[]): void {
  const busy = closure.find(j => !DEPENDENT_STATES.includes(j.state))
  if (busy !== undefined) throw conflict(`job ${busy.name}, which depends on the job restarted, is still ${busy.state}`)
}

/** Ids and names of the clones, keyed by the original's id. */
type CloneMap = ReadonlyMap<string, { id: string, name: string }>

/** Dependencies with every entry naming a cloned job pointed at its clone (name and id), as InfraBox rewires them. */
function rewired (value: Json | null, clones: CloneMap): Json | null {
  if (!Array.isArray(value)) return value
  return value.map(entry => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return entry
    const target = typeof entry['job-id'] === 'string' ? clones.get(entry['job-id']) : undefined
    return target === undefined ? entry : { ...entry, job: target.name, 'job-id': target.id }
  })
}

/**
 * Marks `originals` restarted by compare-and-set (each still unrestarted and in a state it may be cloned from),
 * inserts their clones as queued jobs with rewired dependencies and a console note, and, for a rerun, points
 * the `rewire` jobs (dependents left in place) at the clone. A lost race (another restart, ours or InfraBox's,
 * marked one first) is a 409 and the transaction rolls back.
 */
async function cloneJobs (trx: Transaction<Database>, actor: Actor, buildId: string, originals: readonly JobRow[], rewire: readonly JobRow[] = []): Promise<RestartedJobs> {
  const ids = originals.map(j => j.id)
  const marked = await trx.updateTable('job')
    .set({ restarted: true })
    .where('id', 'in', ids)
    .where(eb => eb.or([eb('restarted', 'is', null), eb('restarted', '=', false)]))
    .where('state', 'in', DEPENDENT_STATES)
    .returning('id')
    .execute()
  if (marked.length !== ids.length) throw conflict('another restart of these jobs came first; read the build again (get_build)')

  const clones: CloneMap = new Map(originals.map(j => [j.id, { id: randomUUID(), name: restartedName(j.name) }]))
  const rows = await trx.selectFrom('job')
    .select(['id', 'build_id', 'type', 'dockerfile', 'name', 'project_id', 'dependencies', 'repo', 'env_var', 'env_var_ref',
      'build_arg', 'deployment', 'definition', 'cluster_name'])
    .where('id', 'in', ids)
    .execute()
  const byId = new Map(rows.map(r => [r.id, r]))
  const json = (value: Json | null): string | null => value === null ? null : JSON.stringify(value)
  const note = `Job restarted by ${await actorLabel(trx, actor)}\n`

  const restarted: RestartedJob[] = []
  for (const original of originals) {
    const row = byId.get(original.id)
    const clone = clones.get(original.id)
    if (row === undefined || clone === undefined) throw new Error(`job ${original.id} vanished inside its own transaction`)
    await trx.insertInto('job').values({
      id: clone.id,
      state: 'queued',
      build_id: row.build_id,
      type: row.type,
      dockerfile: row.dockerfile,
      name: clone.name,
      project_id: row.project_id,
      dependencies: json(rewired(row.dependencies, clones)),
      repo: json(row.repo),
      env_var: json(row.env_var),
      env_var_ref: json(row.env_var_ref),
      build_arg: json(row.build_arg),
      deployment: json(row.deployment),
      definition: JSON.stringify(row.definition),
      cluster_name: row.cluster_name,
      restarted: false
    }).execute()
    await trx.insertInto('console').values({ job_id: clone.id, output: note }).execute()
    restarted.push({ id: clone.id, name: clone.name, state: 'queued', restarted_from: { id: original.id, name: original.name, state: original.state } })
  }

  for (const job of rewire) {
    await trx.updateTable('job').set({ dependencies: json(rewired(job.dependencies, clones)) }).where('id', '=', job.id).execute()
  }
  return { build_id: buildId, jobs: restarted }
}

/**
 * restart_build: a new build of the same commit, number and upload with restart_counter = the number's highest
 * + 1, and a queued Create Jobs job cloned from the old one's (repo, env_var, definition). The counter is read
 * under InfraBox's `LOCK TABLE build IN EXCLUSIVE MODE`, so concurrent restarts and triggers get distinct rows.
 * A build without a Create Jobs job (the Python layer's defect 7) has nothing to clone: 409.
 */
export async function restartBuild (db: Kysely<Database>, actor: Actor, projectId: string, buildId: string, columns: InfraboxColumns = SCHEMA_47_COLUMNS): Promise<RestartedBuild> {
  return await db.transaction().execute(async trx => {
    const old = await trx.selectFrom('build')
      .select(['commit_id', 'build_number', 'source_upload_id'])
      .where('id', '=', buildId).where('project_id', '=', projectId)
      .executeTakeFirst()
    if (old === undefined) throw notFound('no such build in this project')
    const create = await trx.selectFrom('job')
      .select(['repo', 'env_var', 'definition'])
      .where('build_id', '=', buildId).where('project_id', '=', projectId)
      .where('name', '=', 'Create Jobs').where('type', '=', 'create_job_matrix')
      .orderBy('created_at').limit(1)
      .executeTakeFirst()
    if (create === undefined) throw conflict('this build has no Create Jobs job to restart from; trigger a new build (trigger_build) instead')

    await sql`LOCK TABLE build IN EXCLUSIVE MODE`.execute(trx)
    const { last } = await trx.selectFrom('build')
      .select(eb => eb.fn.max('restart_counter').as('last'))
      .where('project_id', '=', projectId).where('build_number', '=', old.build_number)
      .executeTakeFirstOrThrow()
    const restartCounter = (last ?? 0) + 1
    const newId = randomUUID()
    await trx.insertInto('build').values({
      id: newId,
      commit_id: old.commit_id,
      build_number: old.build_number,
      project_id: projectId,
      restart_counter: restartCounter,
      source_upload_id: old.source_upload_id,
      // InfraBox 00047's column; an older InfraBox has none and the insert leaves it out
      ...(columns.buildSource ? { source: 'mcp' } : {})
    }).execute()
    const jobId = randomUUID()
    await trx.insertInto('job').values({
      id: jobId,
      state: 'queued',
      build_id: newId,
      type: 'create_job_matrix',
      name: 'Create Jobs',
      project_id: projectId,
      dockerfile: '',
      repo: create.repo === null ? null : JSON.stringify(create.repo),
      env_var: create.env_var === null ? null : JSON.stringify(create.env_var),
      definition: JSON.stringify(create.definition),
      cluster_name: null
    }).execute()
    await trx.insertInto('console').values({ job_id: jobId, output: `Build restarted by ${await actorLabel(trx, actor)}\n` }).execute()
    return { build: { id: newId, build_number: old.build_number, restart_counter: restartCounter } }
  })
}

/** restart_job: the job and every job depending on it (transitively) cloned as queued jobs; the originals marked restarted. */
export async function restartJob (db: Kysely<Database>, actor: Actor, projectId: string, jobId: string): Promise<RestartedJobs> {
  return await db.transaction().execute(async trx => {
    const { buildId, jobs, job } = await lockJobBuild(trx, projectId, jobId)
    checkRestartable(job)
    const closure = withDependents(jobs, [job])
    checkDependents(closure)
    return await cloneJobs(trx, actor, buildId, closure)
  })
}

/**
 * rerun_job: the job alone cloned (InfraBox's JobRerun); the jobs depending on it stay, their dependencies
 * pointed at the clone. Refused while a job it depends on is still queued, scheduled or running.
 */
export async function rerunJob (db: Kysely<Database>, actor: Actor, projectId: string, jobId: string): Promise<RestartedJobs> {
  return await db.transaction().execute(async trx => {
    const { buildId, jobs, job } = await lockJobBuild(trx, projectId, jobId)
    checkRestartable(job)
    const parentIds = new Set(dependencyEntries(job.dependencies).flatMap(dep => typeof dep['job-id'] === 'string' ? [dep['job-id']] : []))
    const busyParent = jobs.find(j => parentIds.has(j.id) && isActive(j.state))
    if (busyParent !== undefined) throw conflict(`job ${job.name} depends on ${busyParent.name}, which is still ${busyParent.state}`)
    const closure = withDependents(jobs, [job])
    checkDependents(closure)
    const own = new Set([job.id])
    return await cloneJobs(trx, actor, buildId, [job], jobs.filter(j => j.id !== job.id && j.restarted !== true && dependsOn(j, own)))
  })
}

/**
 * retry_failed_jobs: restart_job for every restartable job of the build in failure, error, killed or unstable
 * (not yet restarted), in one transaction; a job reached from two failed ones is cloned once.
 */
export async function retryFailedJobs (db: Kysely<Database>, actor: Actor, projectId: string, buildId: string): Promise<RestartedJobs> {
  return await db.transaction().execute(async trx => {
    await lockBuild(trx, projectId, buildId)
    const jobs = await buildJobs(trx, projectId, buildId)
    const failed = jobs.filter(j => FAILED_STATES.includes(j.state) && j.restarted !== true)
    const roots = failed.filter(j => RESTARTABLE_TYPES.includes(j.type))
    if (roots.length === 0) {
      const create = failed.find(j => j.type === 'create_job_matrix')
      throw conflict(create !== undefined
        ? `only the Create Jobs job failed (${create.state}); restart the whole build (restart_build) instead`
        : 'no job of this build is in failure, error, killed or unstable (jobs already restarted do not count)')
    }
    const closure = withDependents(jobs, roots)
    checkDependents(closure)
    return await cloneJobs(trx, actor, buildId, closure)
  })
}

/**
 * Asks InfraBox's scheduler to kill the build's (or one job's) queued, scheduled and running jobs:
 * `INSERT INTO abort (job_id, user_id)`, once per job (a second request while one waits adds no row).
 */
async function requestAborts (trx: Transaction<Database>, actor: Actor, buildId: string, targets: readonly JobRow[]): Promise<AbortResult> {
  const active = targets.filter((j): j is JobRow & { state: ActiveState } => isActive(j.state))
  if (active.length > 0) {
    const pending = await trx.selectFrom('abort').select('job_id').where('job_id', 'in', active.map(j => j.id)).execute()
    const known = new Set(pending.map(r => r.job_id))
    const fresh = active.filter(j => !known.has(j.id))
    if (fresh.length > 0) await trx.insertInto('abort').values(fresh.map(j => ({ job_id: j.id, user_id: actor.userId }))).execute()
  }
  return { build_id: buildId, aborted: active.map(j => ({ id: j.id, name: j.name, state: j.state })) }
}

/** abort_build: every job of the build still queued, scheduled or running (none: an empty list, nothing written). */
export async function abortBuild (db: Kysely<Database>, actor: Actor, projectId: string, buildId: string): Promise<AbortResult> {
  return await db.transaction().execute(async trx => {
    await lockBuild(trx, projectId, buildId)
    return await requestAborts(trx, actor, buildId, await buildJobs(trx, projectId, buildId))
  })
}

/** abort_job: the one job; 409 when it is no longer queued, scheduled or running. */
export async function abortJob (db: Kysely<Database>, actor: Actor, projectId: string, jobId: string): Promise<AbortResult> {
  return await db.transaction().execute(async trx => {
    const { buildId, job } = await lockJobBuild(trx, projectId, jobId)
    if (!isActive(job.state)) throw conflict(`job ${job.name} has already ended (${job.state}); there is nothing to abort`)
    return await requestAborts(trx, actor, buildId, [job])
  })
}
