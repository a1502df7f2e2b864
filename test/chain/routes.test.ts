// SPEC §5 over HTTP with the fixture: every data route's shape (checked against schemas/data.ts), order, filters, paging, logs, artifacts, trigger rows.
import t, { type Test } from 'tap'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { Value } from 'typebox/value'
import type { TSchema } from '@fastify/type-provider-typebox'
import { buildApp } from '../helpers/app.js'
import { API, assertError, bearer, createToken, header, RELAXED_LIMITER, type Answer } from '../helpers/chain.js'
import { ARTIFACTS, ARTIFACT_BINARY, COMPILE_LOG, DEPLOY_LOG, FIXTURE, seedFixture } from '../../db/seed.js'
import {
  ArtifactPage, BuildDetail, BuildPage, Job, JobLog, JobPage, Project, ProjectPage, TestRunPage, TriggerResult
} from '../../schemas/data.js'
import { CREATE_JOBS_DEFINITION } from '../../db/trigger.js'

const { projects: P, builds: B, jobs: J, commits: C, testRuns: TR } = FIXTURE

// Artifacts live in a root of their own; a sentinel sits just outside every directory a traversal could reach.
const sandbox = await mkdtemp(join(tmpdir(), 'mcp-chain-routes-'))
t.teardown(async () => { await rm(sandbox, { recursive: true, force: true }) })
const artifactRoot = join(sandbox, 'artifacts')
const SENTINEL = 'SENTINEL-outside-the-artifact-store'
const TRAVERSALS = ['../outside.txt', '../../outside.txt', '../../../outside.txt', 'a/b', '..', '.', 'x\u0000y', '..\\outside.txt', '/etc/passwd', '%2e%2e%2foutside.txt', 'link.txt']

const { app, database, session } = await buildApp(t, {
  limits: { default: 10_000, log: 10_000, artifact: 10_000, trigger: 10_000 },
  env: { ARTIFACT_FS_ROOT: artifactRoot, ...RELAXED_LIMITER },
  seed: async ({ db }) => {
    await seedFixture(db, { artifactRoot })
    // Outside the store, and inside it but not under the job's own directory.
    await writeFile(join(sandbox, 'outside.txt'), SENTINEL)
    await writeFile(join(artifactRoot, 'outside.txt'), SENTINEL)
    await writeFile(join(artifactRoot, 'archive', 'outside.txt'), SENTINEL)
    // In storage under the compile job but not listed in its job.archive.
    await writeFile(join(artifactRoot, 'archive', J.compile, 'secret.txt'), SENTINEL)
    // A job whose archive (written by InfraBox, not us) lists hostile names next to a good one.
    const unitDir = join(artifactRoot, 'archive', J.b2Unit)
    await mkdir(unitDir, { recursive: true })
    await writeFile(join(unitDir, 'ok.txt'), 'fine\n')
    await symlink(join(sandbox, 'outside.txt'), join(unitDir, 'link.txt'))
    // jsonb cannot hold NUL: that name is only ever asked for, never listed.
    const entries = [...TRAVERSALS.filter(n => !n.includes('\u0000')), 'ok.txt'].map(filename => ({ filename, size: 5 }))
    await sql`UPDATE job SET archive = array(select jsonb_array_elements(${JSON.stringify(entries)}::jsonb)) WHERE id = ${J.b2Unit}`.execute(db)
  }
})
const db = database.db
const demo = await createToken(app, await session(FIXTURE.users.demo), { allow_trigger: true })

const get = async (url: string, headers: Record<string, string> = {}): Promise<Answer> =>
  await app.inject({ method: 'GET', url: `${API}${url}`, headers: { ...bearer(demo.token), ...headers } })
const trigger = async (projectId: string, body: object): Promise<Answer> =>
  await app.inject({ method: 'POST', url: `${API}/projects/${projectId}/trigger`, headers: bearer(demo.token), payload: body })

/** 200 and the body valid against its TypeBox schema (the contract's own definition, not a re-typed shape). */
function ok (t: Test, res: Answer, schema: TSchema, what: string): any {
  t.equal(res.statusCode, 200, `${what}: 200`)
  const body = res.json()
  const errors = [...Value.Errors(schema, body)].slice(0, 3)
  t.same(errors, [], `${what}: matches its schema`)
  return body
}

