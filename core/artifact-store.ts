// Where artifact bytes live: `archive/<job_id>/<filename>` on a filesystem (embedded mode) or in an S3-compatible bucket.
import type { FileHandle } from 'node:fs/promises'
import { open, realpath } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { GetObjectCommand, HeadObjectCommand, NoSuchKey, NotFound, S3Client, S3ServiceException } from '@aws-sdk/client-s3'
import { UUID } from '../lib/ids.js'
import { badRequest, notFound } from '../lib/errors.js'
import { ARTIFACT_FILENAME_MAX } from '../schemas/data.js'

export interface ArtifactObject {
  /** The bytes; the caller must consume or destroy it (an S3 body holds a socket). */
  stream: Readable
  size?: number
  contentType?: string
}

/** Bytes `start` to `end` of an object, both inclusive (as HTTP's Range and createReadStream count them). */
export interface ByteRange { start: number, end: number }

export interface ArtifactStat { size: number, contentType?: string | undefined }

export interface ArtifactStore {
  /**
   * Opens the object under `key` (only `range` of it when given: the store reads no other byte); throws notFound
   * (404) when there is none. `size` is always the whole object's. A range must lie within the object (see stat).
   */
  open: (key: string, range?: ByteRange) => Promise<ArtifactObject>
  /** The object's size without reading it; notFound (404) when there is none. */
  stat: (key: string) => Promise<ArtifactStat>
  close?: () => Promise<void>
}

function assertRange (range: ByteRange | undefined): void {
  if (range === undefined) return
  if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end < range.start) {
    throw new RangeError(`not a byte range: ${range.start}-${range.end}`)
  }
}

/**
 * Rejects (400) any filename that could name something other than a file directly inside
 * `archive/<job_id>/`: separators of either OS, NUL and other control characters (they also break
 * Content-Disposition), `.` and `..`, and over-long names.
 */
export function assertArtifactFilename (filename: string): void {
  if (filename.length === 0 || filename.length > ARTIFACT_FILENAME_MAX) throw badRequest(`filename must be 1-${ARTIFACT_FILENAME_MAX} characters`)
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[/\\\u0000-\u001f\u007f]/.test(filename)) throw badRequest('filename may not contain path separators or control characters')
  if (filename === '.' || filename === '..') throw badRequest('filename may not be . or ..')
}

/** The storage key of a job's artifact, exactly as InfraBox writes it; throws 400 on a bad id or name. */
export function artifactKey (jobId: string, filename: string): string {
  if (!UUID.test(jobId)) throw badRequest('job id must be a UUID')
  assertArtifactFilename(filename)
  return `archive/${jobId.toLowerCase()}/${filename}`
}

/** A key as artifactKey builds it; stores re-check so a key from elsewhere cannot climb out either. */
function assertKey (key: string): void {
  const parts = key.split('/')
  if (parts.length !== 3 || parts[0] !== 'archive' || parts[1] === undefined || !UUID.test(parts[1])) {
    throw badRequest('not an artifact key')
  }
  assertArtifactFilename(parts[2] ?? '')
}

const CONTENT_TYPES: Record<string, string> = {
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.html': 'text/html; charset=utf-8',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.tar': 'application/x-tar'
}

/** The type an object was stored with, unless it says nothing (absent or a generic octet stream): then the name's. */
function storedTypeOr (stored: string | undefined, key: string): string {
  if (stored === undefined || /^(application|binary)\/octet-stream\b/i.test(stored)) return contentTypeFor(key)
  return stored
}

/** A content type from the filename's extension; application/octet-stream when unknown. */
export function contentTypeFor (filename: string): string {
  return CONTENT_TYPES[path.extname(filename).toLowerCase()] ?? 'application/octet-stream'
}

function isErrno (err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' && codes.includes(err.code)
}

/** True when `child` is `parent` itself or below it. */
function isInside (parent: string, child: string): boolean {
  const rel = path.relative(parent, child)
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)
}

/** Artifacts as files under `root/archive/<job_id>/<filename>` (the embedded mode's backend). */
export class FsArtifactStore implements ArtifactStore {
  readonly root: string

  constructor (root: string) {
    this.root = path.resolve(root)
  }

