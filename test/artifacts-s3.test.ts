// SPEC §1/§5/§7/§11 with ARTIFACT_STORAGE=s3, end to end: the service (server.ts, as `npm start` runs it) configured
// only through its environment against a real S3 API (s3rver on 127.0.0.1), the objects put there under InfraBox's
// keys archive/<job_id>/<filename>. The REST download streams S3's bytes; MCP get_artifact answers small text inline
// and anything else as a resource_link to that download; the text windows (bytes, tail, grep) read S3 by ranges.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import S3rver from 's3rver'
import { sql } from 'kysely'
import { ARTIFACTS, ARTIFACT_TEXT, FIXTURE, seedFixture } from '../db/seed.js'
import { INLINE_TEXT_MAX } from '../core/artifacts.js'
import { createTestDatabase } from './helpers/db.js'
import { API, bearer } from './helpers/chain.js'
import { freePort, spawnGateway } from './helpers/faults.js'
import { sharedInfraboxKeys, signInfraboxSession } from './helpers/infrabox.js'
import { connectV2, linksOf, textOf } from './helpers/mcp.js'

const { projects: P, jobs: J } = FIXTURE
const BUCKET = 'infrabox'
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }

// a text file larger than what get_artifact inlines: numbered lines, so windows can be checked exactly
const BIG_LINES = Array.from({ length: 24_000 }, (_, i) => `line ${String(i + 1).padStart(5, '0')} of the build log ✓`)
const BIG = Buffer.from(BIG_LINES.join('\n') + '\n', 'utf8')
const MISSING = 'listed-but-not-in-s3.txt'

const directory = await mkdtemp(join(tmpdir(), 'mcp-s3-e2e-'))
const s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: BUCKET }] })
const { port: s3Port } = await s3.run()
const endpoint = `http://127.0.0.1:${s3Port}`
// s3rver predates the SDK's default request checksums: send them only when an operation requires one.
const writer = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED' })
t.teardown(async () => {
  writer.destroy()
  await s3.close()
  await rm(directory, { recursive: true, force: true })
})
const put = async (jobId: string, filename: string, body: Buffer): Promise<void> => {
  await writer.send(new PutObjectCommand({ Bucket: BUCKET, Key: `archive/${jobId}/${filename}`, Body: body }))
}
await put(J.compile, ARTIFACTS.text.filename, ARTIFACTS.text.content)
await put(J.compile, ARTIFACTS.binary.filename, ARTIFACTS.binary.content)
await put(J.compile, 'big.log', BIG)
await put(J.compile, 'not-listed.txt', Buffer.from('in S3 but not in job.archive\n'))

const database = await createTestDatabase(t)
await seedFixture(database.db) // no artifactRoot: not one byte on disk
await sql`UPDATE job SET archive = archive || ARRAY[${JSON.stringify({ filename: 'big.log', size: BIG.length })}::jsonb, ${JSON.stringify({ filename: MISSING, size: 3 })}::jsonb] WHERE id = ${J.compile}`.execute(database.db)

const keys = sharedInfraboxKeys()
const gateway = await spawnGateway(t, 'server.ts', {
  HOST: '127.0.0.1',
  PORT: String(await freePort()),
  DATABASE_URL: database.url,
  MIGRATE_ON_START: 'false',
  INFRABOX_RSA_PUBLIC_KEY_PATH: keys.spkiPath,
  LOG_LEVEL: 'info',
  MCP_RATE_LIMIT_ARTIFACT_RPM: '10000',
  // the filesystem store would find nothing here: every byte below comes from S3
  DATA_DIR: directory,
  ARTIFACT_STORAGE: 's3',
  S3_ENDPOINT: endpoint,
  S3_BUCKET: BUCKET,
  S3_REGION: 'us-east-1',
  S3_ACCESS_KEY_ID: credentials.accessKeyId,
  S3_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  S3_FORCE_PATH_STYLE: 'true'
})
const session = signInfraboxSession(keys.privatePath, FIXTURE.users.demo)
const made = await fetch(`${gateway.base}${API}/tokens/`, { method: 'POST', headers: { ...bearer(session), 'content-type': 'application/json' }, body: JSON.stringify({ name: 's3 e2e' }) })
if (made.status !== 201) throw new Error(`token not created: ${made.status} ${await made.text()}`)
const { token } = await made.json() as { token: string }
const artifactUrl = (filename: string, job = J.compile): string =>
  `${gateway.base}${API}/projects/${P.github}/jobs/${job}/artifacts/download?filename=${encodeURIComponent(filename)}`
const get = async (url: string): Promise<Response> => await fetch(url, { headers: bearer(token) })

