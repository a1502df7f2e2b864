// Text windows of artifacts on both stores (files, and S3 through a real local s3rver): ranges, tail, grep, binary refusal, bytes read.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Transform } from 'node:stream'
import t, { type Test } from 'tap'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import S3rver from 's3rver'
import { artifactKey, FsArtifactStore, S3ArtifactStore, type ArtifactStore } from '../../core/artifact-store.js'
import { compilePattern, GREP_SCAN_MAX, readArtifactText } from '../../core/artifact-text.js'

const JOB = '00000000-0000-4000-8000-0006000000bb'
/** 200 000 numbered lines (about 4.6 MB), one of them with an error and ANSI colours, one with a BiDi override. */
const LINES = Array.from({ length: 200_000 }, (_, i) => i === 150_000 ? '\u001b[31mERROR: disk full\u001b[0m' : i === 7 ? 'größe ✓ \u202eevil' : `line ${i + 1} ok`)
const BIG = Buffer.from(LINES.join('\n') + '\n', 'utf8')
const SMALL = Buffer.from('alpha\nbeta\ngamma', 'utf8')
const FILES: Record<string, Buffer> = {
  'big.log': BIG,
  'small.txt': SMALL,
  'data.bin': Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256)),
  'picture.png': Buffer.from('not really a png but named like one'),
  'notes.dat': Buffer.from('plain text under an unknown extension\nsecond line\n'),
  'empty.txt': Buffer.alloc(0),
  'one-long-line.txt': Buffer.from('x'.repeat(2 * 1024 * 1024)),
  /** what makes ^(a+)+$ take exponential time in a backtracking engine (JavaScript's own RegExp would not return) */
  'evil.txt': Buffer.from('a'.repeat(30_000) + '!\n')
}

/** Counts the bytes a store hands out, so a test can show a window did not read the whole object. */
class CountingStore implements ArtifactStore {
  bytes = 0
  constructor (private readonly inner: ArtifactStore) {}
  async stat (key: string) { return await this.inner.stat(key) }
  async open (key: string, range?: { start: number, end: number }) {
    const object = await this.inner.open(key, range)
    const counter = new Transform({ transform: (chunk: Buffer, _enc, done) => { this.bytes += chunk.length; done(null, chunk) } })
    object.stream.on('error', err => counter.destroy(err))
    counter.on('close', () => { object.stream.destroy() })
    return { ...object, stream: object.stream.pipe(counter) }
  }
}

