// Hostile input, part 2: every data route (SPEC §5) with non-UUID, injected, unicode, NUL, huge and foreign ids in
// every path parameter; negative, huge and non-numeric paging; forged and foreign cursors; filters outside their
// enumeration; duplicate query keys; log windows out of range; path traversal in artifact names. Each row: exact
// status and code, and its audit row (every data route is in the chain: audited, the router's own refusals aside).
import t from 'tap'
import { buildApp } from '../helpers/app.js'
import { API, bearer, createToken } from '../helpers/chain.js'
import { LogCapture, report } from '../helpers/faults.js'
import { runTable, snapshot, type Case } from '../helpers/hostile.js'
import { scanDatabase, scanText } from '../helpers/secrets.js'
import { FIXTURE, seedFixture } from '../../db/seed.js'
import { encodeCursor } from '../../lib/cursor.js'

const logs = new LogCapture()
const big = { default: 1_000_000, log: 1_000_000, artifact: 1_000_000, trigger: 1_000_000 }
const { app, database, session } = await buildApp(t, { env: { LOG_LEVEL: 'info' }, limits: big, seed: async ({ db }) => { await seedFixture(db) }, logStream: logs })
const db = database.db
const { users: U, projects: P, builds: B, jobs: J } = FIXTURE
const jwt = await session(U.demo)
const made = await createToken(app, jwt, { name: 'hostile params', allow_trigger: true })
const h = bearer(made.token)
const scoped = await createToken(app, jwt, { name: 'scoped', enabled_projects: { [P.upload]: null } })
const pj = `${API}/projects/${P.github}`

// ---- every path parameter of every route, with ids that are not ids
interface Route { action: string, method?: string, path: (p: string, b: string, j: string) => string, params: Array<'p' | 'b' | 'j'>, payload?: object }
const ROUTES: Route[] = [
  { action: 'get_project', path: p => `${API}/projects/${p}`, params: ['p'] },
  { action: 'list_builds', path: p => `${API}/projects/${p}/builds`, params: ['p'] },
  { action: 'get_build', path: (p, b) => `${API}/projects/${p}/builds/${b}`, params: ['p', 'b'] },
  { action: 'list_jobs', path: (p, b) => `${API}/projects/${p}/builds/${b}/jobs`, params: ['p', 'b'] },
  { action: 'get_job', path: (p, _b, j) => `${API}/projects/${p}/jobs/${j}`, params: ['p', 'j'] },
  { action: 'list_test_runs', path: (p, _b, j) => `${API}/projects/${p}/jobs/${j}/testruns`, params: ['p', 'j'] },
  { action: 'get_job_log', path: (p, _b, j) => `${API}/projects/${p}/jobs/${j}/log`, params: ['p', 'j'] },
  { action: 'list_artifacts', path: (p, _b, j) => `${API}/projects/${p}/jobs/${j}/artifacts`, params: ['p', 'j'] },
  { action: 'get_artifact', path: (p, _b, j) => `${API}/projects/${p}/jobs/${j}/artifacts/download?filename=report.txt`, params: ['p', 'j'] },
  { action: 'trigger_build', method: 'POST', path: p => `${API}/projects/${p}/trigger`, params: ['p'], payload: { branch: 'main' } }
]
const BAD_IDS: Array<{ name: string, value: string, status: number, code: string, audited: boolean }> = [
  { name: 'not a UUID', value: 'not-a-uuid', status: 400, code: 'FST_ERR_VALIDATION', audited: true },
  { name: 'SQL injection', value: encodeURIComponent("' OR '1'='1"), status: 400, code: 'FST_ERR_VALIDATION', audited: true },
  { name: 'UNION SELECT', value: encodeURIComponent(`${P.github}' UNION SELECT token_hash FROM mcp_token--`), status: 400, code: 'FST_ERR_VALIDATION', audited: true },
  { name: 'a UUID with a NUL', value: `${P.github}%00`, status: 400, code: 'FST_ERR_VALIDATION', audited: true },
  { name: 'full-width unicode digits', value: encodeURIComponent('０００００００００-００００-４０００-８０００-０００２０００００００１'), status: 400, code: 'FST_ERR_VALIDATION', audited: true },
  { name: 'JSON object', value: encodeURIComponent('{"$ne":null}'), status: 400, code: 'FST_ERR_VALIDATION', audited: true },
  { name: 'negative number', value: '-1', status: 400, code: 'FST_ERR_VALIDATION', audited: true },
  { name: 'a 200-character id', value: 'f'.repeat(200), status: 400, code: 'FST_ERR_VALIDATION', audited: true },
  { name: 'a 5000-character id', value: 'f'.repeat(5000), status: 414, code: 'FST_ERR_MAX_PARAM_LENGTH', audited: false }
]
const idCases: Case[] = ROUTES.flatMap(r => r.params.flatMap(param => BAD_IDS.map((bad): Case => {
  const ids = { p: P.github, b: B.b1, j: J.compile, [param]: bad.value }
  return {
    name: `${r.action}: ${bad.name} as ${{ p: 'projectId', b: 'buildId', j: 'jobId' }[param]}`,
    method: r.method ?? 'GET',
    url: r.path(ids.p, ids.b, ids.j),
    headers: h,
    ...(r.payload !== undefined ? { payload: r.payload } : {}),
    status: bad.status,
    code: bad.code,
    audit: bad.audited ? r.action : null,
    ...(bad.audited ? { tokenId: made.token_id } : { why: 'a parameter over maxParamLength is refused by the router, before any route scope' })
  }
})))

