// Shared steps of the MCP endpoint tests (test/mcp/): the app listening on a real port with the fixture, tokens, SDK clients, audit rows.
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { FastifyInstance } from 'fastify'
import { Type, type Static, type TSchema } from '@fastify/type-provider-typebox'
import { Value } from 'typebox/value'
import { buildApp, type BuildOptions, type TestApp } from './app.js'
import { seedFixture } from '../../db/seed.js'
import type { Selectable } from 'kysely'
import type { EnabledProjects, McpAccessLogTable } from '../../db/schema.js'

export const MCP_PATH = '/api/v1/mcp'

export interface McpTestApp extends TestApp {
  /** http://127.0.0.1:<port>/api/v1/mcp */
  endpoint: string
  /** http://127.0.0.1:<port> */
  origin: string
}

/** The real app with the fixture (artifacts on disk), listening on 127.0.0.1 on a free port. */
export async function startMcpApp (t: Test, opts: BuildOptions = {}): Promise<McpTestApp> {
  const sandbox = await mkdtemp(join(tmpdir(), 'mcp-endpoint-'))
  t.teardown(async () => { await rm(sandbox, { recursive: true, force: true }) })
  const artifactRoot = join(sandbox, 'artifacts')
  const built = await buildApp(t, {
    ...opts,
    // A generous limiter deadline: exact budget counts must not fail open on a busy two-core machine.
    env: { ARTIFACT_FS_ROOT: artifactRoot, RATE_LIMIT_REDIS_TIMEOUT_MS: '2000', ...opts.env },
    seed: async (database) => {
      await seedFixture(database.db, { artifactRoot })
      if (opts.seed !== undefined) await opts.seed(database)
    }
  })
  await built.app.listen({ host: '127.0.0.1', port: 0 })
  const address = built.app.server.address()
  if (address === null || typeof address === 'string') throw new Error('the app is not listening on a TCP port')
  const origin = `http://127.0.0.1:${address.port}`
  return { ...built, origin, endpoint: `${origin}${MCP_PATH}` }
}

export interface TokenOptions { enabled_projects?: EnabledProjects, allow_trigger?: boolean, name?: string }

