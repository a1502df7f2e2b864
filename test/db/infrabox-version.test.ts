// SPEC §2, older InfraBox: the columns are read once at start. Schema 47 reads and writes build.source; schema 46 (no
// build.source) serves every route with `source: null` and triggers without the column; a database missing a column
// the gateway cannot do without stops the process with one line naming it.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { sql } from 'kysely'
import { exportSPKI, generateKeyPair } from 'jose'
import { buildApp } from '../helpers/app.js'
import { API, bearer, createToken, RELAXED_LIMITER } from '../helpers/chain.js'
import { createTestDatabase, type TestDatabase } from '../helpers/db.js'
import { tsxArgs } from '../helpers/coverage.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { detectInfraboxSchema } from '../../db/infrabox-version.js'

const { projects: P, builds: B, jobs: J } = FIXTURE
const LIMITS = { default: 10_000, log: 10_000, artifact: 10_000, trigger: 10_000, introspect: 10_000 }
const root = new URL('../..', import.meta.url).pathname

/** The start's log lines (pino NDJSON), parsed. */
function logLines (): { stream: { write: (line: string) => void }, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  return { lines, stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } } }
}

t.test('schema 47: build.source read, and written by a trigger', async t => {
  const log = logLines()
  const { app, database, session } = await buildApp(t, {
    limits: LIMITS,
    env: { ...RELAXED_LIMITER, LOG_LEVEL: 'info' },
    logStream: log.stream,
    seed: async ({ db }) => { await seedFixture(db) }
  })
  t.same(await detectInfraboxSchema(database.db), { version: 47, recorded: true, columns: { buildSource: true } })
  t.match(log.lines.find(l => l.msg === 'InfraBox schema found'), { infraboxSchema: 47, recorded: true, columns: { buildSource: true } }, 'the version found is logged at start')
  const { token } = await createToken(app, await session(FIXTURE.users.demo), { allow_trigger: true })
  const build = await app.inject({ method: 'GET', url: `${API}/projects/${P.github}/builds/${B.b1}`, headers: bearer(token) })
  t.equal(build.json().source, 'github')
  const triggered = await app.inject({ method: 'POST', url: `${API}/projects/${P.github}/trigger`, headers: bearer(token), payload: { branch: 'main' } })
  t.equal(triggered.statusCode, 201)
  const row = await database.db.selectFrom('build').select('source').where('id', '=', triggered.json().build.id).executeTakeFirstOrThrow()
  t.equal(row.source, 'mcp')
})

/** A database as InfraBox 00046 left it: the subset and the data, no build.source, schema_version 46, no gateway tables yet. */
async function schema46 (t: Test, opts: { recorded: boolean }): Promise<TestDatabase> {
  const database = await createTestDatabase(t, { migrate: false })
  await seedFixture(database.db)
  await sql`ALTER TABLE build DROP COLUMN source`.execute(database.db)
  if (opts.recorded) await sql`UPDATE infrabox SET schema_version = 46`.execute(database.db)
  else await sql`DROP TABLE infrabox`.execute(database.db)
  return database
}

