// Starts a build exactly as InfraBox's own trigger does: the build row plus its queued "Create Jobs" job, in one locked transaction.
import { randomUUID } from 'node:crypto'
import { sql, type Kysely, type Transaction } from 'kysely'
import { badRequest, conflict, unprocessable } from '../lib/errors.js'
import type { TriggerBody, TriggerResult } from '../schemas/data.js'
import type { Database, ProjectType } from './schema.js'
import { SCHEMA_47_COLUMNS, type InfraboxColumns } from './infrabox-version.js'

export interface TriggerProject {
  id: string
  type: ProjectType
}

/**
 * What InfraBox's scheduler needs to expand a build (INFRABOX_SCHEMA.md, "Trigger"): it watches
 * `job`, so without this job the build would never run (defect 7).
 */
export const CREATE_JOBS_DEFINITION = {
  build_only: false,
  infrabox_file: 'infrabox.json',
  resources: { limits: { cpu: 0.5, memory: 1024 } }
} as const

/**
 * Project types whose builds are of a commit. `test` is InfraBox's own test type: it has a
 * repository and commits like a git project, so it is resolved like one (InfraBox's trigger
 * refuses it outright; the Python MCP layer wrongly treated it as an upload project).
 */
const GIT_TYPES: readonly ProjectType[] = ['github', 'gerrit', 'test']

const SHA = /^[0-9a-f]{7,64}$/

type Source =
  | { kind: 'git', commitId: string, cloneUrl: string }
  | { kind: 'upload', sourceUploadId: string }

/**
 * Queues a new build of the project with source 'mcp' and returns its id and number.
 * Git projects (github, gerrit, test): `sha` names a commit row of the project (full, or a prefix of
 * 7+ hex digits matching exactly one commit; with `branch` too, the commit must be on it), else the
 * newest commit of `branch` by timestamp; neither given or nothing found is 422.
 * Upload projects rebuild the newest build's upload (409 when there is none); branch/sha there are 422.
 * The build number is max + 1 under `LOCK TABLE build IN EXCLUSIVE MODE` (what InfraBox locks), so
 * concurrent triggers, ours or InfraBox's, get distinct numbers. Writes no audit row: the audit
 * plugin does, on its own connection, after this transaction ends (defect 3).
 */
export async function triggerBuild (db: Kysely<Database>, project: TriggerProject, body: TriggerBody, columns: InfraboxColumns = SCHEMA_47_COLUMNS): Promise<TriggerResult> {
  return await db.transaction().execute(async trx => await triggerBuildIn(trx, project, body, columns))
}

/** triggerBuild inside a transaction the caller holds (an idempotent trigger records its key in the same one). */
export async function triggerBuildIn (trx: Transaction<Database>, project: TriggerProject, body: TriggerBody, columns: InfraboxColumns = SCHEMA_47_COLUMNS): Promise<TriggerResult> {
  // Resolved before the lock: the lock blocks every build insert in InfraBox, so hold it briefly.
  const source = await resolveSource(trx, project, body)

  await sql`LOCK TABLE build IN EXCLUSIVE MODE`.execute(trx)
  const { last } = await trx
    .selectFrom('build')
    .select(eb => eb.fn.max('build.build_number').as('last'))
    .where('build.project_id', '=', project.id)
    .executeTakeFirstOrThrow()
  const buildNumber = (last ?? 0) + 1
  const buildId = randomUUID()

  await trx.insertInto('build').values({
    id: buildId,
    build_number: buildNumber,
    project_id: project.id,
    restart_counter: 1,
    commit_id: source.kind === 'git' ? source.commitId : null,
    source_upload_id: source.kind === 'upload' ? source.sourceUploadId : null,
    // InfraBox 00047's column; an older InfraBox has none and the insert leaves it out
    ...(columns.buildSource ? { source: 'mcp' } : {})
  }).execute()

  const env = body.env !== undefined && Object.keys(body.env).length > 0 ? body.env : null
  await trx.insertInto('job').values({
    state: 'queued',
    type: 'create_job_matrix',
    name: 'Create Jobs',
    build_id: buildId,
    project_id: project.id,
    dockerfile: '',
    definition: JSON.stringify(CREATE_JOBS_DEFINITION),
    env_var: env === null ? null : JSON.stringify(env),
    repo: source.kind === 'git'
      ? JSON.stringify({ commit: source.commitId, clone_url: source.cloneUrl, clone_all: true })
      : null
  }).execute()

  return { build: { id: buildId, build_number: buildNumber, restart_counter: 1 } }
}

