// SPEC §1, the production key path: the service (server.ts, as `npm start` runs it) started with
// INFRABOX_RSA_PUBLIC_KEY_PATH in each format InfraBox's loader reads — SPKI PEM, PKCS#1 PEM, OpenSSH ssh-rsa, made by
// openssl and ssh-keygen — accepts sessions signed by node:crypto with the private key file and refuses one signed by
// another key; a bad key file stops the start with exit code 1 and one line naming the variable, not a stack.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createTestDatabase } from './helpers/db.js'
import { API, bearer } from './helpers/chain.js'
import { freePort, REPO_ROOT, send, spawnGateway } from './helpers/faults.js'
import { tsxArgs } from './helpers/coverage.js'
import { makeInfraboxKeys, signInfraboxSession } from './helpers/infrabox.js'
import { FIXTURE, seedFixture } from '../db/seed.js'

const database = await createTestDatabase(t)
await seedFixture(database.db)
const keys = makeInfraboxKeys()
const stranger = makeInfraboxKeys()
t.teardown(() => { keys.remove(); stranger.remove() })
const user = FIXTURE.users.demo
const session = signInfraboxSession(keys.privatePath, user)
const common = { HOST: '127.0.0.1', DATABASE_URL: database.url, MIGRATE_ON_START: 'false', LOG_LEVEL: 'warn' }

const formats = { 'SPKI PEM': keys.spkiPath, 'PKCS#1 PEM': keys.pkcs1Path, 'OpenSSH ssh-rsa': keys.sshPath }

t.test('each key format: sessions signed by node:crypto are accepted over HTTP', async t => {
  const gateways = await Promise.all(Object.values(formats).map(async path =>
    await spawnGateway(t, 'server.ts', { ...common, LOG_LEVEL: 'info', PORT: String(await freePort()), INFRABOX_RSA_PUBLIC_KEY_PATH: path })))
  for (const [i, format] of Object.keys(formats).entries()) {
    const g = gateways[i]
    if (g === undefined) throw new Error('no gateway')
    const made = await send(g.base, { method: 'POST', path: `${API}/tokens/`, headers: bearer(session), body: JSON.stringify({ name: `key ${format}` }) })
    t.equal(made.status, 201, `${format}: POST /tokens with the session → 201`)
    const token = (JSON.parse(made.body) as { token?: string }).token ?? ''
    const projects = await send(g.base, { method: 'GET', path: `${API}/projects`, headers: bearer(token) })
    t.equal(projects.status, 200, `${format}: the token it minted works`)
    const cookie = await send(g.base, { method: 'GET', path: `${API}/tokens/`, headers: { cookie: `token=${session}` } })
    t.equal(cookie.status, 200, `${format}: the session in InfraBox's cookie → 200`)
    const forged = await send(g.base, { method: 'GET', path: `${API}/tokens/`, headers: bearer(signInfraboxSession(stranger.privatePath, user)) })
    t.equal(forged.status, 401, `${format}: a session signed by another key → 401`)
  }
})

/** Runs server.ts to its end; its exit code and what it printed. */
async function startFails (env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, ...common, PORT: '0', ...env }
  delete fullEnv.NODE_OPTIONS
  const child = spawn(process.execPath, [...tsxArgs(), 'server.ts'], { cwd: REPO_ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
  const code = await new Promise<number | null>(resolve => child.once('exit', c => { resolve(c) }))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

type Failure = Awaited<ReturnType<typeof startFails>>

/** Starts the server once per case, all at once: each case's name, how its process ended, and the variable it names. */
async function startAll (cases: Array<[string, Record<string, string>, string]>): Promise<Array<[string, Failure, string]>> {
  return await Promise.all(cases.map(async ([what, env, variable]): Promise<[string, Failure, string]> => [what, await startFails(env), variable]))
}

/** Exit code 1 and exactly one line on stderr, naming the variable. */
function exitedWithOneLine (t: Test, what: string, r: Failure, variable: string): void {
  t.equal(r.code, 1, `${what}: exit code 1`)
  const lines = r.stderr.split('\n').filter(l => l.trim() !== '')
  t.equal(lines.length, 1, `${what}: one line on stderr (got ${JSON.stringify(r.stderr.slice(0, 400))})`)
  t.match(lines[0] ?? '', new RegExp(`^invalid configuration: ${variable} `), `${what}: the line names ${variable}`)
}

t.test('a bad key: exit 1 and one line naming the variable', async t => {
  const bad = (name: string, text: string): string => { const p = join(keys.dir, name); writeFileSync(p, text); return p }
  const cases: Array<[string, Record<string, string>, string]> = [
    ['an ssh-ed25519 line', { INFRABOX_RSA_PUBLIC_KEY_PATH: bad('ed.pub', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2 me@host\n') }, 'INFRABOX_RSA_PUBLIC_KEY_PATH'],
    ['a file that is not there', { INFRABOX_RSA_PUBLIC_KEY_PATH: join(keys.dir, 'nope.pem') }, 'INFRABOX_RSA_PUBLIC_KEY_PATH'],
    ['the private key file', { INFRABOX_RSA_PUBLIC_KEY_PATH: keys.privatePath }, 'INFRABOX_RSA_PUBLIC_KEY_PATH'],
    ['garbage in SESSION_JWT_PUBLIC_KEY', { SESSION_JWT_PUBLIC_KEY: 'not a key' }, 'SESSION_JWT_PUBLIC_KEY']
  ]
  for (const [what, r, variable] of await startAll(cases)) {
    exitedWithOneLine(t, what, r, variable)
    t.notMatch(r.stdout + r.stderr, /\n\s+at /, `${what}: no stack trace`)
    t.notMatch(r.stdout, /listening/i, `${what}: never listened`)
  }
})

// server.ts reads the environment before it builds anything (readConfig): a bad variable ends the process there, with
// the same one line, before any key, database or port is touched.
t.test('a bad variable read at start: exit 1 and one line naming it, before anything is built', async t => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ['a PORT that is not a number', { PORT: 'eighty' }, 'PORT'],
    ['REDIS_URL listing two nodes without REDIS_CLUSTER', { REDIS_URL: 'redis://127.0.0.1:1,redis://127.0.0.1:2' }, 'REDIS_URL']
  ]
  for (const [what, r, variable] of await startAll(cases)) {
    exitedWithOneLine(t, what, r, variable)
    t.equal(r.stdout, '', `${what}: nothing else printed (no logger was made)`)
  }
})
