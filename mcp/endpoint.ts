// The native MCP endpoint (SPEC §7): POST at the chain's prefix root, bridged to the SDK's stateless handler without hijacking the reply.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { createMcpHandler } from '@modelcontextprotocol/server'
import { errorBody } from '../lib/errors.js'
import { restUrlFor } from '../core/links.js'
import { LISTEN_REFUSAL, MCP_REQUEST_ACTION, McpExchange, readMessage } from './exchange.js'
import { CallScope, createRequestServer, TOOLS_BY_NAME } from './server.js'
import type { ToolCaller } from './tools.js'
import { spendBudget, type BudgetRule } from '../core/budget.js'

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

interface JsonRpcError { jsonrpc: '2.0', error: { code: number, message: string }, id: string | number | null }
const jsonRpcError = (code: number, message: string, id: string | number | null = null): JsonRpcError =>
  ({ jsonrpc: '2.0', error: { code, message }, id })

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
  fastify.addHook('onResponse', async (request) => { exchanges.get(request)?.responseEnded() })

  fastify.post('/', {
    schema: {
      summary: 'MCP endpoint (Streamable HTTP, stateless)',
      description: 'Model Context Protocol, protocol versions 2025-11-25 and 2026-07-28: one JSON-RPC message per POST. ' +
        'The tools mirror the REST routes and share their budgets and audit actions.',
      tags: ['mcp'],
      operationId: 'mcp',
      security: [{ mcpToken: [] }]
    },
    config: { mcp: { action: MCP_REQUEST_ACTION, endpoint: true } }
  }, async (request, reply) => {
    // This request's row is written by its exchange: named after the tool it calls, with the tool's outcome.
    request.mcpAudit.skip = true
    const exchange = new McpExchange(services, request, reply, readMessage(request.body, TOOLS_BY_NAME))
    exchanges.set(request, exchange)
    const disconnected = new AbortController()
    // A client that goes away fires neither onResponse nor onRequestAbort here; 'close' always fires.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) disconnected.abort()
      exchange.responseEnded()
    })

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

    const caller: ToolCaller = { services, principal: request.mcpPrincipal, log: request.log, restUrl: restUrlFor(request, prefix, services.config.PUBLIC_BASE_URL), signal: disconnected.signal }
    const scope = new CallScope(caller, exchange)
    const response = await mcp.fetch(webRequestOf(request, disconnected.signal), { authInfo: scope.authInfo(), parsedBody: request.body })
    // Fastify 5 sends a WHATWG Response (status, headers, streamed body) through its normal pipeline: onSend/onResponse still run.
    return await reply.send(response)
  })

  fastify.route({
    method: ['GET', 'DELETE'],
    url: '/',
    schema: { hide: true },
    // every request to the endpoint spends a budget (SPEC §13.3): these the protocol's, through the chain's rate-limit step
    config: { mcp: { action: MCP_REQUEST_ACTION, endpoint: true, ...PROTOCOL_BUDGET } },
    handler: async (request, reply) => {
      // most clients GET first to look for an event stream: normal, so visible at info, not only at debug
      request.log.info({ method: request.method }, 'MCP endpoint: GET/DELETE answered 405 (stateless: POST only)')
      return await reply.code(405).header('allow', 'POST').send(errorBody(405, 'MCP_METHOD_NOT_ALLOWED',
        'this MCP endpoint is stateless: POST one JSON-RPC message per request; there is no event stream to GET and no session to DELETE'))
    }
  })
}

export default mcpEndpoint