  async open (key: string, range?: ByteRange): Promise<ArtifactObject> {
    assertRange(range)
    return await this.#withFile(key, async (handle, size) => {
      // The stream owns the handle from here and closes it at end, error or destroy.
      const stream = handle.createReadStream(range === undefined ? {} : { start: range.start, end: range.end })
      return { stream, size, contentType: contentTypeFor(key) }
    })
  }

  async stat (key: string): Promise<ArtifactStat> {
    return await this.#withFile(key, async (handle, size) => {
      await handle.close()
      return { size, contentType: contentTypeFor(key) }
    })
  }

  /** Opens the file of `key` inside the root (symlinks resolved), hands it to `use`, which owns it from then on. */
  async #withFile<T> (key: string, use: (handle: FileHandle, size: number) => Promise<T>): Promise<T> {
    assertKey(key)
    const lexical = path.resolve(this.root, key)
    if (!isInside(this.root, lexical)) throw badRequest('not an artifact key')
    const missing = notFound(`artifact ${key} not found`)
    let handle: FileHandle | undefined
    try {
      // Resolve symlinks too: a link inside the root must not lead out of it.
      const [realRoot, realTarget] = await Promise.all([realpath(this.root), realpath(lexical)])
      if (!isInside(realRoot, realTarget)) throw missing
      handle = await open(realTarget, 'r')
      const stat = await handle.stat()
      if (!stat.isFile()) throw missing
      const owned = handle
      handle = undefined
      return await use(owned, stat.size)
    } catch (err) {
      await handle?.close()
      if (isErrno(err, 'ENOENT', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENAMETOOLONG')) throw missing
      throw err
    }
  }
}

/** S3's "no such object" in its several spellings as our 404; anything else unchanged. */
function missingAs404 (err: unknown, key: string): unknown {
  if (err instanceof NoSuchKey || err instanceof NotFound) return notFound(`artifact ${key} not found`)
  // Some S3-compatible servers answer a bare 404 without the NoSuchKey code (HEAD answers never carry one).
  if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return notFound(`artifact ${key} not found`)
  return err
}

export interface S3ArtifactStoreOptions {
  /** Unset: AWS's own endpoint for the region. */
  endpoint?: string | undefined
  bucket: string
  region: string
  /** Both unset: the SDK's default credential chain (IAM role, environment). */
  accessKeyId?: string | undefined
  secretAccessKey?: string | undefined
  /** Path-style addressing, as MinIO, Ceph and s3rver need. */
  forcePathStyle?: boolean | undefined
}

/** Artifacts in an S3-compatible bucket under the key `archive/<job_id>/<filename>` (production backend). */
export class S3ArtifactStore implements ArtifactStore {
  readonly bucket: string
  readonly #client: S3Client

  constructor (opts: S3ArtifactStoreOptions) {
    this.bucket = opts.bucket
    this.#client = new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle ?? false,
      credentials: opts.accessKeyId !== undefined && opts.secretAccessKey !== undefined
        ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey }
        : undefined
    })
  }

  async open (key: string, range?: ByteRange): Promise<ArtifactObject> {
    assertKey(key)
    assertRange(range)
    let out
    try {
      out = await this.#client.send(new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` })
      }))
    } catch (err) {
      throw missingAs404(err, key)
    }
    const body = out.Body
    // In Node the SDK returns an IncomingMessage; anything else means a misconfigured runtime.
    if (!(body instanceof Readable)) throw new Error('S3 returned a body that is not a Node.js stream')
    // A ranged answer's Content-Length is the range's; the whole size is the tail of Content-Range (bytes a-b/size).
    const total = range === undefined ? out.ContentLength : Number(/\/(\d+)$/.exec(out.ContentRange ?? '')?.[1] ?? NaN)
    return { stream: body, size: Number.isSafeInteger(total) ? total : undefined, contentType: storedTypeOr(out.ContentType, key) }
  }

  async stat (key: string): Promise<ArtifactStat> {
    assertKey(key)
    try {
      const out = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))
      return { size: out.ContentLength ?? 0, contentType: storedTypeOr(out.ContentType, key) }
    } catch (err) {
      throw missingAs404(err, key)
    }
  }

  async close (): Promise<void> {
    this.#client.destroy()
  }
}
