// The get_artifact tool: a small text file comes back inline, anything else as a resource_link to the REST download.
import type { Readable } from 'node:stream'
import { Type } from '@fastify/type-provider-typebox'
import type { ContentBlock } from '@modelcontextprotocol/server'
import { contentTypeFor } from '../core/artifact-store.js'
import { openArtifact } from '../core/artifacts.js'
import { listArtifactsOp } from '../core/operations.js'
import { ArtifactDownloadQuery, JobParams } from '../schemas/data.js'
import { defineTool } from './tools.js'

/** Larger text files are linked, not inlined: a model's context is the scarce resource here. */
export const INLINE_TEXT_MAX = 256 * 1024

export const ArtifactContent = Type.Object({
  filename: Type.String(),
  size: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'bytes; null when neither the store nor the job recorded it' }),
  content_type: Type.String({ description: 'media type from the file name, e.g. text/plain; charset=utf-8' }),
  download_url: Type.String({ format: 'uri', description: 'the REST download of this file; send the same Authorization header' }),
  text: Type.Optional(Type.String({ description: `the whole file as UTF-8 text; present only for text files of at most ${INLINE_TEXT_MAX / 1024} KiB` }))
}, { additionalProperties: false, description: 'One artifact of a job: inline when it is small text, else a link to download it.' })

const TEXT_TYPES = new Set(['application/json', 'application/xml', 'application/yaml', 'application/x-yaml', 'application/javascript', 'application/x-sh'])

function isTextual (contentType: string): boolean {
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

export const getArtifactTool = defineTool({
  name: 'get_artifact',
  title: 'Get a job\'s artifact',
  description: 'One file a job uploaded (see list_artifacts for the names). Text files up to ' +
    `${INLINE_TEXT_MAX / 1024} KiB come back inline in "text"; anything else comes back as a resource_link to its ` +
    'download_url, which needs the same Authorization header as this endpoint. Costs one call of your list_job_artifacts ' +
    'budget (shared with list_artifacts; small: 10 per minute by default).',
  // The REST download's bucket: a tool call and its twin spend one budget.
  bucket: listArtifactsOp.bucket,
  rpm: listArtifactsOp.rpm,
  params: JobParams,
  input: ArtifactDownloadQuery,
  output: ArtifactContent,
  trigger: false,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  run: async (ctx, args) => {
    if (ctx.project === null) throw new Error('get_artifact needs an authorized project')
    const { entry, object } = await openArtifact(ctx.services, ctx.project.id, args.jobId, args.filename)
    const contentType = object.contentType ?? contentTypeFor(entry.filename)
    const size = object.size ?? entry.size
    const downloadUrl = ctx.restUrl(`/projects/${ctx.project.id}/jobs/${args.jobId.toLowerCase()}/artifacts/download?filename=${encodeURIComponent(entry.filename)}`)
    const small = size === null || size <= INLINE_TEXT_MAX
    const text = isTextual(contentType) && small ? await readSmallText(object.stream, INLINE_TEXT_MAX) : null
    if (text === null) object.stream.destroy()
    const structured = { filename: entry.filename, size, content_type: contentType, download_url: downloadUrl, ...(text === null ? {} : { text }) }
    const content: ContentBlock[] = [{ type: 'text', text: JSON.stringify(structured) }]
    if (text === null) {
      content.push({
        type: 'resource_link',
        uri: downloadUrl,
        name: entry.filename,
        mimeType: contentType,
        ...(size === null ? {} : { size }),
        description: 'download with the same Authorization header as the MCP endpoint'
      })
    }
    return { structured, content }
  }
})