// ---- ids that are well-formed but not this token's to see (IDOR)
const get = (name: string, url: string, status: number, code: string, audit: string, extra: Partial<Case> = {}): Case =>
  ({ name, url, headers: h, status, code, audit, tokenId: made.token_id, ...extra })
const idorCases: Case[] = [
  get('a project that does not exist', `${API}/projects/00000000-0000-4000-8000-00000000beef`, 404, 'MCP_NOT_FOUND', 'get_project'),
  get('the nil UUID', `${API}/projects/00000000-0000-0000-0000-000000000000`, 404, 'MCP_NOT_FOUND', 'get_project'),
  get('a public project the owner does not collaborate on', `${API}/projects/${P.public}`, 403, 'MCP_PROJECT_FORBIDDEN', 'get_project'),
  get('builds of that public project', `${API}/projects/${P.public}/builds`, 403, 'MCP_PROJECT_FORBIDDEN', 'list_builds'),
  get('a build of the public project under an own project', `${pj}/builds/${B.public1}`, 404, 'MCP_NOT_FOUND', 'get_build'),
  get('jobs of that build under an own project', `${pj}/builds/${B.public1}/jobs`, 404, 'MCP_NOT_FOUND', 'list_jobs'),
  get('a job of the public project under an own project', `${pj}/jobs/${J.publicRun}`, 404, 'MCP_NOT_FOUND', 'get_job'),
  get('its log under an own project', `${pj}/jobs/${J.publicRun}/log`, 404, 'MCP_NOT_FOUND', 'get_job_log'),
  get('its test runs under an own project', `${pj}/jobs/${J.publicRun}/testruns`, 404, 'MCP_NOT_FOUND', 'list_test_runs'),
  get('its artifacts under an own project', `${pj}/jobs/${J.publicRun}/artifacts`, 404, 'MCP_NOT_FOUND', 'list_artifacts'),
  get('its artifact under an own project', `${pj}/jobs/${J.publicRun}/artifacts/download?filename=public.txt`, 404, 'MCP_NOT_FOUND', 'get_artifact'),
  get('a build of another own project (upload) under github', `${pj}/builds/${B.upload1}`, 404, 'MCP_NOT_FOUND', 'get_build'),
  get('a job id given as a build id', `${pj}/builds/${J.compile}`, 404, 'MCP_NOT_FOUND', 'get_build'),
  get('a build id given as a job id', `${pj}/jobs/${B.b1}`, 404, 'MCP_NOT_FOUND', 'get_job'),
  get('a project outside a narrowed token\'s scope', pj, 403, 'MCP_PROJECT_FORBIDDEN', 'get_project', { headers: bearer(scoped.token), tokenId: scoped.token_id }),
  get('its builds', `${pj}/builds`, 403, 'MCP_PROJECT_FORBIDDEN', 'list_builds', { headers: bearer(scoped.token), tokenId: scoped.token_id })
]