/** Follows next_cursor to the end; every page valid; returns the items in order. */
async function walk (t: Test, url: string, schema: TSchema, limit: number): Promise<any[]> {
  const items: any[] = []
  let cursor: string | null = null
  const sep = url.includes('?') ? '&' : '?'
  for (let page = 0; page < 100; page++) {
    const body = ok(t, await get(`${url}${sep}limit=${limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`), schema, `${url} page ${page + 1}`)
    t.ok(body.items.length <= limit, 'page within the limit')
    items.push(...body.items)
    cursor = body.next_cursor
    if (cursor === null) return items
  }
  throw new Error('paging did not end')
}

const at = (hours: number, minutes = 0): string => new Date(Date.UTC(2024, 0, 1, hours, minutes)).toISOString()

t.test('list_projects and get_project: the owner\'s collaborations, by name, with role; paging; 400s', async t => {
  const body = ok(t, await get('/projects'), ProjectPage, 'list_projects')
  t.same(body.items, [
    { id: P.gerrit, name: 'demo-gerrit', type: 'gerrit', public: false, role: 'Administrator' },
    { id: P.github, name: 'demo-github', type: 'github', public: false, role: 'Owner' },
    { id: P.test, name: 'demo-test', type: 'test', public: false, role: 'Developer' },
    { id: P.upload, name: 'demo-upload', type: 'upload', public: false, role: 'Developer' },
    { id: P.uploadEmpty, name: 'demo-upload-empty', type: 'upload', public: false, role: 'Developer' }
  ])
  t.equal(body.next_cursor, null)
  t.same(await walk(t, '/projects', ProjectPage, 2), body.items, 'paged by 2: the same list')
  const one = ok(t, await get(`/projects/${P.github}`), Project, 'get_project')
  t.same(one, body.items[1])

  const buildsCursor = (await get(`/projects/${P.github}/builds?limit=1`)).json().next_cursor as string
  for (const [what, url] of [
    ['limit 0', '/projects?limit=0'], ['limit 101', '/projects?limit=101'], ['limit not a number', '/projects?limit=ten'],
    ['project id not a uuid', '/projects/1234'], ['project id almost a uuid', `/projects/${P.github}x`]
  ] as const) assertError(t, await get(url), 400, 'FST_ERR_VALIDATION', what)
  for (const [what, url] of [
    ['a cursor never issued', '/projects?cursor=bm9wZQ'], ['a cursor of another list', `/projects?cursor=${buildsCursor}`],
    ['a forged cursor', `/projects?cursor=${Buffer.from(JSON.stringify({ v: 1, k: 'projects', p: ["x' OR 1=1 --", 'nope'] })).toString('base64url')}`]
  ] as const) {
    const res = await get(url)
    t.equal(res.statusCode, 400, what)
    t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'], `${what}: error shape`)
  }
  assertError(t, await get('/projects/nope/nothing/here'), 404, 'MCP_NOT_FOUND', 'an unknown route in the namespace')
  t.equal((await get('/projects?limit=100')).statusCode, 200, 'limit 100 is fine')
  t.equal((await get('/projects?limit=1')).statusCode, 200, 'limit 1 is fine')
})

