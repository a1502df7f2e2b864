// Artifacts against real PostgreSQL: listed from job.archive only (defect 6), found by name, streamed from the fs store.
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { sql } from 'kysely'
import t from 'tap'
import { artifactKey, FsArtifactStore } from '../../core/artifact-store.js'
import { findArtifact, listArtifacts } from '../../db/artifacts.js'
import { ARTIFACTS, FIXTURE, seedFixture } from '../../db/seed.js'
import { createTestDatabase } from '../helpers/db.js'

const testDb = await createTestDatabase(t)
const { db } = testDb
const root = await mkdtemp(path.join(tmpdir(), 'mcp-artifacts-db-'))
t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
await seedFixture(db, { artifactRoot: root })
const { projects: P, jobs: J } = FIXTURE

async function bytesOf (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))
  return Buffer.concat(chunks)
}

t.test('listArtifacts: job.archive in upload order; there is no artifact table to ask', async t => {
  const exists = await sql<{ found: string | null }>`select to_regclass('artifact')::text as found`.execute(db)
  t.equal(exists.rows[0]?.found, null, 'the InfraBox schema has no artifact table')
  t.same(await listArtifacts(db, P.github, J.compile), {
    items: [
      { filename: ARTIFACTS.text.filename, size: ARTIFACTS.text.content.length },
      { filename: ARTIFACTS.binary.filename, size: ARTIFACTS.binary.content.length }
    ],
    next_cursor: null
  })
  t.same(await listArtifacts(db, P.github, J.b2Unit), { items: [], next_cursor: null }, 'archive null: no artifacts')
})

t.test('odd archive entries are skipped or cleaned, not fatal', async t => {
  await db.updateTable('job')
    .set({ archive: sql<string>`array['{"filename":"ok.txt","size":3}', '{"size":1}', '"just a string"', '{"filename":"neg","size":-5}', '{"filename":"float","size":2.7}']::jsonb[]` })
    .where('id', '=', J.b3A).execute()
  t.same((await listArtifacts(db, P.github, J.b3A)).items, [
    { filename: 'ok.txt', size: 3 },
    { filename: 'neg', size: null },
    { filename: 'float', size: 2 }
  ])
})

t.test('a job of another project is 404', async t => {
  await t.rejects(listArtifacts(db, P.github, J.publicRun), { code: 'MCP_NOT_FOUND', statusCode: 404 })
  await t.rejects(listArtifacts(db, P.public, J.compile), { code: 'MCP_NOT_FOUND' })
  await t.rejects(findArtifact(db, P.github, J.publicRun, ARTIFACTS.public.filename), { code: 'MCP_NOT_FOUND' })
  await t.rejects(listArtifacts(db, P.github, randomUUID()), { code: 'MCP_NOT_FOUND' })
})

t.test('findArtifact + FsArtifactStore: the listed file\'s bytes; unlisted names are 404 even when stored', async t => {
  const store = new FsArtifactStore(root)
  for (const artifact of [ARTIFACTS.text, ARTIFACTS.binary]) {
    const entry = await findArtifact(db, P.github, J.compile, artifact.filename)
    t.same(entry, { filename: artifact.filename, size: artifact.content.length })
    const object = await store.open(artifactKey(J.compile, entry.filename))
    t.ok((await bytesOf(object.stream)).equals(artifact.content), `${artifact.filename}: exact bytes`)
    t.equal(object.size, artifact.content.length)
  }

  // In storage, but not published by the job.
  await writeFile(path.join(root, 'archive', J.compile, 'secret.txt'), 'not listed')
  await t.rejects(findArtifact(db, P.github, J.compile, 'secret.txt'), { code: 'MCP_NOT_FOUND', statusCode: 404 })
  await t.rejects(findArtifact(db, P.github, J.compile, '../../etc/passwd'), { code: 'MCP_NOT_FOUND' }, 'traversal names are never in an archive')
  t.throws(() => artifactKey(J.compile, '../../etc/passwd'), { code: 'MCP_BAD_REQUEST' })

  // Listed, but the bytes are gone from storage.
  await db.updateTable('job')
    .set({ archive: sql<string>`array['{"filename":"lost.txt","size":1}']::jsonb[]` })
    .where('id', '=', J.b2Unit).execute()
  const lost = await findArtifact(db, P.github, J.b2Unit, 'lost.txt')
  await t.rejects(store.open(artifactKey(J.b2Unit, lost.filename)), { code: 'MCP_NOT_FOUND' })
})
