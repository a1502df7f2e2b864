// Artifact questions, answered from job.archive (the files a job uploaded); there is no artifact table (defect 6).
import type { Kysely } from 'kysely'
import { notFound } from '../lib/errors.js'
import { compiledShape, type Slots } from './compiled.js'
import type { Artifact, ArtifactPage } from '../schemas/data.js'
import type { Database } from './schema.js'

const archiveShape = compiledShape((db, v: Slots<{ projectId: string, jobId: string }>) => db
  .selectFrom('job')
  .select('job.archive')
  .where('job.id', '=', v.jobId)
  .where('job.project_id', '=', v.projectId))

/**
 * The job's `archive` (a jsonb[] of `{filename, size}`) as artifacts, in upload order. The array is
 * a handful of small entries, so it is read whole; entries without a string filename are skipped
 * rather than failing the answer, and a size that is not a non-negative number becomes null.
 */
async function archiveOf (db: Kysely<Database>, projectId: string, jobId: string): Promise<Artifact[]> {
  const [row] = await archiveShape.execute(db, { projectId, jobId })
  if (row === undefined) throw notFound(`job ${jobId} not found in project ${projectId}`)
  // The driver's parse of jsonb[] is checked, not trusted: InfraBox wrote these rows, not us.
  const entries: unknown = row.archive
  if (!Array.isArray(entries)) return []
  const artifacts: Artifact[] = []
  for (const raw of entries) {
    const entry: unknown = typeof raw === 'string' ? parseJson(raw) : raw
    if (typeof entry !== 'object' || entry === null || !('filename' in entry)) continue
    const { filename } = entry
    if (typeof filename !== 'string' || filename === '') continue
    const size = 'size' in entry ? entry.size : null
    artifacts.push({
      filename,
      size: typeof size === 'number' && Number.isFinite(size) && size >= 0 ? Math.trunc(size) : null
    })
  }
  return artifacts
}

function parseJson (text: string): unknown {
  try { return JSON.parse(text) } catch { return null }
}

/** The job's artifacts as a (single, complete) page; 404 when the job is not in the project. */
export async function listArtifacts (db: Kysely<Database>, projectId: string, jobId: string): Promise<ArtifactPage> {
  return { items: await archiveOf(db, projectId, jobId), next_cursor: null }
}

/**
 * The archive entry for `filename`; 404 when the job lists no such file, even if storage holds one
 * under that key (job.archive is the authority on what a job published).
 */
export async function findArtifact (db: Kysely<Database>, projectId: string, jobId: string, filename: string): Promise<Artifact> {
  const found = (await archiveOf(db, projectId, jobId)).find(a => a.filename === filename)
  if (found === undefined) throw notFound(`job ${jobId} has no artifact named ${JSON.stringify(filename)}`)
  return found
}