t.test('schema 46: every route serves, builds carry source: null, a trigger leaves the column out', async t => {
  const database = await schema46(t, { recorded: true })
  const log = logLines()
  const { app, session } = await buildApp(t, { database, limits: LIMITS, env: { ...RELAXED_LIMITER, LOG_LEVEL: 'info' }, logStream: log.stream })
  t.match(log.lines.find(l => l.msg === 'InfraBox schema found'), { infraboxSchema: 46, recorded: true, columns: { buildSource: false } })
  const { token } = await createToken(app, await session(FIXTURE.users.demo), { allow_trigger: true })
  const get = async (url: string): Promise<{ statusCode: number, json: () => any }> => await app.inject({ method: 'GET', url: `${API}${url}`, headers: bearer(token) })

  const builds = await get(`/projects/${P.github}/builds`)
  t.equal(builds.statusCode, 200, 'list_builds')
  const items = builds.json().items as Array<{ source: string | null }>
  t.ok(items.length > 0)
  t.ok(items.every(b => b.source === null), 'every build has source: null')
  const filtered = await get(`/projects/${P.github}/builds?status=failure&branch=feature/login`)
  t.equal(filtered.statusCode, 200, 'list_builds with filters')
  const build = await get(`/projects/${P.github}/builds/${B.b1}`)
  t.equal(build.statusCode, 200, 'get_build')
  t.equal(build.json().source, null)
  for (const url of [
    '/projects', `/projects/${P.github}`, `/projects/${P.github}/builds/${B.b1}/jobs`, `/projects/${P.github}/jobs/${J.compile}`,
    `/projects/${P.github}/jobs/${J.compile}/testruns`, `/projects/${P.github}/jobs/${J.compile}/log`,
    `/projects/${P.github}/jobs/${J.compile}/artifacts`, `/projects/${P.github}/builds/${B.b1}/wait?timeout=0`, '/me', '/me/access-log'
  ]) {
    t.equal((await get(url)).statusCode, 200, `GET ${url}`)
  }

  const triggered = await app.inject({ method: 'POST', url: `${API}/projects/${P.github}/trigger`, headers: bearer(token), payload: { branch: 'main' } })
  t.equal(triggered.statusCode, 201, 'trigger_build')
  const again = await app.inject({ method: 'POST', url: `${API}/projects/${P.upload}/trigger`, headers: { ...bearer(token), 'idempotency-key': 'schema-46' }, payload: {} })
  t.equal(again.statusCode, 201, 'trigger_build with an idempotency key')
  const inserted = await database.db.selectFrom('build').select(['id', 'build_number']).where('id', '=', triggered.json().build.id).executeTakeFirst()
  t.ok(inserted !== undefined, 'the build row is there')
  const jobs = await database.db.selectFrom('job').select(['name', 'state']).where('build_id', '=', triggered.json().build.id).execute()
  t.same(jobs, [{ name: 'Create Jobs', state: 'queued' }], 'with its Create Jobs job')
  const triggeredBuild = await get(`/projects/${P.github}/builds/${String(triggered.json().build.id)}`)
  t.equal(triggeredBuild.json().source, null)

  // acting on builds (SPEC §14): a restarted build is inserted without the column too
  const post = async (url: string): Promise<number> => (await app.inject({ method: 'POST', url: `${API}${url}`, headers: bearer(token), payload: {} })).statusCode
  const restarted = await app.inject({ method: 'POST', url: `${API}/projects/${P.github}/builds/${B.b1}/restart`, headers: bearer(token), payload: {} })
  t.ok(restarted.statusCode < 300, `restart_build: ${restarted.statusCode} ${restarted.body.slice(0, 200)}`)
  t.ok(await post(`/projects/${P.github}/builds/${B.b2}/retry-failed`) < 300, 'retry_failed_jobs')
  t.ok(await post(`/projects/${P.github}/builds/${String(triggered.json().build.id)}/abort`) < 300, 'abort_build')
})

t.test('schema 46 with no infrabox table: the version is inferred from the columns', async t => {
  const database = await schema46(t, { recorded: false })
  t.same(await detectInfraboxSchema(database.db), { version: 46, recorded: false, columns: { buildSource: false } })
})

t.test('a column the gateway cannot do without is missing: the process stops with one line naming it', async t => {
  const database = await createTestDatabase(t)
  await sql`ALTER TABLE job DROP COLUMN console`.execute(database.db)
  const pair = await generateKeyPair('RS256', { modulusLength: 2048 })
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: database.url,
    SESSION_JWT_PUBLIC_KEY: await exportSPKI(pair.publicKey),
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn'
  }
  for (const k of ['REDIS_URL', 'INFRABOX_RSA_PUBLIC_KEY_PATH', 'PUBLIC_BASE_URL']) Reflect.deleteProperty(env, k)
  const child = spawn(process.execPath, [...tsxArgs(), 'server.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  t.equal(code, 1, 'exit 1')
  const lines = stderr.trim().split('\n')
  t.equal(lines.length, 1, `one line: ${stderr}`)
  t.match(lines[0], /job\.console/, 'naming table.column')
  t.match(lines[0], /InfraBox schema 47/, 'and the version found')
  t.equal(stdout, '', 'nothing else')
  // the same refusal from detection itself, for an embedding host
  await t.rejects(detectInfraboxSchema(database.db), /^the database lacks job\.console/)
})
