// The native MCP endpoint (SPEC §7): POST at the chain's prefix root, bridged to the SDK's stateless handler without hijacking the reply.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { classifyInboundRequest, createMcpHandler, isJsonContentType, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/server'
import { errorBody } from '../lib/errors.js'
import { Disconnect } from '../lib/disconnect.js'
import { restUrlFor } from '../core/links.js'
import { LISTEN_REFUSAL, MCP_REQUEST_ACTION, McpExchange, readMessage } from './exchange.js'
import { CallScope, createRequestServer, TOOLS_BY_NAME } from './server.js'
import type { McpTool, ToolCaller } from './tools.js'
import { spendBudget, type BudgetRule } from '../core/budget.js'
import { JsonRpcErrorResponse, JsonRpcRequest, JsonRpcResponse } from '../schemas/mcp.js'
import { mcpRouteConfig, type RouteDocument } from '../core/route-config.js'

/** The budget of MCP traffic that is not a tool call (MCP_RATE_LIMIT_PROTOCOL_RPM). */
export const PROTOCOL_BUDGET = { bucket: 'mcp_protocol', rpm: 'protocol' } as const satisfies BudgetRule

/**
 * Headers the SDK's Request does not get: the body's framing (the body travels parsed, as `parsedBody`)
 * and the credentials, which the chain has already checked and the SDK has no use for.
 */
const WITHHELD_HEADERS = new Set(['content-length', 'transfer-encoding', 'authorization', 'cookie'])

/**
 * The SDK speaks WHATWG fetch: the same method, path and headers, no body, and a signal that fires when the
 * client goes. The SDK reads no origin from the URL, so a fixed one keeps an odd Host header from breaking it.
 */
function webRequestOf (request: FastifyRequest, signal: AbortSignal): Request {
  const headers = new Headers()
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || name.startsWith(':') || WITHHELD_HEADERS.has(name)) continue
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one)
  }
  return new Request(new URL(request.url, 'http://gateway.invalid'), { method: request.method, headers, signal })
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name]
  return typeof value === 'string' ? value : undefined
}

/** The keys a 2025-era tools/call's params may have for the direct path; anything else goes through the SDK. */
const CALL_PARAM_KEYS: ReadonlySet<string> = new Set(['name', 'arguments', '_meta'])

/** The top-level keys of a tools/call request with nothing else in it. */
const REQUEST_KEYS: ReadonlySet<string> = new Set(['jsonrpc', 'id', 'method', 'params'])
const CANONICAL_CALL = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_projects', arguments: {} } }

/**
 * MCP-Protocol-Version headers under which the SDK's classifier takes a plain tools/call for a 2025-era request (and
 * the header's absence): asked of the SDK itself once, so the era boundary stays the SDK's.
 */
const LEGACY_VERSION_HEADERS: ReadonlySet<string | undefined> = new Set([undefined, ...SUPPORTED_PROTOCOL_VERSIONS].filter(version =>
  classifyInboundRequest({ httpMethod: 'POST', protocolVersionHeader: version, body: CANONICAL_CALL }).kind === 'legacy'))

/**
 * A tools/call whose era the SDK's classifier would judge legacy without running it (three schema parses per request):
 * exactly `{ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments? } }` with an id the JSON-RPC request
 * schema takes (a string or a safe integer), no `_meta` (so no 2026-era envelope claim), no Mcp-Method / Mcp-Name
 * header, and a version header that classifies a plain call as legacy (or none). The caller has checked params' keys and
 * types already (params is body.params). Anything else still goes through `classifyInboundRequest` (test/mcp/direct-call.test.ts checks they agree).
 */
export function isPlainLegacyCall (body: Record<string, unknown>, params: Record<string, unknown>, version: string | undefined, methodHeader: string | undefined, nameHeader: string | undefined): boolean {
  if (methodHeader !== undefined || nameHeader !== undefined || !LEGACY_VERSION_HEADERS.has(version)) return false
  if (body['jsonrpc'] !== '2.0' || body['method'] !== 'tools/call' || body['params'] !== params || params['_meta'] !== undefined || typeof params['name'] !== 'string') return false
  const id = body['id']
  if (typeof id !== 'string' && !Number.isSafeInteger(id)) return false
  for (const key in body) if (!REQUEST_KEYS.has(key)) return false
  return true
}

/** The SSE framing and headers the SDK's stateless transport answers a request with (one `message` event). */
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' }