t.test('REST download streams the bytes from S3', async t => {
  const text = await get(artifactUrl(ARTIFACTS.text.filename))
  t.equal(text.status, 200)
  t.equal(await text.text(), ARTIFACT_TEXT, 'report.txt: the object\'s bytes')
  t.match(text.headers.get('content-type'), /^text\/plain/)
  const binary = await get(artifactUrl(ARTIFACTS.binary.filename))
  t.equal(binary.status, 200)
  t.ok(Buffer.from(await binary.arrayBuffer()).equals(ARTIFACTS.binary.content), 'coverage.bin: every byte')
  const big = await get(artifactUrl('big.log'))
  t.equal(big.status, 200)
  t.ok(Buffer.from(await big.arrayBuffer()).equals(BIG), `big.log: all ${BIG.length} bytes`)
  t.equal(big.headers.get('content-length'), String(BIG.length), 'Content-Length from S3\'s size')
})

t.test('REST download: listed but absent from S3 is 404; in S3 but not listed is 404', async t => {
  const missing = await get(artifactUrl(MISSING))
  t.equal(missing.status, 404)
  t.match(await missing.json(), { code: 'MCP_NOT_FOUND' })
  const unlisted = await get(artifactUrl('not-listed.txt'))
  t.equal(unlisted.status, 404, 'job.archive is the list of what may be read')
})

t.test('MCP get_artifact over S3: small text inline, binary and large text as a link to the download', async t => {
  const mcp = await connectV2(t, `${gateway.base}${API}`, token, 'legacy')
  const small = await mcp.call('get_artifact', { projectId: P.github, jobId: J.compile, filename: ARTIFACTS.text.filename })
  t.notOk(small.isError, textOf(small).slice(0, 200))
  t.match(small.structuredContent, { filename: 'report.txt', text: ARTIFACT_TEXT, size: ARTIFACTS.text.content.length }, 'inline text from S3')
  t.same(linksOf(small), [], 'no link for inline text')

  for (const [filename, size] of [[ARTIFACTS.binary.filename, ARTIFACTS.binary.content.length], ['big.log', BIG.length]] as const) {
    const linked = await mcp.call('get_artifact', { projectId: P.github, jobId: J.compile, filename })
    t.notOk(linked.isError, `${filename}: ${textOf(linked).slice(0, 200)}`)
    t.equal((linked.structuredContent as { text?: unknown } | undefined)?.text, undefined, `${filename}: not inlined${filename === 'big.log' ? ` (${size} > ${INLINE_TEXT_MAX} bytes)` : ' (binary)'}`)
    const [link] = linksOf(linked)
    t.equal(link?.uri, artifactUrl(filename), `${filename}: a resource_link to its REST download`)
    const followed = await get(link?.uri ?? '')
    t.ok(Buffer.from(await followed.arrayBuffer()).equals(filename === 'big.log' ? BIG : ARTIFACTS.binary.content), `${filename}: the link, followed with the token, gives S3's bytes`)
  }

  const missing = await mcp.call('get_artifact', { projectId: P.github, jobId: J.compile, filename: MISSING })
  t.equal(missing.isError, true, 'listed but absent from S3: a tool error')
})

t.test('text windows over S3 (ranged reads): bytes, tail, grep, over REST and MCP', async t => {
  const mcp = await connectV2(t, `${gateway.base}${API}`, token, 'legacy')
  const window = async (args: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const r = await mcp.call('get_artifact', { projectId: P.github, jobId: J.compile, filename: 'big.log', ...args })
    t.notOk(r.isError, `${JSON.stringify(args)}: ${textOf(r).slice(0, 200)}`)
    return r.structuredContent ?? {}
  }
  const tail = await window({ tail: 3 })
  t.equal(tail.text, BIG_LINES.slice(-3).join('\n') + '\n', 'tail: the last three lines')
  const grep = await window({ grep: '^line 1234[05] ' })
  t.same(grep.matches, [{ line_number: 12340, line: BIG_LINES[12339] }, { line_number: 12345, line: BIG_LINES[12344] }], 'grep: the matching lines and their numbers')
  // a byte window deep in the object, on a line start (ASCII there: no character to snap to)
  const offset = BIG.indexOf('line 20000 ')
  const bytes = await window({ offset, length: 27 })
  t.match(bytes, { mode: 'bytes', offset, length: 27, text: 'line 20000 of the build log', truncated: true }, 'offset+length: exactly those bytes')
  // a window ending inside the 3-byte ✓ snaps to the whole character (README: windows snap to UTF-8 characters)
  const snapped = await window({ offset, length: 29 })
  t.match(snapped, { offset, length: 31, text: 'line 20000 of the build log ✓' }, 'a cut character is completed from S3\'s bytes')

  const rest = await get(`${gateway.base}${API}/projects/${P.github}/jobs/${J.compile}/artifacts/text?filename=big.log&tail=2`)
  t.equal(rest.status, 200)
  t.match(await rest.json(), { mode: 'tail', text: BIG_LINES.slice(-2).join('\n') + '\n' }, 'REST twin: the same window')
  const binary = await get(`${gateway.base}${API}/projects/${P.github}/jobs/${J.compile}/artifacts/text?filename=${ARTIFACTS.binary.filename}`)
  t.equal(binary.status, 422, 'a binary object in S3 has no text window')
})