// The fixture's github builds, newest first, with the status and branch each must show.
const GITHUB_BUILDS = [
  { id: B.b8, n: 8, r: 1, sha: C.main3, branch: 'main', status: 'running', created: at(8), finished: null },
  { id: B.b7, n: 7, r: 1, sha: C.login2, branch: 'feature/login', status: 'running', created: at(7), finished: null },
  { id: B.b6restart, n: 6, r: 2, sha: C.main3, branch: 'main', status: 'finished', created: at(6), finished: at(6, 10) },
  { id: B.b6, n: 6, r: 1, sha: C.main3, branch: 'main', status: 'failure', created: at(5), finished: at(5, 10) },
  { id: B.b5, n: 5, r: 1, sha: C.release1, branch: 'release/1.0', status: 'unstable', created: at(4), finished: at(4, 11) },
  { id: B.b4, n: 4, r: 1, sha: C.main2, branch: 'main', status: 'killed', created: at(3), finished: at(3, 11) },
  { id: B.b3, n: 3, r: 1, sha: C.main2, branch: 'main', status: 'error', created: at(2), finished: at(2, 11) },
  { id: B.b2, n: 2, r: 1, sha: C.login1, branch: 'feature/login', status: 'failure', created: at(1), finished: at(1, 12) },
  { id: B.b1, n: 1, r: 1, sha: C.main1, branch: 'main', status: 'finished', created: at(0), finished: at(0, 11) }
]
const summary = (b: typeof GITHUB_BUILDS[number]) => ({
  id: b.id, build_number: b.n, restart_counter: b.r, commit_sha: b.sha, branch: b.branch, source: 'github', created_at: b.created, finished_at: b.finished, status: b.status
})

t.test('list_builds: newest first with derived statuses; branch/status filters; cursor paging end to end', async t => {
  const url = `/projects/${P.github}/builds`
  const all = ok(t, await get(`${url}?limit=100`), BuildPage, 'list_builds')
  t.same(all.items, GITHUB_BUILDS.map(summary), 'order, statuses, branches, times')
  t.equal(all.next_cursor, null)
  const first = ok(t, await get(url), BuildPage, 'default limit')
  t.equal(first.items.length, 9)
  t.same(await walk(t, url, BuildPage, 2), all.items, 'paged by 2')
  t.same(await walk(t, url, BuildPage, 1), all.items, 'paged by 1')

  const ids = async (query: string): Promise<string[]> => (ok(t, await get(`${url}?${query}`), BuildPage, query).items as Array<{ id: string }>).map(b => b.id)
  t.same(await ids('branch=feature/login'), [B.b7, B.b2], 'branch filter')
  t.same(await ids(`branch=${encodeURIComponent('release/1.0')}`), [B.b5])
  t.same(await ids('branch=elsewhere'), [], 'the same sha in another project is not this project\'s branch')
  t.same(await ids('branch=nope'), [])
  for (const status of ['running', 'failure', 'error', 'killed', 'unstable', 'finished']) {
    t.same(await ids(`status=${status}`), GITHUB_BUILDS.filter(b => b.status === status).map(b => b.id), `status=${status}`)
  }
  t.same(await ids('branch=main&status=failure'), [B.b6], 'both filters')
  const failures = await walk(t, `${url}?status=failure`, BuildPage, 1)
  t.same(failures.map(b => b.id), [B.b6, B.b2], 'filtered paging')

  const upload = ok(t, await get(`/projects/${P.upload}/builds`), BuildPage, 'upload project')
  t.same(upload.items, [{ id: B.upload1, build_number: 1, restart_counter: 1, commit_sha: null, branch: null, source: 'upload', created_at: at(0), finished_at: at(0, 10), status: 'finished' }])
  t.same(ok(t, await get(`/projects/${P.uploadEmpty}/builds`), BuildPage, 'no builds').items, [])

  for (const q of ['status=bogus', 'status=queued', 'status=', 'limit=0', 'limit=101', 'limit=-1', 'branch=']) {
    assertError(t, await get(`${url}?${q}`), 400, 'FST_ERR_VALIDATION', q)
  }
  const projectsCursor = (await get('/projects?limit=1')).json().next_cursor as string
  t.equal((await get(`${url}?cursor=${projectsCursor}`)).statusCode, 400, 'a cursor of another list')
  t.equal((await get(`${url}?cursor=!!!`)).statusCode, 400, 'not base64url')
})