// ---- paging, cursors, filters, duplicate keys on every list
const LISTS = [
  { action: 'list_projects', url: `${API}/projects` },
  { action: 'list_builds', url: `${pj}/builds` },
  { action: 'list_jobs', url: `${pj}/builds/${B.b2}/jobs` },
  { action: 'list_test_runs', url: `${pj}/jobs/${J.compile}/testruns` }
]
const BAD_PAGING: Array<{ name: string, query: string, code: string }> = [
  { name: 'limit=-1', query: 'limit=-1', code: 'FST_ERR_VALIDATION' },
  { name: 'limit=0', query: 'limit=0', code: 'FST_ERR_VALIDATION' },
  { name: 'limit=101', query: 'limit=101', code: 'FST_ERR_VALIDATION' },
  { name: 'limit=2^31', query: 'limit=2147483648', code: 'FST_ERR_VALIDATION' },
  { name: 'limit of 30 digits', query: `limit=${'9'.repeat(30)}`, code: 'FST_ERR_VALIDATION' },
  { name: 'limit=1.5', query: 'limit=1.5', code: 'FST_ERR_VALIDATION' },
  { name: 'limit=abc', query: 'limit=abc', code: 'FST_ERR_VALIDATION' },
  { name: 'limit empty', query: 'limit=', code: 'FST_ERR_VALIDATION' },
  { name: 'limit with SQL', query: `limit=${encodeURIComponent('10; DROP TABLE job')}`, code: 'FST_ERR_VALIDATION' },
  { name: 'duplicate limit keys', query: 'limit=5&limit=6', code: 'FST_ERR_VALIDATION' },
  { name: 'cursor that is not base64url', query: `cursor=${encodeURIComponent('!!!$$$')}`, code: 'MCP_BAD_REQUEST' },
  { name: 'cursor of random base64url', query: 'cursor=abcdefghij', code: 'MCP_BAD_REQUEST' },
  { name: 'cursor of 2000 characters', query: `cursor=${'A'.repeat(2000)}`, code: 'FST_ERR_VALIDATION' },
  { name: 'cursor of another list', query: `cursor=${encodeCursor('some_other_list', ['x'])}`, code: 'MCP_BAD_REQUEST' },
  { name: 'forged cursor with SQL', query: `cursor=${Buffer.from(JSON.stringify({ v: 1, k: 'builds', p: ["1' OR 1=1 --", "x' --"] })).toString('base64url')}`, code: 'MCP_BAD_REQUEST' },
  { name: 'cursor of JSON null', query: `cursor=${Buffer.from('null').toString('base64url')}`, code: 'MCP_BAD_REQUEST' },
  { name: 'duplicate cursor keys', query: 'cursor=abc&cursor=def', code: 'FST_ERR_VALIDATION' }
]
const pagingCases: Case[] = LISTS.flatMap(l => BAD_PAGING.map((b): Case => ({
  name: `${l.action}: ${b.name}`, url: `${l.url}?${b.query}`, headers: h, status: 400, code: b.code, audit: l.action, tokenId: made.token_id
})))
const filterCases: Case[] = [
  get('build status outside its enumeration', `${pj}/builds?status=bogus`, 400, 'FST_ERR_VALIDATION', 'list_builds'),
  get('build status with SQL', `${pj}/builds?status=${encodeURIComponent("finished' OR '1'='1")}`, 400, 'FST_ERR_VALIDATION', 'list_builds'),
  get('duplicate status keys', `${pj}/builds?status=failure&status=running`, 400, 'FST_ERR_VALIDATION', 'list_builds'),
  get('branch with a NUL', `${pj}/builds?branch=main%00`, 400, 'FST_ERR_VALIDATION', 'list_builds'),
  get('branch with a newline', `${pj}/builds?branch=main%0Aevil`, 400, 'FST_ERR_VALIDATION', 'list_builds'),
  get('branch empty', `${pj}/builds?branch=`, 400, 'FST_ERR_VALIDATION', 'list_builds'),
  get('branch of 256 characters', `${pj}/builds?branch=${'b'.repeat(256)}`, 400, 'FST_ERR_VALIDATION', 'list_builds'),
  get('duplicate branch keys', `${pj}/builds?branch=main&branch=dev`, 400, 'FST_ERR_VALIDATION', 'list_builds'),
  get('test state outside its enumeration', `${pj}/jobs/${J.compile}/testruns?state=passed`, 400, 'FST_ERR_VALIDATION', 'list_test_runs'),
  get('test state with a NUL', `${pj}/jobs/${J.compile}/testruns?state=ok%00`, 400, 'FST_ERR_VALIDATION', 'list_test_runs'),
  get('duplicate state keys', `${pj}/jobs/${J.compile}/testruns?state=ok&state=failure`, 400, 'FST_ERR_VALIDATION', 'list_test_runs')
]

