// The embedded default in process (no DATABASE_URL): PGlite under DATA_DIR, InfraBox's tables and the demo, a generated
// key pair, wait_for_build woken through PGlite's own LISTEN. test/embedded.test.ts runs the same from a fresh clone
// with `npm start`, as a newcomer does; that copy is not measured by npm test's coverage, this one is (docs/testing.md).
import t from 'tap'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { sql } from 'kysely'
import app, { serverOptions } from '../app.js'
import { loadConfig } from '../config.js'
import { STORY } from '../db/seed-story.js'

process.env.FASTIFY_AUTOLOAD_TYPESCRIPT = '1' // routes/ is autoloaded from its .ts files (as test/helpers/app.ts does)
t.setTimeout(180_000) // PGlite's start, InfraBox's schema and the demo seed, on a loaded 2-core machine

const dataDir = join(await mkdtemp(join(tmpdir(), 'mcp-embedded-')), 'nested', 'data')
t.teardown(async () => { await rm(join(dataDir, '..', '..'), { recursive: true, force: true }) })
const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent' })
const fastify = Fastify(serverOptions(config))
await fastify.register(app, { config })
await fastify.ready()
t.teardown(async () => { await fastify.close() })
const API = '/api/v1/mcp'

t.test('PGlite under a DATA_DIR that did not exist, a generated key pair, the demo user\'s session', async t => {
  t.equal(fastify.mcpStorage.embedded, true)
  t.ok((await readdir(dataDir)).includes('pglite'), 'the database lives under DATA_DIR')
  t.not(fastify.mcpDemo, null)
  t.same(fastify.mcpDemo?.story, { projectId: STORY.project, failingBuildId: STORY.failing })
  const ready = await fastify.inject({ method: 'GET', url: '/readyz' })
  t.match(ready.json(), { status: 'ready', database: 'ok', redis: 'in-process' })
})

t.test('the demo session mints a token that reads the story and waits on a build through PGlite\'s LISTEN', async t => {
  const session = fastify.mcpDemo?.sessionToken ?? ''
  const minted = await fastify.inject({ method: 'POST', url: `${API}/tokens/`, headers: { authorization: `Bearer ${session}` }, payload: { name: 'embedded', allow_trigger: true } })
  t.equal(minted.statusCode, 201)
  const auth = { authorization: `Bearer ${minted.json<{ token: string }>().token}` }
  const failures = await fastify.inject({ method: 'GET', url: `${API}/projects/${STORY.project}/builds/${STORY.failing}/failures`, headers: auth })
  t.equal(failures.statusCode, 200)
  t.match(failures.json(), { build: { id: STORY.failing, status: 'failure' } })

  // build #7 is running: the waiter answers when its job ends, by the notification InfraBox's trigger sends
  const waiting = fastify.inject({ method: 'GET', url: `${API}/projects/${STORY.project}/builds/${STORY.running}/wait?timeout=30`, headers: auth })
  await new Promise(resolve => setTimeout(resolve, 300))
  await sql`UPDATE job SET state = 'finished', end_date = now() WHERE build_id = ${STORY.running}`.execute(fastify.mcpStorage.db)
  const answer = await waiting
  t.equal(answer.statusCode, 200)
  t.match(answer.json(), { finished: true, build: { id: STORY.running, status: 'finished' } })
  t.ok(answer.json<{ elapsed_seconds: number }>().elapsed_seconds < 15, 'woken by the change, not at the 30 s timeout')
})