t.test('get_build: the build with its commit (of this project) and its jobs', async t => {
  const url = (p: string, b: string) => `/projects/${p}/builds/${b}`
  const b2 = ok(t, await get(url(P.github, B.b2)), BuildDetail, 'get_build b2')
  const { commit, jobs, ...rest } = b2
  t.same(rest, summary(GITHUB_BUILDS[7] as typeof GITHUB_BUILDS[number]))
  t.same(commit, { sha: C.login1, message: 'Login form', author_name: 'Demo User', author_email: 'demo@infrabox.local', url: `https://git.example.com/commit/${C.login1}`, branch: 'feature/login' })
  t.same(jobs.map((j: { name: string, state: string }) => `${j.name}:${j.state}`), ['Create Jobs:finished', 'unit:finished', 'lint:failure', 'e2e:error'])
  t.same(jobs.map((j: { id: string }) => j.id), [J.b2Create, J.b2Unit, J.b2Lint, J.b2E2e])

  const b1 = ok(t, await get(url(P.github, B.b1)), BuildDetail, 'get_build b1')
  t.equal(b1.commit.branch, 'main', 'the sha also exists in another project: this project\'s commit row')
  t.equal(b1.commit.message, 'Initial import')
  const upload = ok(t, await get(url(P.upload, B.upload1)), BuildDetail, 'upload build')
  t.equal(upload.commit, null)
  const running = ok(t, await get(url(P.github, B.b8)), BuildDetail, 'running build')
  t.equal(running.status, 'running')
  t.equal(running.finished_at, null)

  assertError(t, await get(url(P.github, B.public1)), 404, 'MCP_NOT_FOUND', 'a build of another project')
  assertError(t, await get(url(P.github, '6a1e0b7e-0000-4000-8000-000000000000')), 404, 'MCP_NOT_FOUND', 'no such build')
  assertError(t, await get(url(P.github, 'b2')), 400, 'FST_ERR_VALIDATION', 'not a uuid')
})

t.test('list_jobs and get_job: jobs in creation order with dependencies; paging; 404s', async t => {
  const url = `/projects/${P.github}/builds/${B.b2}/jobs`
  const all = ok(t, await get(url), JobPage, 'list_jobs')
  t.same(all.items.map((j: { id: string }) => j.id), [J.b2Create, J.b2Unit, J.b2Lint, J.b2E2e])
  t.same(await walk(t, url, JobPage, 1), all.items, 'paged by 1')
  const [create, unit, lint, e2e] = all.items
  t.same(create.dependencies, [])
  t.same(unit.dependencies, [{ job: 'Create Jobs', job_id: J.b2Create, on: ['finished'] }])
  t.match(create, { name: 'Create Jobs', type: 'create_job_matrix', state: 'finished', build_id: B.b2, created_at: at(1), start_date: at(1), end_date: at(1, 1), message: null })
  t.match(lint, { name: 'lint', type: 'run_project_container', state: 'failure', message: 'lint found 3 problems', end_date: at(1, 11) })
  t.match(e2e, { name: 'e2e', type: 'run_docker_compose', state: 'error', message: 'docker-compose failed to start' })

  const job = ok(t, await get(`/projects/${P.github}/jobs/${J.compile}`), Job, 'get_job')
  t.match(job, { id: J.compile, build_id: B.b1, name: 'compile', type: 'run_project_container', state: 'finished', start_date: at(0, 3), end_date: at(0, 10), created_at: at(0, 2) })
  const queued = ok(t, await get(`/projects/${P.github}/jobs/${J.b8B}`), Job, 'queued job')
  t.equal(queued.start_date, null)
  t.equal(queued.end_date, null)

  assertError(t, await get(`/projects/${P.github}/builds/${B.public1}/jobs`), 404, 'MCP_NOT_FOUND', 'jobs of another project\'s build')
  assertError(t, await get(`/projects/${P.github}/jobs/${J.publicRun}`), 404, 'MCP_NOT_FOUND', 'a job of another project')
  assertError(t, await get(`/projects/${P.github}/jobs/not-a-job`), 400, 'FST_ERR_VALIDATION', 'not a uuid')
  const projectsCursor = (await get('/projects?limit=1')).json().next_cursor as string
  t.equal((await get(`${url}?cursor=${projectsCursor}`)).statusCode, 400, 'a cursor of another list')
})