// ---- log windows
const log = `${pj}/jobs/${J.compile}/log`
const logCases: Case[] = [
  ['offset=-1', 'FST_ERR_VALIDATION'], ['offset over 1 GiB', 'FST_ERR_VALIDATION', `offset=${1024 ** 3 + 1}`], ['offset of 25 digits', 'FST_ERR_VALIDATION', `offset=${'9'.repeat(25)}`],
  ['length=0', 'FST_ERR_VALIDATION'], ['length over 1 MiB', 'FST_ERR_VALIDATION', `length=${1024 * 1024 + 1}`], ['length=-5', 'FST_ERR_VALIDATION'], ['length=1.5', 'FST_ERR_VALIDATION'],
  ['tail=0', 'FST_ERR_VALIDATION'], ['tail=10001', 'FST_ERR_VALIDATION'], ['tail=abc', 'FST_ERR_VALIDATION'], ['tail=-1', 'FST_ERR_VALIDATION'],
  ['tail with offset', 'MCP_BAD_REQUEST', 'tail=5&offset=0'], ['tail with length', 'MCP_BAD_REQUEST', 'tail=5&length=10'],
  ['duplicate offset keys', 'FST_ERR_VALIDATION', 'offset=0&offset=10'], ['offset with SQL', 'FST_ERR_VALIDATION', `offset=${encodeURIComponent('0 OR 1=1')}`]
].map(([name = '', code = '', query]) => get(`log: ${name}`, `${log}?${query ?? name}`, 400, code, 'get_job_log'))

// ---- artifact names
const download = `${pj}/jobs/${J.compile}/artifacts/download`
const traversal = (name: string, filename: string, status = 400, code = 'MCP_BAD_REQUEST'): Case =>
  get(`artifact: ${name}`, `${download}?filename=${filename}`, status, code, 'get_artifact')
