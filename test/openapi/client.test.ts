// A client generated from the served document (openapi-typescript + openapi-fetch) type-checks under strict tsc and calls a running gateway.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'
import ts from 'typescript'
import openapiTS, { astToString, type OpenAPI3 } from 'openapi-typescript'
import { buildApp } from '../helpers/app.js'
import { createToken } from '../helpers/chain.js'
import { seedFixture, FIXTURE } from '../../db/seed.js'

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))

const { app, session } = await buildApp(t, { seed: async ({ db }) => { await seedFixture(db) } })
const base = await app.listen({ host: '127.0.0.1', port: 0 })
const { token } = await createToken(app, await session(FIXTURE.users.demo))

const dir = mkdtempSync(join(tmpdir(), 'openapi-client-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
// the generated client resolves openapi-fetch (and its types) from the project's own node_modules
symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }))

/** The calling file: what a user of the generated client writes. */
const CALLER = `
import createClient from 'openapi-fetch'
import type { paths, components } from './api.js'

type ErrorBody = components['schemas']['ErrorBody']

export async function run (baseUrl: string, token: string, projectId: string, foreignProjectId: string) {
  const client = createClient<paths>({ baseUrl, headers: { authorization: \`Bearer \${token}\` } })

  const projects = await client.GET('/api/v1/mcp/projects', { params: { query: { limit: 10 } } })
  if (projects.data === undefined) throw new Error('list_projects failed: ' + String(projects.error?.message))
  const names: string[] = projects.data.items.map(p => p.name)
  const next: string | null = projects.data.next_cursor

  const builds = await client.GET('/api/v1/mcp/projects/{projectId}/builds', { params: { path: { projectId }, query: { branch: 'main' } } })
  if (builds.data === undefined) throw new Error('list_builds failed: ' + String(builds.error?.message))
  const buildNumbers: number[] = builds.data.items.map(b => b.build_number)

  const refused = await client.GET('/api/v1/mcp/projects/{projectId}', { params: { path: { projectId: foreignProjectId } } })
  const error: ErrorBody | undefined = refused.error
  return { names, next, buildNumbers, refusedStatus: refused.response.status, refusedCode: error?.code }
}
`

/** What the types must refuse, one mistake a file: a path the gateway does not have, a query parameter of the wrong type. */
const MISTAKES = {
  'unknown-path.ts': "client.GET('/api/v1/mcp/projectz', {})",
  'string-limit.ts': "client.GET('/api/v1/mcp/projects', { params: { query: { limit: 'ten' } } })"
}
const mistakeFile = (call: string): string => `
import createClient from 'openapi-fetch'
import type { paths } from './api.js'

const client = createClient<paths>({ baseUrl: 'http://127.0.0.1' })
export const answer = ${call}
`

function typecheck (files: string[]): readonly ts.Diagnostic[] {
  const program = ts.createProgram(files.map(f => join(dir, f)), {
    strict: true,
    noUncheckedIndexedAccess: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
    skipLibCheck: true,
    types: []
  })
  return ts.getPreEmitDiagnostics(program)
}
const show = (diagnostics: readonly ts.Diagnostic[]): string[] =>
  diagnostics.map(d => `${d.file?.fileName.slice(dir.length + 1) ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)

t.test('openapi-typescript generates types from the served document', async t => {
  const doc = await (await fetch(`${base}/api/v1/mcp/openapi.json`)).json() as OpenAPI3
  const source = astToString(await openapiTS(doc))
  writeFileSync(join(dir, 'api.ts'), source)
  t.match(source, /"\/api\/v1\/mcp\/projects\/\{projectId\}\/builds": \{/)
  t.match(source, /list_builds: \{/, 'operations named by the MCP tools')
})

t.test('the calling file type-checks under strict tsc; mistakes do not', async t => {
  writeFileSync(join(dir, 'caller.ts'), CALLER)
  t.same(show(typecheck(['api.ts', 'caller.ts'])), [], 'no diagnostics')
  for (const [file, call] of Object.entries(MISTAKES)) {
    writeFileSync(join(dir, file), mistakeFile(call))
    const diagnostics = show(typecheck(['api.ts', file]))
    t.ok(diagnostics.length > 0, `${call} is a type error: ${diagnostics.join(' | ')}`)
  }
})

t.test('the generated client calls the running gateway', async t => {
  const caller = await import(pathToFileURL(join(dir, 'caller.ts')).href) as {
    run: (baseUrl: string, token: string, projectId: string, foreign: string) => Promise<{ names: string[], next: string | null, buildNumbers: number[], refusedStatus: number, refusedCode: string | undefined }>
  }
  const result = await caller.run(base, token, FIXTURE.projects.github, FIXTURE.projects.public)
  t.ok(result.names.length > 0, `projects: ${result.names.join(', ')}`)
  t.ok(result.buildNumbers.length > 0, `builds on main: ${result.buildNumbers.join(', ')}`)
  t.equal(result.refusedStatus, 403)
  t.equal(result.refusedCode, 'MCP_PROJECT_FORBIDDEN', 'a refusal arrives as the typed ErrorBody')
})