function behaviour (t: Test, store: CountingStore): void {
  const key = (name: string): string => artifactKey(JOB, name)
  const read = async (name: string, w: Parameters<typeof readArtifactText>[3]) => await readArtifactText(store, key(name), name, w)

  t.test('byte windows: default, offset+length, whole characters, past the end', async t => {
    const first = await read('small.txt', {})
    t.match(first, { mode: 'bytes', offset: 0, length: SMALL.length, truncated: false, text: 'alpha\nbeta\ngamma', size: SMALL.length })
    t.match(await read('small.txt', { offset: 6, length: 4 }), { text: 'beta', offset: 6, length: 4, truncated: true })
    // line 8 is "größe ✓ …": a window starting inside "ö" moves to the next character, one ending inside "✓" finishes it
    const at = BIG.indexOf(Buffer.from('größe'))
    const w = await read('big.log', { offset: at + 3, length: 6 })
    t.equal(w.text, 'ße ✓', 'starts after the cut ö, ends after the whole ✓')
    t.equal(w.offset, at + 4)
    const next = await read('big.log', { offset: w.offset + w.length, length: 8 })
    t.equal(next.text, ' evil', 'resumes at offset + length; the BiDi override is stripped')
    t.match(await read('small.txt', { offset: 1000 }), { text: '', offset: SMALL.length, length: 0 })
    t.match(await read('empty.txt', {}), { text: '', size: 0, length: 0, truncated: false })
    store.bytes = 0
    await read('big.log', { offset: 2_000_000, length: 1000 })
    t.ok(store.bytes < 8 * 1024, `a 1000-byte window of a ${BIG.length}-byte file read ${store.bytes} bytes`)
  })

  t.test('tail: the last lines, read backwards by range', async t => {
    store.bytes = 0
    const w = await read('big.log', { tail: 3 })
    t.equal(w.text, 'line 199998 ok\nline 199999 ok\nline 200000 ok\n')
    t.equal(w.offset + w.length, BIG.length)
    t.ok(store.bytes <= 64 * 1024 + 8, `read ${store.bytes} bytes of ${BIG.length}`)
    t.match(await read('small.txt', { tail: 2 }), { text: 'beta\ngamma', offset: 6, truncated: true })
    t.match(await read('small.txt', { tail: 10 }), { text: 'alpha\nbeta\ngamma', offset: 0, truncated: false })
    const many = await read('big.log', { tail: 5000 })
    t.equal(many.text?.split('\n').length, 5001, '5000 lines across several 64 KiB reads')
    store.bytes = 0
    const long = await read('one-long-line.txt', { tail: 1 })
    t.equal(long.length, 1024 * 1024, 'a line longer than 1 MiB: its last 1 MiB')
    t.ok(store.bytes <= 1024 * 1024 + 8192, `never more than 1 MiB read (${store.bytes})`)
  })

  t.test('grep: matching lines with numbers, ANSI stripped, capped', async t => {
    const w = await read('big.log', { grep: '^error:', ignore_case: true })
    t.same(w.matches, [{ line_number: 150_001, line: 'ERROR: disk full' }])
    t.match(w, { mode: 'grep', truncated: false, length: BIG.length })
    const capped = await read('big.log', { grep: 'line 1\\d ok', max_matches: 3 })
    t.same(capped.matches?.map(m => m.line_number), [10, 11, 12])
    t.equal(capped.truncated, true)
    t.ok(capped.length < BIG.length, 'stopped reading at the cap')
    await t.rejects(read('big.log', { grep: '(a)\\1' }), { statusCode: 400, code: 'MCP_BAD_REQUEST' }, 'a back-reference is refused')
    const started = performance.now()
    const evil = await read('evil.txt', { grep: '^(a+)+$' })
    t.same(evil.matches, [], 'catastrophic backtracking in a backtracking engine: linear here')
    t.ok(performance.now() - started < 5000, `30 000 a's and a !, evil pattern: ${(performance.now() - started).toFixed(0)} ms`)
    t.same((await read('big.log', { grep: '^(a+)+$' })).matches, [], 'and over the whole 4.6 MB file')
  })

  t.test('binary files are refused with a message saying so; text under an unknown name is read', async t => {
    await t.rejects(read('data.bin', {}), { statusCode: 422, message: /binary file/ })
    await t.rejects(read('data.bin', { tail: 1 }), { statusCode: 422, message: /binary/ })
    await t.rejects(read('picture.png', {}), { statusCode: 422, message: /binary file \(image\/png/ })
    t.match(await read('notes.dat', { tail: 1 }), { text: 'second line\n' })
  })

  t.test('argument mistakes are 400', async t => {
    await t.rejects(read('small.txt', { tail: 1, grep: 'a' }), { statusCode: 400, code: 'MCP_BAD_REQUEST' })
    await t.rejects(read('small.txt', { offset: 1, tail: 1 }), { statusCode: 400, code: 'MCP_BAD_REQUEST' })
    await t.rejects(read('small.txt', { ignore_case: true }), { statusCode: 400, code: 'MCP_BAD_REQUEST' })
    await t.rejects(read('missing.txt', {}), { statusCode: 404, code: 'MCP_NOT_FOUND' })
  })
}

t.test('compilePattern: RE2 semantics', async t => {
  t.ok(compilePattern('err(or)?', true).test('An ERROR'))
  for (const bad of ['(?=x)', '(a)\\1', '[', '(?<!a)b']) t.throws(() => compilePattern(bad), { statusCode: 400, code: 'MCP_BAD_REQUEST' }, bad)
  t.ok(GREP_SCAN_MAX >= 100 * 1024 * 1024)
})

t.test('FsArtifactStore', async t => {
  const root = await mkdtemp(path.join(tmpdir(), 'mcp-artifact-text-'))
  t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
  await mkdir(path.join(root, 'archive', JOB), { recursive: true })
  for (const [name, bytes] of Object.entries(FILES)) await writeFile(path.join(root, 'archive', JOB, name), bytes)
  behaviour(t, new CountingStore(new FsArtifactStore(root)))
})

t.test('S3ArtifactStore against s3rver', async t => {
  const directory = await mkdtemp(path.join(tmpdir(), 'mcp-s3rver-text-'))
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: 'artifacts' }] })
  const { port } = await server.run()
  const endpoint = `http://127.0.0.1:${port}`
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
  const writer = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED' })
  const s3 = new S3ArtifactStore({ endpoint, bucket: 'artifacts', region: 'us-east-1', forcePathStyle: true, ...credentials })
  t.teardown(async () => {
    await s3.close()
    writer.destroy()
    await server.close()
    await rm(directory, { recursive: true, force: true })
  })
  for (const [name, bytes] of Object.entries(FILES)) {
    // no ContentType: the store falls back to the name's, as for objects InfraBox uploaded without one
    await writer.send(new PutObjectCommand({ Bucket: 'artifacts', Key: artifactKey(JOB, name), Body: bytes }))
  }
  t.test('ranged reads give the whole size and only the range', async t => {
    const object = await s3.open(artifactKey(JOB, 'small.txt'), { start: 6, end: 9 })
    const chunks: Buffer[] = []
    for await (const c of object.stream) chunks.push(Buffer.from(c))
    t.equal(Buffer.concat(chunks).toString(), 'beta')
    t.equal(object.size, SMALL.length)
    t.match(await s3.stat(artifactKey(JOB, 'big.log')), { size: BIG.length })
    await t.rejects(s3.stat(artifactKey(JOB, 'missing.txt')), { statusCode: 404, code: 'MCP_NOT_FOUND' })
  })
  behaviour(t, new CountingStore(s3))
})