t.test('list_test_runs: by suite then name, state filter, paging', async t => {
  const url = `/projects/${P.github}/jobs/${J.compile}/testruns`
  const all = ok(t, await get(url), TestRunPage, 'list_test_runs')
  t.same(all.items.map((r: { id: string }) => r.id), [TR.noSuite, TR.ok, TR.failure, TR.error, TR.skipped])
  t.same(await walk(t, url, TestRunPage, 2), all.items, 'paged by 2')
  const failures = ok(t, await get(`${url}?state=failure`), TestRunPage, 'state=failure')
  t.same(failures.items, [{ id: TR.failure, suite: 'api', name: 'pages builds', state: 'failure', duration: 0.25, message: 'expected 3, got 2', stack: 'at builds.test.ts:10:5', timestamp: at(0, 5) }])
  t.same(ok(t, await get(`${url}?state=error`), TestRunPage, 'state=error').items.map((r: { id: string }) => r.id), [TR.error])
  t.same(ok(t, await get(`/projects/${P.github}/jobs/${J.b2Unit}/testruns`), TestRunPage, 'no test runs').items, [])
  assertError(t, await get(`${url}?state=passed`), 400, 'FST_ERR_VALIDATION', 'state outside the enumeration')
  assertError(t, await get(`/projects/${P.github}/jobs/${J.publicRun}/testruns`), 404, 'MCP_NOT_FOUND', 'a job of another project')
})

t.test('get_job_log: job.console for finished jobs, console rows by date for running ones, windows, text/plain, 410', async t => {
  const url = (jobId: string, q = '') => `/projects/${P.github}/jobs/${jobId}/log${q}`
  const compileBytes = Buffer.from(COMPILE_LOG, 'utf8')
  const total = compileBytes.length
  t.same(ok(t, await get(url(J.compile)), JobLog, 'finished job'), { log: COMPILE_LOG, total_bytes: total, offset: 0, length: total, truncated: false }, 'the whole job.console')
  const deployBytes = Buffer.byteLength(DEPLOY_LOG)
  t.same(ok(t, await get(url(J.deploy)), JobLog, 'running job'), { log: DEPLOY_LOG, total_bytes: deployBytes, offset: 0, length: deployBytes, truncated: false }, 'console rows in date order')

  t.same(ok(t, await get(url(J.compile, '?offset=10&length=20')), JobLog, 'offset+length'),
    { log: compileBytes.subarray(10, 30).toString('utf8'), total_bytes: total, offset: 10, length: 20, truncated: true })
  const lastLine = '10:00:03|Build finished\n'
  t.same(ok(t, await get(url(J.compile, `?length=${lastLine.length}`)), JobLog, 'length alone: the end'),
    { log: lastLine, total_bytes: total, offset: total - lastLine.length, length: lastLine.length, truncated: true })
  const lines = COMPILE_LOG.split('\n').filter(l => l !== '')
  const tail2 = ok(t, await get(url(J.compile, '?tail=2')), JobLog, 'tail=2')
  t.equal(tail2.log, `${lines.slice(-2).join('\n')}\n`)
  t.equal(tail2.offset + tail2.length, total)
  t.equal(tail2.truncated, true)
  t.equal(ok(t, await get(url(J.deploy, '?tail=1')), JobLog, 'tail of a running job').log, '07:00:03|Step 2 — done\n')
  t.equal(ok(t, await get(url(J.compile, '?tail=100')), JobLog, 'more lines than the log').log, COMPILE_LOG)
  t.match(ok(t, await get(url(J.compile, `?offset=${total}`)), JobLog, 'offset at the end'), { log: '', offset: total, length: 0 })
  // A window that starts inside a multi-byte character starts at the next whole one.
  const multi = compileBytes.indexOf(Buffer.from('ö'))
  const inside = ok(t, await get(url(J.compile, `?offset=${multi + 1}&length=10`)), JobLog, 'offset inside a character')
  t.equal(inside.offset, multi + 2)
  t.equal(inside.log, compileBytes.subarray(multi + 2, inside.offset + inside.length).toString('utf8'))
  t.same(ok(t, await get(url(J.b8B)), JobLog, 'a queued job without output'), { log: '', total_bytes: 0, offset: 0, length: 0, truncated: false })

  const text = await get(url(J.compile), { accept: 'text/plain' })
  t.equal(text.statusCode, 200)
  t.match(header(text, 'content-type'), /^text\/plain; ?charset=utf-8$/)
  t.equal(text.body, COMPILE_LOG, 'the log as text')
  t.equal(header(text, 'x-log-total-bytes'), String(total))
  const textTail = await get(url(J.deploy, '?tail=1'), { accept: 'text/plain, application/json;q=0.5' })
  t.equal(textTail.body, '07:00:03|Step 2 — done\n')
  const json = await get(url(J.compile), { accept: 'application/json, text/plain;q=0.5' })
  t.match(header(json, 'content-type'), /^application\/json/)

  assertError(t, await get(url(J.legacy)), 410, 'MCP_GONE', 'a log the collector deleted')
  assertError(t, await get(url(J.legacy), { accept: 'text/plain' }), 410, 'MCP_GONE', 'deleted, asked as text')
  assertError(t, await get(url(J.compile, '?tail=2&offset=1')), 400, 'MCP_BAD_REQUEST', 'tail with offset')
  for (const q of ['?length=0', '?tail=0', '?offset=-1', `?length=${1024 * 1024 + 1}`, '?tail=x']) {
    assertError(t, await get(url(J.compile, q)), 400, 'FST_ERR_VALIDATION', q)
  }
  assertError(t, await get(url(J.publicRun)), 404, 'MCP_NOT_FOUND', 'a job of another project')
})

