// Artifact storage backends: key validation, the filesystem store (traversal-proof) and the S3 store against a real local s3rver.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import t from 'tap'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import S3rver from 's3rver'
import { artifactKey, assertArtifactFilename, contentTypeFor, FsArtifactStore, S3ArtifactStore } from '../../core/artifact-store.js'

const JOB = '00000000-0000-4000-8000-0006000000aa'
const TEXT = Buffer.from('hello ✓ artifact\n', 'utf8')
const BINARY = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) % 256))

async function bytesOf (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))
  return Buffer.concat(chunks)
}

t.test('artifactKey builds InfraBox keys and refuses anything that could climb out', async t => {
  t.equal(artifactKey(JOB, 'report.txt'), `archive/${JOB}/report.txt`)
  t.equal(artifactKey(JOB.toUpperCase(), 'a..b.txt'), `archive/${JOB}/a..b.txt`, 'dots inside a name are fine; the id is lower-cased')
  for (const bad of ['../etc/passwd', 'a/b', 'a\\b', '..', '.', 'nul\u0000byte', 'line\nbreak', '', 'x'.repeat(256)]) {
    t.throws(() => artifactKey(JOB, bad), { code: 'MCP_BAD_REQUEST', statusCode: 400 }, JSON.stringify(bad))
  }
  t.throws(() => artifactKey('not-a-uuid', 'a.txt'), { code: 'MCP_BAD_REQUEST', statusCode: 400 })
  t.throws(() => artifactKey('../../x', 'a.txt'), { code: 'MCP_BAD_REQUEST', statusCode: 400 })
  t.doesNotThrow(() => { assertArtifactFilename('x'.repeat(255)) })
  t.equal(contentTypeFor('a.TXT'), 'text/plain; charset=utf-8')
  t.equal(contentTypeFor('a.bin'), 'application/octet-stream')
})

t.test('FsArtifactStore', async t => {
  const base = await mkdtemp(path.join(tmpdir(), 'mcp-artifacts-'))
  t.teardown(async () => { await rm(base, { recursive: true, force: true }) })
  const root = path.join(base, 'root')
  await mkdir(path.join(root, 'archive', JOB, 'subdir'), { recursive: true })
  await writeFile(path.join(root, 'archive', JOB, 'report.txt'), TEXT)
  await writeFile(path.join(root, 'archive', JOB, 'data.bin'), BINARY)
  await writeFile(path.join(base, 'outside.txt'), 'secret')
  await symlink(path.join(base, 'outside.txt'), path.join(root, 'archive', JOB, 'escape.txt'))
  const store = new FsArtifactStore(root)

  t.test('streams the exact bytes with size and type', async t => {
    const text = await store.open(artifactKey(JOB, 'report.txt'))
    t.same(await bytesOf(text.stream), TEXT)
    t.equal(text.size, TEXT.length)
    t.equal(text.contentType, 'text/plain; charset=utf-8')
    const binary = await store.open(artifactKey(JOB, 'data.bin'))
    t.ok((await bytesOf(binary.stream)).equals(BINARY), 'binary bytes unchanged')
    t.equal(binary.size, BINARY.length)
  })

  t.test('absent files, directories and links out of the root are 404', async t => {
    await t.rejects(store.open(artifactKey(JOB, 'missing.txt')), { code: 'MCP_NOT_FOUND', statusCode: 404 }, 'missing')
    await t.rejects(store.open(artifactKey(JOB, 'subdir')), { code: 'MCP_NOT_FOUND', statusCode: 404 }, 'directory')
    await t.rejects(store.open(artifactKey(JOB, 'escape.txt')), { code: 'MCP_NOT_FOUND', statusCode: 404 }, 'symlink escaping the root')
    await t.rejects(new FsArtifactStore(path.join(base, 'nope')).open(artifactKey(JOB, 'report.txt')), { code: 'MCP_NOT_FOUND', statusCode: 404 }, 'no root at all')
  })

  t.test('keys that are not artifact keys are 400 before touching the disk', async t => {
    for (const key of [`archive/${JOB}/../../outside.txt`, '../outside.txt', `/archive/${JOB}/report.txt`, `archive/${JOB}/a/b`, `other/${JOB}/report.txt`, `archive/${JOB}/x\u0000`]) {
      await t.rejects(store.open(key), { code: 'MCP_BAD_REQUEST', statusCode: 400 }, JSON.stringify(key))
    }
  })
})

t.test('S3ArtifactStore against s3rver', async t => {
  const directory = await mkdtemp(path.join(tmpdir(), 'mcp-s3rver-'))
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: 'artifacts' }] })
  const { port } = await server.run()
  const endpoint = `http://127.0.0.1:${port}`
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
  // s3rver predates the SDK's default request checksums: send them only when an operation requires one.
  const writer = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED' })
  const store = new S3ArtifactStore({ endpoint, bucket: 'artifacts', region: 'us-east-1', forcePathStyle: true, ...credentials })
  t.teardown(async () => {
    await store.close()
    writer.destroy()
    await server.close()
    await rm(directory, { recursive: true, force: true })
  })

  await writer.send(new PutObjectCommand({ Bucket: 'artifacts', Key: artifactKey(JOB, 'report.txt'), Body: TEXT, ContentType: 'text/plain' }))
  await writer.send(new PutObjectCommand({ Bucket: 'artifacts', Key: artifactKey(JOB, 'data.bin'), Body: BINARY }))

  const text = await store.open(artifactKey(JOB, 'report.txt'))
  t.same(await bytesOf(text.stream), TEXT)
  t.equal(text.size, TEXT.length)
  t.match(text.contentType, /^text\/plain/)

  const binary = await store.open(artifactKey(JOB, 'data.bin'))
  t.ok((await bytesOf(binary.stream)).equals(BINARY), 'binary bytes unchanged')
  t.equal(binary.size, BINARY.length)

  await t.rejects(store.open(artifactKey(JOB, 'missing.txt')), { code: 'MCP_NOT_FOUND', statusCode: 404 }, 'missing key')
  await t.rejects(store.open(`archive/${JOB}/../x`), { code: 'MCP_BAD_REQUEST', statusCode: 400 }, 'traversal key')
})
