// Reading one artifact: it must be listed in job.archive, then its bytes come from the store (REST download and MCP get_artifact).
import type { ArtifactObject } from './artifact-store.js'
import { artifactKey } from './artifact-store.js'
import { findArtifact } from '../db/artifacts.js'
import type { Artifact } from '../schemas/data.js'
import type { GatewayServices } from './services.js'

export interface OpenedArtifact { entry: Artifact, object: ArtifactObject }

export async function openArtifact (services: GatewayServices, projectId: string, jobId: string, filename: string): Promise<OpenedArtifact> {
  const key = artifactKey(jobId, filename) // 400 on a name that could climb out, before any query
  const entry = await findArtifact(services.db, projectId, jobId, filename)
  return { entry, object: await services.artifacts.open(key) }
}

/** RFC 6266/5987 attachment header that survives any filename. */
export function contentDisposition (filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_')
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`
}