/** A token minted through the real POST /api/v1/mcp/tokens with the user's session (SPEC §6). */
export async function mintToken (app: FastifyInstance, sessionJwt: string, body: TokenOptions = {}): Promise<{ token: string, token_id: string }> {
  const res = await app.inject({
    method: 'POST',
    url: `${MCP_PATH}/tokens`,
    headers: { authorization: `Bearer ${sessionJwt}` },
    payload: { name: 'mcp test', ...body }
  })
  if (res.statusCode !== 201) throw new Error(`token not created: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** A tool result as any client returns it (the two SDK lines type it differently). */
export const CallResult = Type.Object({
  content: Type.Array(Type.Object({ type: Type.String() })),
  structuredContent: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  isError: Type.Optional(Type.Boolean())
})
export type CallResult = Static<typeof CallResult>

/** A tool as tools/list shows it. */
export const ListedTool = Type.Object({
  name: Type.String(),
  title: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  inputSchema: Type.Record(Type.String(), Type.Unknown()),
  outputSchema: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  annotations: Type.Optional(Type.Record(Type.String(), Type.Unknown()))
})
export type ListedTool = Static<typeof ListedTool>

const TextBlock = Type.Object({ type: Type.Literal('text'), text: Type.String() })
const LinkBlock = Type.Object({ type: Type.Literal('resource_link'), uri: Type.String(), name: Type.String(), mimeType: Type.Optional(Type.String()) })

export function parsed<T extends TSchema> (schema: T, value: unknown, what: string): Static<T> {
  if (!Value.Check(schema, value)) throw new Error(`${what} does not have the expected shape: ${JSON.stringify(value).slice(0, 500)}`)
  return value
}

/** The text blocks of a result, joined. */
export const textOf = (result: CallResult): string =>
  result.content.flatMap(block => Value.Check(TextBlock, block) ? [block.text] : []).join('\n')

/** The resource_link blocks of a result. */
export const linksOf = (result: CallResult): Array<Static<typeof LinkBlock>> =>
  result.content.flatMap(block => Value.Check(LinkBlock, block) ? [block] : [])

/** One connected client, whichever SDK line and era, reduced to what the tests ask of it. */
export interface McpSession {
  label: string
  protocolVersion: string | undefined
  list: () => Promise<ListedTool[]>
  call: (name: string, args?: Record<string, unknown>) => Promise<CallResult>
}

export type Era = 'legacy' | 'modern'

/** The official v2 client: legacy era by default (initialize), 2026-07-28 with version negotiation 'auto'. */
export async function connectV2 (t: Test, endpoint: string, token: string, era: Era): Promise<McpSession> {
  const client = new Client({ name: 'infrabox-mcp-test', version: '1.0.0' },
    era === 'modern' ? { versionNegotiation: { mode: 'auto' } } : {})
  const transport = new StreamableHTTPClientTransport(new URL(endpoint), { requestInit: { headers: { authorization: `Bearer ${token}` } } })
  await client.connect(transport)
  t.teardown(async () => { await client.close() })
  return {
    label: `v2 client, ${era} era`,
    protocolVersion: client.getNegotiatedProtocolVersion(),
    list: async () => (await client.listTools()).tools.map(tool => parsed(ListedTool, tool, 'a listed tool')),
    call: async (name, args) => parsed(CallResult, await client.callTool({ name, ...(args === undefined ? {} : { arguments: args }) }), `${name} result`)
  }
}

/** The v1 client (@modelcontextprotocol/sdk 1.x): what most deployed agents still run; 2025-11-25 only. */
export async function connectV1 (t: Test, endpoint: string, token: string): Promise<McpSession> {
  const client = new V1Client({ name: 'infrabox-mcp-test-v1', version: '1.0.0' })
  const transport = new V1Transport(new URL(endpoint), { requestInit: { headers: { authorization: `Bearer ${token}` } } })
  await client.connect(transport)
  t.teardown(async () => { await client.close() })
  return {
    label: 'v1 client (@modelcontextprotocol/sdk)',
    protocolVersion: transport.protocolVersion,
    list: async () => (await client.listTools()).tools.map(tool => parsed(ListedTool, tool, 'a listed tool')),
    call: async (name, args) => parsed(CallResult, await client.callTool({ name, ...(args === undefined ? {} : { arguments: args }) }), `${name} result`)
  }
}

export type AccessRow = Selectable<McpAccessLogTable>

/** Every audit row, oldest first, after the writer has flushed. */
export async function accessRows (app: FastifyInstance, db: TestApp['database']['db']): Promise<AccessRow[]> {
  await app.mcpGateway.audit.flush()
  return await db.selectFrom('mcp_access_log').selectAll().orderBy('accessed_at').orderBy('id').execute()
}

/** Audit rows written by MCP requests, oldest first. */
export async function mcpRows (app: FastifyInstance, db: TestApp['database']['db']): Promise<AccessRow[]> {
  return (await accessRows(app, db)).filter(r => r.via === 'mcp')
}

/**
 * The rows `select` picks, once there are at least `count` of them: a row is recorded when the answer has
 * left (onResponse), which can be a moment after the client has read it.
 */
export async function rowsOnce (app: FastifyInstance, db: TestApp['database']['db'], select: (row: AccessRow) => boolean, count: number): Promise<AccessRow[]> {
  let rows: AccessRow[] = []
  for (let i = 0; i < 100; i++) {
    rows = (await accessRows(app, db)).filter(select)
    if (rows.length >= count) break
    await new Promise(resolve => setTimeout(resolve, 30))
  }
  return rows
}

/** A user collaborating on the given projects (each user has budgets of its own). */
export async function addUser (db: TestApp['database']['db'], projectIds: readonly string[]): Promise<string> {
  const id = randomUUID()
  await db.insertInto('user').values({ id, username: `mcp-${id.slice(0, 8)}` }).execute()
  if (projectIds.length > 0) await db.insertInto('collaborator').values(projectIds.map(projectId => ({ user_id: id, project_id: projectId, role: 'Developer' as const }))).execute()
  return id
}

// ---------------------------------------------------------------- a client that is not the SDK

/** What one POST to the MCP endpoint answered, read the way the transport spec describes it. */
export interface HttpAnswer {
  status: number
  headers: Headers
  /** JSON-RPC messages: the body of an application/json answer, or every SSE event's data of a text/event-stream one */
  messages: unknown[]
  body: string
}

/**
 * Server-Sent Events as the HTML spec defines them: events end at a blank line, `data:` lines of one event
 * join with "\n", a leading space after the colon is dropped, comment lines (":") are ignored.
 */
export function sseMessages (text: string): unknown[] {
  const messages: unknown[] = []
  let data: string[] = []
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') {
      if (data.length > 0) messages.push(JSON.parse(data.join('\n')))
      data = []
    } else if (line.startsWith('data:')) {
      data.push(line.slice(5).replace(/^ /, ''))
    }
  }
  if (data.length > 0) messages.push(JSON.parse(data.join('\n')))
  return messages
}

/** POSTs one JSON-RPC message with the headers every Streamable HTTP client must send (Accept both, JSON body). */
export async function post (url: string, message: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<HttpAnswer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: typeof message === 'string' ? message : JSON.stringify(message),
    ...(signal === undefined ? {} : { signal })
  })
  const body = await res.text()
  const type = res.headers.get('content-type') ?? ''
  const messages = type.startsWith('text/event-stream') ? sseMessages(body) : type.startsWith('application/json') && body !== '' ? [JSON.parse(body)] : []
  return { status: res.status, headers: res.headers, messages, body }
}
