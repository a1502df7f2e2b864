// The README's first command as a newcomer runs it: a fresh `git clone`, `npm install && npm start`, no DATA_DIR, no
// DATABASE_URL, no REDIS_URL, nothing created beforehand; then the printed curl lines, a restart and a nested DATA_DIR.
//
// The clone is of this checkout's committed HEAD (in CI: of the clean clone CI made), so it holds exactly what a
// newcomer gets; uncommitted edits are not in it. `npm install` runs for real in the clone, with
// `--prefer-offline --no-audit --no-fund` added: the machine's npm cache answers (about 45 s here), nothing else changes.
// PORT=0 and HOST=127.0.0.1 only keep parallel runs on a shared machine from colliding on 8080.
import t, { type Test } from 'tap'
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { access, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { withoutCoverage } from './helpers/coverage.js'

const run = promisify(execFile)
const checkout = new URL('..', import.meta.url).pathname
const work = await mkdtemp(join(tmpdir(), 'mcp-first-run-'))
const clone = join(work, 'infrabox-mcp-gateway')
t.teardown(async () => { await rm(work, { recursive: true, force: true }) })
// npm install, the build and a new PGlite cluster, each on a loaded 2-core machine
t.setTimeout(20 * 60_000)

const exists = async (path: string): Promise<boolean> => await access(path).then(() => true, () => false)

/** A newcomer's shell: none of the gateway's variables, none of npm's (this test itself may run under `npm test`). */
function newcomerEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...extra }
  for (const k of ['DATA_DIR', 'DATABASE_URL', 'REDIS_URL', 'INFRABOX_RSA_PUBLIC_KEY_PATH', 'INFRABOX_RSA_PRIVATE_KEY_PATH', 'SESSION_JWT_PUBLIC_KEY', 'PUBLIC_BASE_URL', 'NODE_OPTIONS', 'FASTIFY_AUTOLOAD_TYPESCRIPT']) {
    if (!(k in extra)) delete env[k]
  }
  for (const k of Object.keys(env)) if (k.startsWith('npm_')) delete env[k]
  return withoutCoverage(env) // the clone is not measured (mcr.config.js)
}

/** The README's start line (`## Two commands`, the line with `npm start`), without its comment. */
async function readmeStartLine (): Promise<string> {
  const readme = await readFile(join(clone, 'README.md'), 'utf8')
  const block = /## Two commands\s+```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
  const line = block.split('\n').find(l => l.includes('npm start'))
  if (line === undefined) throw new Error('the README has no `npm start` line under "Two commands"')
  return line.replace(/#.*$/, '').trim()
}

interface Started { child: ChildProcess, output: () => string, exited: Promise<number | null> }

/** Runs a shell line in the clone (its own process group) and waits for the printed demo block. */
async function start (line: string, env: NodeJS.ProcessEnv): Promise<Started> {
  const child = spawn('bash', ['-c', line], { cwd: clone, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  t.teardown(() => { try { process.kill(-(child.pid as number), 'SIGKILL') } catch { /* already gone */ } })
  const deadline = Date.now() + 15 * 60_000
  while (!out.includes('curl -s http') || !out.includes('/tokens/ -H "Authorization: Bearer $SESSION"\n')) {
    if (Date.now() > deadline) throw new Error(`no demo block within 15 minutes:\n${out}`)
    if (child.exitCode !== null) throw new Error(`exited early (${child.exitCode}):\n${out}`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  return { child, output: () => out, exited }
}

/** Runs the printed `export` and `curl` lines, in order, in one bash, as a newcomer pastes them. */
async function runPrinted (printed: string): Promise<string[]> {
  const lines = printed.split('\n').map(l => l.trim()).filter(l => l.startsWith('export ') || l.startsWith('curl '))
  const script = ['set -euo pipefail', ...lines.map(l => l.startsWith('curl ') ? `${l}; echo` : l)].join('\n')
  const { stdout } = await run('bash', ['-c', script], { cwd: clone, timeout: 60_000, env: newcomerEnv() })
  return stdout.trim().split('\n')
}

/** SIGTERM to the process group, as a container runtime would; resolves with the leader's exit code once the whole group is gone. */
async function stop (s: Started): Promise<number | null> {
  const group = -(s.child.pid as number)
  process.kill(group, 'SIGTERM')
  const code = await s.exited
  for (let i = 0; i < 300; i++) {
    try { process.kill(group, 0) } catch { return code }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error('the server did not exit within 30 s of SIGTERM')
}

function checkDemo (t: Test, printed: string, answers: string[], tokensExpected: number): void {
  t.match(printed, /export SESSION='ey[\w.-]+'/)
  t.match(printed, /each run of this export line mints a new token/, 'the printed lines say that the export line mints a token each time')
  const [projects, tokens] = answers.map(l => JSON.parse(l) as unknown)
  const items = (projects as { items: Array<{ name: string, role: string }> }).items
  t.ok(items.length >= 4, `the demo user's projects (${items.length})`)
  t.ok(items.every(p => typeof p.role === 'string'))
  const list = tokens as Array<{ name: string }>
  t.equal(list.length, tokensExpected, `${tokensExpected} token(s) in the list`)
  t.ok(list.every(tok => tok.name === 'demo agent'))
}

t.test('a fresh clone: `npm install && npm start` as the README says, nothing created first', async t => {
  await run('git', ['clone', '--quiet', checkout, clone], { timeout: 120_000 })
  t.notOk(await exists(join(clone, '.data')), 'a fresh clone has no .data')
  t.notOk(await exists(join(clone, 'dist')), 'nor a build')
  const line = await readmeStartLine()
  t.equal(line, 'npm install && npm start', 'the README\'s start line')
  const s = await start(line.replace('npm install', 'npm install --prefer-offline --no-audit --no-fund'), newcomerEnv())
  t.ok(await exists(join(clone, '.data', 'pglite')), 'the embedded database under ./.data, created by the start')
  checkDemo(t, s.output(), await runPrinted(s.output()), 1)
  await stop(s) // npm itself dies of the signal; the server's own exit code is checked below
})

t.test('second start on the same ./.data (node dist/server.js): data kept, no second seed, SIGTERM exits 0', async t => {
  const s = await start('node dist/server.js', newcomerEnv())
  checkDemo(t, s.output(), await runPrinted(s.output()), 2) // the first run's token is still there, plus this run's
  t.equal(await stop(s), 0, 'SIGTERM: in-flight work finished, audit flushed, exit 0')
})

t.test('a nested DATA_DIR that does not exist is created (npm start)', async t => {
  const dataDir = join(work, 'state', 'gateway', 'data')
  t.notOk(await exists(join(work, 'state')))
  const s = await start('npm start', newcomerEnv({ DATA_DIR: dataDir }))
  t.ok(await exists(join(dataDir, 'pglite')), 'the database under the nested DATA_DIR')
  checkDemo(t, s.output(), await runPrinted(s.output()), 1) // a new database: only this run's token
  await stop(s)
})
