// Reading one artifact: it must be listed in job.archive, then its bytes come from the store (REST download and MCP get_artifact).
import type { Readable } from 'node:stream'
import type { ArtifactObject } from './artifact-store.js'
import { artifactKey, contentTypeFor } from './artifact-store.js'
import { findArtifact } from '../db/artifacts.js'
import type { Artifact, ArtifactContent } from '../schemas/data.js'
import type { GatewayServices } from './services.js'

export interface OpenedArtifact { entry: Artifact, object: ArtifactObject }

export async function openArtifact (services: GatewayServices, projectId: string, jobId: string, filename: string): Promise<OpenedArtifact> {
  const key = artifactKey(jobId, filename) // 400 on a name that could climb out, before any query
  const entry = await findArtifact(services.db, projectId, jobId, filename)
  return { entry, object: await services.artifacts.open(key) }
}

/** The listed artifact and its stored size and type, without opening the object (HEAD: SPEC §13.12). */
export async function statArtifact (services: GatewayServices, projectId: string, jobId: string, filename: string): Promise<{ entry: Artifact, size: number, contentType?: string | undefined }> {
  const key = artifactKey(jobId, filename)
  const entry = await findArtifact(services.db, projectId, jobId, filename)
  const stat = await services.artifacts.stat(key)
  return { entry, size: stat.size, contentType: stat.contentType }
}

/** RFC 6266/5987 attachment header that survives any filename. */
export function contentDisposition (filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_')
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`
}

/** Larger text files are linked, not inlined: a model's context is the scarce resource here. */
export const INLINE_TEXT_MAX = 256 * 1024

const TEXT_TYPES = new Set(['application/json', 'application/xml', 'application/yaml', 'application/x-yaml', 'application/javascript', 'application/x-sh'])

export function isTextual (contentType: string): boolean {
  const essence = (contentType.split(';')[0] ?? '').trim().toLowerCase()
  return essence.startsWith('text/') || TEXT_TYPES.has(essence) || /\+(json|xml)$/.test(essence)
}

/** The stream as UTF-8 text, or null when it is longer than `max` bytes or not valid UTF-8; always ends the stream. */
async function readSmallText (stream: Readable, max: number): Promise<string | null> {
  const chunks: Buffer[] = []
  let total = 0
  try {
    for await (const chunk of stream) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
      total += bytes.length
      if (total > max) return null
      chunks.push(bytes)
    }
  } finally {
    stream.destroy() // an S3 body holds a socket until it is consumed or destroyed
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))
  } catch {
    return null
  }
}

/** What an agent gets for one artifact: its facts, a download link, and the text itself when it is small text. */
export async function readArtifactSummary (services: GatewayServices, projectId: string, jobId: string, filename: string, downloadUrl: string): Promise<ArtifactContent> {
  const { entry, object } = await openArtifact(services, projectId, jobId, filename)
  const contentType = object.contentType ?? contentTypeFor(entry.filename)
  const size = object.size ?? entry.size
  const small = size === null || size <= INLINE_TEXT_MAX
  const text = isTextual(contentType) && small ? await readSmallText(object.stream, INLINE_TEXT_MAX) : null
  if (text === null) object.stream.destroy()
  return { filename: entry.filename, size, content_type: contentType, download_url: downloadUrl, ...(text === null ? {} : { text }) }
}