t.test('list_artifacts and download: job.archive, exact bytes streamed with type and disposition, 404 and traversal-proof', async t => {
  const listUrl = (jobId: string) => `/projects/${P.github}/jobs/${jobId}/artifacts`
  const list = ok(t, await get(listUrl(J.compile)), ArtifactPage, 'list_artifacts')
  t.same(list, { items: [{ filename: 'report.txt', size: ARTIFACTS.text.content.length }, { filename: 'coverage.bin', size: 512 }], next_cursor: null })
  t.same(ok(t, await get(listUrl(J.b1Create)), ArtifactPage, 'no archive').items, [])
  assertError(t, await get(listUrl(J.publicRun)), 404, 'MCP_NOT_FOUND', 'a job of another project')

  // Over a real socket, so the stream is what a client receives.
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const download = async (jobId: string, filename: string): Promise<Response> =>
    await fetch(`${base}${API}/projects/${P.github}/jobs/${jobId}/artifacts/download?filename=${encodeURIComponent(filename)}`, { headers: bearer(demo.token) })

  const text = await download(J.compile, 'report.txt')
  t.equal(text.status, 200)
  t.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8')
  t.equal(text.headers.get('content-disposition'), 'attachment; filename="report.txt"; filename*=UTF-8\'\'report.txt')
  t.equal(text.headers.get('content-length'), String(ARTIFACTS.text.content.length))
  t.same(Buffer.from(await text.arrayBuffer()), ARTIFACTS.text.content, 'text: exact bytes')

  const binary = await download(J.compile, 'coverage.bin')
  t.equal(binary.status, 200)
  t.equal(binary.headers.get('content-type'), 'application/octet-stream')
  t.match(binary.headers.get('content-disposition') ?? '', /^attachment; filename="coverage\.bin"/)
  t.ok(Buffer.from(await binary.arrayBuffer()).equals(ARTIFACT_BINARY), 'binary: exact bytes, no text conversion')

  const secret = await download(J.compile, 'secret.txt')
  t.equal(secret.status, 404, 'in storage but not in job.archive: 404')
  t.equal(((await secret.json()) as { code: string }).code, 'MCP_NOT_FOUND')
  t.equal((await download(J.compile, 'nothing.txt')).status, 404)
  t.equal((await download(J.publicRun, 'public.txt')).status, 404, 'another project\'s job')

  const good = await download(J.b2Unit, 'ok.txt')
  t.equal(await good.text(), 'fine\n', 'the listed, well-named file of that job')
  for (const name of TRAVERSALS) {
    for (const jobId of [J.b2Unit, J.compile]) {
      const res = await download(jobId, name)
      const body = await res.text()
      t.ok(res.status === 400 || res.status === 404, `${JSON.stringify(name)} (${jobId === J.b2Unit ? 'listed in job.archive' : 'not listed'}): ${res.status}`)
      t.notOk(body.includes(SENTINEL), `${JSON.stringify(name)}: nothing from outside`)
      t.same(Object.keys(JSON.parse(body) as object).sort(), ['code', 'error', 'message', 'statusCode'])
    }
  }
  const raw = await fetch(`${base}${API}/projects/${P.github}/jobs/${J.compile}/artifacts/download?filename=..%2F..%2F..%2Foutside.txt`, { headers: bearer(demo.token) })
  t.ok(raw.status === 400 || raw.status === 404, 'encoded separators')
  t.notOk((await raw.text()).includes(SENTINEL))
  const noName = await fetch(`${base}${API}/projects/${P.github}/jobs/${J.compile}/artifacts/download`, { headers: bearer(demo.token) })
  t.equal(noName.status, 400, 'filename is required')
  t.equal((await download(J.compile, 'x'.repeat(256))).status, 400, 'filename too long')
})