const artifactCases: Case[] = [
  get('artifact: no filename', download, 400, 'FST_ERR_VALIDATION', 'get_artifact'),
  traversal('empty filename', '', 400, 'FST_ERR_VALIDATION'),
  traversal('../../etc/passwd', encodeURIComponent('../../etc/passwd')),
  traversal('..', '..'),
  traversal('.', '.'),
  traversal('a sub-directory', encodeURIComponent('sub/report.txt')),
  traversal('a backslash', encodeURIComponent('..\\..\\windows\\win.ini')),
  traversal('an absolute path', encodeURIComponent('/etc/passwd')),
  traversal('percent-encoded twice', '%252e%252e%252fetc%252fpasswd', 404, 'MCP_NOT_FOUND'),
  traversal('a NUL before an extension', 'report.txt%00.png'),
  traversal('a newline (header injection in Content-Disposition)', 'report.txt%0D%0ASet-Cookie:%20x=1'),
  traversal('a DEL character', 'report%7F.txt'),
  traversal('another job\'s file via a sibling archive', encodeURIComponent(`../${J.publicRun}/public.txt`)),
  traversal('256 characters', 'r'.repeat(256), 400, 'FST_ERR_VALIDATION'),
  traversal('SQL in the name', encodeURIComponent("report.txt' OR '1'='1"), 404, 'MCP_NOT_FOUND'),
  traversal('a name not in job.archive', 'secret.key', 404, 'MCP_NOT_FOUND'),
  traversal('a listed name in another case', 'REPORT.TXT', 404, 'MCP_NOT_FOUND'),
  traversal('unicode lookalike of a listed name', encodeURIComponent('repоrt.txt'), 404, 'MCP_NOT_FOUND'),
  traversal('duplicate filename keys', 'report.txt&filename=coverage.bin', 400, 'FST_ERR_VALIDATION')
]

// ---- injection in free-text filters is data, not SQL: 200 with nothing found, nothing changed (asserted apart)
const literalCases = [
  { name: 'branch with SQL', url: `${pj}/builds?branch=${encodeURIComponent("main' OR '1'='1")}` },
  { name: 'branch with a UNION', url: `${pj}/builds?branch=${encodeURIComponent("x' UNION SELECT token_hash, null FROM mcp_token --")}` },
  { name: 'branch with a stacked DROP', url: `${pj}/builds?branch=${encodeURIComponent("main'; DROP TABLE build; --")}` },
  { name: 'branch with a JSON operator', url: `${pj}/builds?branch=${encodeURIComponent('{"$gt":""}')}` },
  { name: 'branch of unicode and emoji', url: `${pj}/builds?branch=${encodeURIComponent('größe-🚀-분기')}` }
]

const cases: Case[] = [...idCases, ...idorCases, ...pagingCases, ...filterCases, ...logCases, ...artifactCases]
const before = await snapshot(db)
let leaks: unknown[] = ['not run']

t.test(`${cases.length} hostile requests on the data routes' parameters`, async t => {
  const result = await runTable(t, cases, { app, db, idPrefix: 'h-par', secrets: [made.token, scoped.token, jwt] })
  leaks = result.leaks
  t.same(await snapshot(db), before, 'mcp_token, build, job, project, collaborator, user, commit unchanged')
})

t.test('injection in free-text filters is taken literally: 200, nothing found', async t => {
  for (const c of literalCases) {
    const res = await app.inject({ url: c.url, headers: h })
    t.equal(res.statusCode, 200, c.name)
    t.same(res.json(), { items: [], next_cursor: null }, `${c.name}: nothing matches`)
  }
  t.same(await snapshot(db), before, 'nothing changed')
})

t.test('no plaintext token or session in any table, log line or error body', async t => {
  t.same(leaks, [], `none in ${cases.length} answers`)
  const scan = await scanDatabase(db, [made.token, scoped.token, jwt])
  t.same(scan.leaks, [], `none in the ${scan.columns} text columns of ${scan.tables} tables`)
  t.same(scanText('logs', logs.text, [made.token, scoped.token, jwt]), [], `none in ${logs.raw.length} log lines`)
  report(t, 'hostile-params', { requests: cases.length + literalCases.length, four_xx: cases.length, literal_200: literalCases.length, audited: cases.filter(c => c.audit !== null).length, not_audited: cases.filter(c => c.audit === null).length })
})