async function resolveSource (trx: Transaction<Database>, project: TriggerProject, body: TriggerBody): Promise<Source> {
  if (GIT_TYPES.includes(project.type)) return await resolveCommit(trx, project.id, body)
  if (body.branch !== undefined || body.sha !== undefined) {
    throw unprocessable('upload projects rebuild their newest upload; branch and sha do not apply')
  }
  return await resolveUpload(trx, project.id)
}

async function resolveCommit (trx: Transaction<Database>, projectId: string, body: TriggerBody): Promise<Source> {
  const { branch } = body
  const sha = body.sha?.toLowerCase()
  if (sha === undefined && branch === undefined) throw unprocessable('give a branch or a sha to build')
  if (sha !== undefined && !SHA.test(sha)) throw badRequest('sha must be 7 to 64 hexadecimal digits')

  let query = trx
    .selectFrom('commit')
    // The repository row the commit belongs to gives the clone URL; left join so a missing one is told apart.
    .leftJoin('repository', join => join
      .onRef('repository.id', '=', 'commit.repository_id')
      .onRef('repository.project_id', '=', 'commit.project_id'))
    .select(['commit.id', 'commit.branch', 'repository.clone_url'])
    .where('commit.project_id', '=', projectId)

  if (sha !== undefined) {
    // Hex only (checked above), so the prefix cannot carry LIKE wildcards.
    query = sha.length === 40 || sha.length === 64
      ? query.where('commit.id', '=', sha)
      : query.where('commit.id', 'like', `${sha}%`)
    const rows = await query.orderBy('commit.timestamp', 'desc').limit(20).execute()
    const ids = new Set(rows.map(r => r.id))
    if (ids.size === 0) throw unprocessable(`no commit ${sha} is known in this project`)
    if (ids.size > 1) throw unprocessable(`sha ${sha} is ambiguous: it matches ${[...ids].slice(0, 5).join(', ')}`)
    const onBranch = branch === undefined ? rows : rows.filter(r => r.branch === branch)
    const commit = onBranch[0]
    if (commit === undefined) throw unprocessable(`commit ${rows[0]?.id ?? sha} is not on branch ${branch ?? ''}`)
    return await gitSource(trx, projectId, commit)
  }

  const commit = await query
    .where('commit.branch', '=', branch ?? '')
    .orderBy('commit.timestamp', 'desc')
    .orderBy('commit.id')
    .limit(1)
    .executeTakeFirst()
  if (commit === undefined) throw unprocessable(`no commit is known on branch ${branch ?? ''}`)
  return await gitSource(trx, projectId, commit)
}

/**
 * The clone URL from the commit's repository row. InfraBox's gerrit projects store '' there (their
 * trigger builds the URL from the gerrit service's config), so fall back to the URL the project's
 * newest Create Jobs job was given; 422 when neither knows one.
 */
async function gitSource (trx: Transaction<Database>, projectId: string, commit: { id: string, clone_url: string | null }): Promise<Source> {
  if (commit.clone_url !== null && commit.clone_url !== '') return { kind: 'git', commitId: commit.id, cloneUrl: commit.clone_url }
  const previous = await trx
    .selectFrom('job')
    .select(eb => sql<string>`${eb.ref('job.repo')} ->> 'clone_url'`.as('clone_url'))
    .where('job.project_id', '=', projectId)
    .where('job.type', '=', 'create_job_matrix')
    .where(eb => eb(sql`${eb.ref('job.repo')} ->> 'clone_url'`, '<>', ''))
    .orderBy('job.created_at', 'desc')
    .limit(1)
    .executeTakeFirst()
  if (previous === undefined) throw unprocessable(`no clone URL is known for commit ${commit.id} in this project`)
  return { kind: 'git', commitId: commit.id, cloneUrl: previous.clone_url }
}

/**
 * The upload of the newest build that has one (InfraBox takes the newest build; skipping builds
 * without an upload keeps a defective earlier trigger from poisoning every later one). The upload
 * row must still exist in this project.
 */
async function resolveUpload (trx: Transaction<Database>, projectId: string): Promise<Source> {
  const row = await trx
    .selectFrom('build')
    .innerJoin('source_upload', join => join
      .onRef('source_upload.id', '=', 'build.source_upload_id')
      .onRef('source_upload.project_id', '=', 'build.project_id'))
    .select('source_upload.id')
    .where('build.project_id', '=', projectId)
    .orderBy('build.build_number', 'desc')
    .orderBy('build.restart_counter', 'desc')
    .limit(1)
    .executeTakeFirst()
  if (row === undefined) throw conflict('this upload project has no earlier upload to build; push one with infraboxcli first')
  return { kind: 'upload', sourceUploadId: row.id }
}