t.test('trigger: git (branch, sha, prefix) and upload builds written exactly as InfraBox does, source mcp', async t => {
  const rows = async (buildId: string) => ({
    build: await db.selectFrom('build').selectAll().where('id', '=', buildId).executeTakeFirstOrThrow(),
    jobs: await db.selectFrom('job').selectAll().where('build_id', '=', buildId).execute()
  })
  const expectCreateJobs = (t: Test, job: any, projectId: string, buildId: string, repo: unknown, env: unknown) => {
    t.match(job, { state: 'queued', type: 'create_job_matrix', name: 'Create Jobs', dockerfile: '', build_id: buildId, project_id: projectId, console: null, start_date: null, end_date: null })
    t.same(job.definition, CREATE_JOBS_DEFINITION, 'definition')
    t.same(job.definition, { build_only: false, infrabox_file: 'infrabox.json', resources: { limits: { cpu: 0.5, memory: 1024 } } })
    t.same(job.repo, repo, 'repo')
    t.same(job.env_var, env, 'env_var')
    t.ok(Math.abs(new Date(job.created_at).getTime() - Date.now()) < 60_000, 'created now')
  }

  const branch = await trigger(P.github, { branch: 'main' })
  t.equal(branch.statusCode, 201)
  t.same([...Value.Errors(TriggerResult, branch.json())], [], 'TriggerResult')
  const made = branch.json().build
  t.match(made, { build_number: 9, restart_counter: 1 })
  let r = await rows(made.id)
  t.match(r.build, { id: made.id, project_id: P.github, build_number: 9, restart_counter: 1, commit_id: C.main3, source_upload_id: null, source: 'mcp' })
  t.equal(r.jobs.length, 1, 'exactly one job: Create Jobs')
  expectCreateJobs(t, r.jobs[0], P.github, made.id, { commit: C.main3, clone_url: 'https://github.com/demo/demo-github.git', clone_all: true }, null)

  const listed = ok(t, await get(`/projects/${P.github}/builds?limit=1`), BuildPage, 'the new build in the list')
  t.match(listed.items[0], { id: made.id, build_number: 9, source: 'mcp', status: 'running', branch: 'main', commit_sha: C.main3, finished_at: null })

  const sha = await trigger(P.github, { sha: C.login1, env: { FOO: 'bar', EMPTY: '' } })
  t.equal(sha.statusCode, 201)
  r = await rows(sha.json().build.id)
  t.match(r.build, { build_number: 10, commit_id: C.login1, source: 'mcp' })
  expectCreateJobs(t, r.jobs[0], P.github, r.build.id, { commit: C.login1, clone_url: 'https://github.com/demo/demo-github.git', clone_all: true }, { FOO: 'bar', EMPTY: '' })

  const prefix = await trigger(P.github, { sha: C.release1.slice(0, 7).toUpperCase(), branch: 'release/1.0' })
  t.equal(prefix.statusCode, 201, 'a 7-digit prefix on its branch')
  t.equal((await rows(prefix.json().build.id)).build.commit_id, C.release1)

  const gerrit = await trigger(P.gerrit, { branch: 'master' })
  t.equal(gerrit.statusCode, 201, 'gerrit')
  r = await rows(gerrit.json().build.id)
  t.match(r.build, { build_number: 1, commit_id: C.gerritMaster })
  t.same(r.jobs[0]?.repo, { commit: C.gerritMaster, clone_url: 'ssh://infrabox@gerrit.example.com:29418/demo-gerrit', clone_all: true })

  const upload = await trigger(P.upload, {})
  t.equal(upload.statusCode, 201, 'upload project with an earlier upload')
  r = await rows(upload.json().build.id)
  t.match(r.build, { project_id: P.upload, build_number: 2, restart_counter: 1, commit_id: null, source_upload_id: FIXTURE.sourceUploads.upload, source: 'mcp' })
  t.equal(r.jobs.length, 1)
  expectCreateJobs(t, r.jobs[0], P.upload, r.build.id, null, null)

  assertError(t, await trigger(P.uploadEmpty, {}), 409, 'MCP_CONFLICT', 'upload project without an upload')
  assertError(t, await trigger(P.upload, { branch: 'main' }), 422, 'MCP_UNPROCESSABLE', 'branch on an upload project')
  assertError(t, await trigger(P.github, { sha: 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeef' }), 422, 'MCP_UNPROCESSABLE', 'unknown sha')
  assertError(t, await trigger(P.github, {}), 422, 'MCP_UNPROCESSABLE', 'neither branch nor sha')
  assertError(t, await trigger(P.github, { branch: 'no-such-branch' }), 422, 'MCP_UNPROCESSABLE', 'a branch without commits')
  assertError(t, await trigger(P.github, { sha: C.login1, branch: 'main' }), 422, 'MCP_UNPROCESSABLE', 'sha not on the branch')
  assertError(t, await trigger(P.github, { sha: C.main1.slice(0, 40 - 1) + 'g' }), 400, 'FST_ERR_VALIDATION', 'sha not hex')
  // A badly named variable is refused, not silently dropped from the build's environment.
  assertError(t, await trigger(P.github, { branch: 'main', env: { '1BAD': 'x', GOOD: 'y' } }), 400, 'FST_ERR_VALIDATION', 'env name')
  assertError(t, await trigger(P.github, { branch: 'main', env: { 'A-B': 'x' } }), 400, 'FST_ERR_VALIDATION', 'env name with a dash')
  const notJson = await app.inject({ method: 'POST', url: `${API}/projects/${P.github}/trigger`, headers: { ...bearer(demo.token), 'content-type': 'application/json' }, payload: '{"branch":' })
  t.equal(notJson.statusCode, 400, 'malformed JSON')
  t.equal(notJson.json().statusCode, 400)
  const builds = await db.selectFrom('build').select(['build_number']).where('project_id', '=', P.github).where('source', '=', 'mcp').execute()
  t.same(builds.map(b => b.build_number).sort((a, b) => a - b), [9, 10, 11], 'refused triggers wrote nothing')
})

t.test('concurrent triggers get distinct, consecutive build numbers', async t => {
  const { last } = await db.selectFrom('build').select(eb => eb.fn.max('build_number').as('last')).where('project_id', '=', P.test).executeTakeFirstOrThrow()
  const start = (last ?? 0) + 1
  const answers = await Promise.all(Array.from({ length: 12 }, async (_, i) => await trigger(P.test, { branch: 'master', env: { N: String(i) } })))
  t.same(answers.map(a => a.statusCode), Array(12).fill(201))
  const numbers = answers.map(a => a.json().build.build_number as number).sort((a, b) => a - b)
  t.same(numbers, Array.from({ length: 12 }, (_, i) => start + i), 'no duplicates, no gaps')
  const jobs = await db.selectFrom('job').innerJoin('build', 'build.id', 'job.build_id')
    .select(['build.build_number', 'job.name', 'job.state']).where('build.project_id', '=', P.test).where('build.source', '=', 'mcp').execute()
  t.equal(jobs.length, 12, 'one Create Jobs job per build')
  t.ok(jobs.every(j => j.name === 'Create Jobs' && j.state === 'queued'))
})
