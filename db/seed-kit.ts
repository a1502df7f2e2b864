// Building blocks of the demo data (db/seed.ts's fixture, db/seed-story.ts's story): fixed ids, times, jobs, artifact files.
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { sql, type InsertObject, type RawBuilder } from 'kysely'
import type { ArchiveEntry, Database, JobState, JobType } from './schema.js'

/** Readable fixed UUIDs: group and number show in the last block, e.g. 00000000-0000-4000-8000-000300000002. */
export const fixedId = (group: number, n: number): string =>
  `00000000-0000-4000-8000-${group.toString(16).padStart(4, '0')}${n.toString(16).padStart(8, '0')}`

/** A deterministic 40-hex sha per name. */
export const shaOf = (name: string): string => createHash('sha1').update(name).digest('hex')

export interface SeedOptions {
  /** When set, artifact bytes are written under `<artifactRoot>/archive/<job_id>/<filename>`. */
  artifactRoot?: string | undefined
}

const BASE = Date.UTC(2024, 0, 1, 0, 0, 0)
export const at = (hours: number, minutes = 0): Date => new Date(BASE + hours * 3_600_000 + minutes * 60_000)

/** A jsonb[] value: InfraBox's `job.archive`. */
function archive (entries: ArchiveEntry[]): RawBuilder<string> {
  return sql<string>`array(select jsonb_array_elements(${JSON.stringify(entries)}::jsonb))`
}

const DONE: ReadonlySet<JobState> = new Set(['finished', 'failure', 'error', 'killed', 'unstable', 'skipped'])

export interface JobSpec {
  id: string
  name: string
  state: JobState
  type?: JobType
  message?: string
  console?: string
  archive?: ArchiveEntry[]
}

/** A build's jobs: a finished "Create Jobs" first, then the given ones depending on it, a minute apart. */
export function jobsFor (projectId: string, buildId: string, hour: number, create: string, specs: JobSpec[]): Array<InsertObject<Database, 'job'>> {
  const createJob: InsertObject<Database, 'job'> = {
    id: create,
    state: 'finished',
    type: 'create_job_matrix',
    name: 'Create Jobs',
    build_id: buildId,
    project_id: projectId,
    dockerfile: '',
    created_at: at(hour),
    start_date: at(hour),
    end_date: at(hour, 1),
    definition: JSON.stringify({ build_only: false, infrabox_file: 'infrabox.json', resources: { limits: { cpu: 0.5, memory: 1024 } } }),
    console: '00:00:00|Parsing infrabox.json\n'
  }
  return [createJob, ...specs.map((s, i): InsertObject<Database, 'job'> => ({
    id: s.id,
    state: s.state,
    type: s.type ?? 'run_project_container',
    name: s.name,
    build_id: buildId,
    project_id: projectId,
    dockerfile: 'infrabox/Dockerfile',
    created_at: at(hour, 2 + i),
    start_date: s.state === 'queued' || s.state === 'scheduled' ? null : at(hour, 3 + i),
    end_date: DONE.has(s.state) ? at(hour, 10 + i) : null,
    message: s.message ?? null,
    console: s.console ?? null,
    archive: s.archive === undefined ? null : archive(s.archive),
    dependencies: JSON.stringify([{ job: 'Create Jobs', 'job-id': create, on: ['finished'] }]),
    definition: JSON.stringify({ name: s.name, type: 'docker', docker_file: 'infrabox/Dockerfile' })
  }))]
}

export async function writeArtifact (root: string, jobId: string, filename: string, content: Buffer): Promise<void> {
  const dir = path.join(root, 'archive', jobId)
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, filename), content)
}