/**
 * A `tools/call` of one of our tools that the SDK's 2025-era stateless transport would serve, with everything
 * that transport checks already true: a JSON-RPC request with an id, params of the call's own shape, both
 * media types accepted, a JSON body, a protocol version it supports or none, and no 2026-era envelope claim.
 * Such a call is answered by the endpoint itself — the same tool call, the same result, framed as the SDK
 * frames it — instead of building an McpServer with every tool registered, a WHATWG Request and a streamed
 * Response for one message (most of the MCP path's cost: docs/performance.md). Every other message, and
 * any of these that is not exactly right, goes to the SDK, which answers or refuses it as before.
 */
function directCall (request: FastifyRequest, tool: McpTool | null, id: string | number | null): { tool: McpTool, id: string | number, args: Record<string, unknown> } | null {
  const body = request.body
  if (tool === null || id === null || !isPlainObject(body) || body['jsonrpc'] !== '2.0') return null
  const params = body['params']
  if (!isPlainObject(params)) return null
  for (const key of Object.keys(params)) if (!CALL_PARAM_KEYS.has(key)) return null
  const args = params['arguments'] ?? {}
  if (!isPlainObject(args) || (params['_meta'] !== undefined && !isPlainObject(params['_meta']))) return null
  const accept = header(request, 'accept')
  if (accept === undefined || !accept.includes('application/json') || !accept.includes('text/event-stream')) return null
  if (!isJsonContentType(header(request, 'content-type') ?? null)) return null
  const version = header(request, 'mcp-protocol-version')
  if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return null
  const methodHeader = header(request, 'mcp-method')
  const nameHeader = header(request, 'mcp-name')
  if (isPlainLegacyCall(body, params, version, methodHeader, nameHeader)) return { tool, id, args }
  const era = classifyInboundRequest({ httpMethod: 'POST', protocolVersionHeader: version, mcpMethodHeader: methodHeader, mcpNameHeader: nameHeader, body })
  return era.kind === 'legacy' ? { tool, id, args } : null
}

interface JsonRpcError { jsonrpc: '2.0', error: { code: number, message: string }, id: string | number | null }
const jsonRpcError = (code: number, message: string, id: string | number | null = null): JsonRpcError =>
  ({ jsonrpc: '2.0', error: { code, message }, id })

const SSE = { type: 'string', description: 'server-sent events; each event\'s data is one JSON-RPC message, the last one the response' }

/** The endpoint's exchange as the OpenAPI document shows it: the body goes to the SDK unvalidated, the answers come from it. */
const ENDPOINT_DOCUMENT: RouteDocument = {
  body: { description: 'One JSON-RPC 2.0 message', content: { 'application/json': JsonRpcRequest } },
  responses: {
    200: { description: 'The JSON-RPC response: as JSON, or as an SSE stream when the SDK streams it (Accept must list both)', content: { 'application/json': JsonRpcResponse, 'text/event-stream': SSE } },
    202: { description: 'A notification or a response from the client: accepted, no body' },
    400: { description: 'A JSON-RPC error: a body that is not one JSON-RPC message (a batch, invalid JSON-RPC), or an unknown protocol version', content: { 'application/json': JsonRpcErrorResponse } },
    404: { description: 'A JSON-RPC error: a method this server does not serve (2026-07-28), or subscriptions/listen', content: { 'application/json': JsonRpcErrorResponse } },
    406: { description: 'A JSON-RPC error: Accept does not list both application/json and text/event-stream', content: { 'application/json': JsonRpcErrorResponse } }
  }
}

/**
 * Register inside the chain (gateway.ts), after the origin guard, auth and the audit context apply. The
 * route has no bucket in `config.mcp`: each tool call spends its own bucket inside the tool.
 */
