// `npm start` with no DATABASE_URL and no REDIS_URL: PGlite, in-process limiter, demo seed; the printed curl lines work.
import t from 'tap'
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = new URL('..', import.meta.url).pathname
const dataDir = await mkdtemp(join(tmpdir(), 'mcp-embedded-'))
t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })

function cleanEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' }
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'INFRABOX_RSA_PUBLIC_KEY_PATH', 'SESSION_JWT_PUBLIC_KEY', 'NODE_OPTIONS']) delete env[k]
  return env
}

interface Started { child: ChildProcess, output: () => string, exited: Promise<number | null> }

/** Starts the service (`npm start`, or the built server directly) and waits for the demo block. */
async function start (command: string[]): Promise<Started> {
  const [bin = 'npm', ...args] = command
  const child = spawn(bin, args, { cwd: root, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  t.teardown(() => { try { process.kill(-(child.pid as number), 'SIGKILL') } catch { /* already gone */ } })
  const deadline = Date.now() + 240_000
  while (!out.includes('curl -s http') || !out.includes('/tokens/ -H "Authorization: Bearer $SESSION"\n')) {
    if (Date.now() > deadline) throw new Error(`no demo block within 240 s:\n${out}`)
    if (child.exitCode !== null) throw new Error(`exited early (${child.exitCode}):\n${out}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return { child, output: () => out, exited }
}

/** Runs the printed `export` and `curl` lines, in order, in one bash. */
async function runPrinted (printed: string, extra = ''): Promise<string> {
  const lines = printed.split('\n').map(l => l.trim()).filter(l => l.startsWith('export ') || l.startsWith('curl '))
  const script = ['set -euo pipefail', ...lines.map(l => l.startsWith('curl ') ? `${l}; echo` : l), extra].join('\n')
  const { stdout } = await run('bash', ['-c', script], { cwd: root, timeout: 30_000 })
  return stdout
}

/** SIGTERM to the process group, as a container runtime would; resolves with the leader's exit code once the whole group is gone. */
async function stop (s: Started): Promise<number | null> {
  const group = -(s.child.pid as number)
  process.kill(group, 'SIGTERM')
  const code = await s.exited
  for (let i = 0; i < 150; i++) {
    try { process.kill(group, 0) } catch { return code }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error('the server did not exit within 15 s of SIGTERM')
}

t.test('first start (npm start): seeds, prints a session and curl lines that work', async t => {
  const s = await start(['npm', 'start', '--silent'])
  const printed = s.output()
  t.match(printed, /export SESSION='ey[\w.-]+'/)
  const out = await runPrinted(printed)
  const [projects, tokens] = out.trim().split('\n').map(l => JSON.parse(l) as unknown)
  const items = (projects as { items: Array<{ name: string, role: string }> }).items
  t.ok(items.length >= 4, `the demo user's projects (${items.length})`)
  t.ok(items.every(p => typeof p.role === 'string'))
  const list = tokens as Array<{ name: string, token_id: string }>
  t.equal(list.length, 1)
  t.equal(list[0]?.name, 'demo agent')
  await stop(s) // npm itself dies of the signal; the server's own exit code is checked below
})

t.test('second start on the same DATA_DIR (node dist/server.js): data kept, no second seed, SIGTERM exits 0', async t => {
  const s = await start(['node', 'dist/server.js'])
  const out = await runPrinted(s.output())
  const tokens = JSON.parse(out.trim().split('\n')[1] ?? '[]') as unknown[]
  t.equal(tokens.length, 2, 'the first run\'s token is still there, plus this run\'s')
  t.equal(await stop(s), 0, 'SIGTERM: in-flight work finished, audit flushed, exit 0')
})