export async function mcpEndpoint (fastify: FastifyInstance): Promise<void> {
  const services = fastify.mcpGateway
  const prefix = fastify.mcpPrefix
  // One handler per gateway; it builds a new McpServer per request (a stateless instance serves one exchange).
  const mcp = createMcpHandler(createRequestServer, {
    legacy: 'stateless',
    onerror: (err) => { fastify.log.warn({ err: err.message }, 'MCP request refused or failed in the SDK') }
  })
  fastify.addHook('onClose', async () => { await mcp.close() })

  const exchanges = new WeakMap<FastifyRequest, McpExchange>()
  fastify.addHook('onResponse', (request, _reply, done) => {
    exchanges.get(request)?.responseEnded()
    done()
  })

  fastify.post('/', {
    schema: {
      summary: 'MCP endpoint (Streamable HTTP, stateless)',
      description: 'Model Context Protocol, protocol versions 2025-11-25 and 2026-07-28: one JSON-RPC message per POST. ' +
        'The tools mirror the REST routes and share their budgets and audit actions.',
      operationId: 'mcp'
    },
    config: mcpRouteConfig({
      action: MCP_REQUEST_ACTION,
      endpoint: true,
      openapi: ENDPOINT_DOCUMENT,
      // the endpoint spends mcp_protocol itself (not through the chain's rate-limit step: a tool call spends its tool's bucket)
      refusals: { 429: 'MCP_RATE_LIMITED: the token\'s user has spent the mcp_protocol budget of the last 60 s (initialize, discover, tools/list, ping, unknown tools; MCP_RATE_LIMIT_PROTOCOL_RPM), or a tool call its tool\'s budget (then an isError result)' }
    })
  }, async (request, reply) => {
    // This request's row is written by its exchange: named after the tool it calls, with the tool's outcome.
    request.mcpAudit.skip = true
    const exchange = new McpExchange(services, request, reply, readMessage(request.body, TOOLS_BY_NAME))
    exchanges.set(request, exchange)
    // fires when the client goes before the answer is complete; made on first use (a wait, or the SDK's Request)
    const disconnect = new Disconnect(reply.raw)
    // A client that goes away fires neither onResponse nor onRequestAbort here; 'close' always fires.
    reply.raw.once('close', () => { exchange.responseEnded() })

    // One POST = one call, so one audit row and one budget hit per request.
    if (Array.isArray(request.body)) {
      return await reply.code(400).send(jsonRpcError(-32600, exchange.message.refusal ?? 'batches are not supported'))
    }
    // 404 + Method not found is what the 2026-07-28 transport prescribes for a method the server does not implement.
    if (exchange.message.method === 'subscriptions/listen') {
      return await reply.code(404).send(jsonRpcError(-32601, LISTEN_REFUSAL, exchange.message.id))
    }

    // Anything but a call of one of our tools (initialize, discover, tools/list, ping, an unknown tool) spends the
    // mcp_protocol budget here; a tool call spends its tool's bucket inside the tool (SPEC §13.3). A 429 thrown
    // here is this exchange's answer and its audit row.
    if (exchange.message.tool === null) {
      const { headers } = await spendBudget(services, request.mcpPrincipal.userId, PROTOCOL_BUDGET)
      void reply.headers(headers)
    }

    const caller: ToolCaller = {
      services,
      principal: request.mcpPrincipal,
      log: request.log,
      restUrl: restUrlFor(request, prefix, services.config.PUBLIC_BASE_URL),
      get signal () { return disconnect.signal }
    }
    const scope = new CallScope(caller, exchange)
    const direct = directCall(request, exchange.message.tool, exchange.message.id)
    if (direct !== null) {
      const { result, resultJson } = await scope.run(direct.tool, direct.args)
      // JSON.stringify({ jsonrpc, id, result }) with the result's JSON as the tool made it (JSON has no raw newline, so one data line)
      return await reply.code(200).headers(SSE_HEADERS)
        .send(`event: message\ndata: {"jsonrpc":"2.0","id":${JSON.stringify(direct.id)},"result":${resultJson ?? JSON.stringify(result)}}\n\n`)
    }
    const response = await mcp.fetch(webRequestOf(request, disconnect.signal), { authInfo: scope.authInfo(), parsedBody: request.body })
    // Fastify 5 sends a WHATWG Response (status, headers, streamed body) through its normal pipeline: onSend/onResponse still run.
    return await reply.send(response)
  })

  fastify.route({
    method: ['GET', 'DELETE'],
    url: '/',
    schema: { hide: true },
    // every request to the endpoint spends a budget (SPEC §13.3): these the protocol's, through the chain's rate-limit step
    config: mcpRouteConfig({ action: MCP_REQUEST_ACTION, endpoint: true, ...PROTOCOL_BUDGET }),
    handler: async (request, reply) => {
      // most clients GET first to look for an event stream: normal, so visible at info, not only at debug
      request.log.info({ method: request.method }, 'MCP endpoint: GET/DELETE answered 405 (stateless: POST only)')
      return await reply.code(405).header('allow', 'POST').send(errorBody(405, 'MCP_METHOD_NOT_ALLOWED',
        'this MCP endpoint is stateless: POST one JSON-RPC message per request; there is no event stream to GET and no session to DELETE'))
    }
  })
}

export default mcpEndpoint
