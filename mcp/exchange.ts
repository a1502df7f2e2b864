// One MCP exchange (one POST = one JSON-RPC message) and its single audit row: a tool call is named and judged by its tool.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Json } from '../db/schema.js'
import type { GatewayServices } from '../core/services.js'
import { recordAuditEntry } from '../core/audit.js'
import type { McpTool, ToolOutcome } from './tools.js'

/** The audit action of every MCP request that is not a call of one of our tools (initialize, tools/list, …). */
export const MCP_REQUEST_ACTION = 'mcp_request'

/** nginx's "client closed request": the client went away before the answer was complete. */
const CLIENT_CLOSED = 499

/** What the gateway reads from a JSON-RPC body before the SDK sees it, for routing refusals and the audit row. */
export interface RpcMessage {
  /** e.g. tools/call; null for a batch, a JSON-RPC response or a body without a method */
  method: string | null
  /** the request id, echoed by an error the gateway answers itself */
  id: string | number | null
  /** the tool a tools/call names, when it is one of ours */
  tool: McpTool | null
  /** why the message is refused before any tool runs (batch, unknown tool, no name): the SDK or the gateway answers a JSON-RPC error */
  refusal: string | null
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** subscriptions/listen opens a stream that never ends; the catalogue never changes, so there is nothing to listen for. */
export const LISTEN_REFUSAL = 'subscriptions/listen is not served: this server\'s tools never change, so there is nothing to subscribe to'

export function readMessage (body: unknown, tools: ReadonlyMap<string, McpTool>): RpcMessage {
  if (!isRecord(body)) {
    const refusal = Array.isArray(body) ? 'JSON-RPC batches are not supported: send one message per POST' : null
    return { method: null, id: null, tool: null, refusal }
  }
  const method = typeof body['method'] === 'string' ? body['method'] : null
  const id = typeof body['id'] === 'string' || typeof body['id'] === 'number' ? body['id'] : null
  if (method === 'subscriptions/listen') return { method, id, tool: null, refusal: LISTEN_REFUSAL }
  if (method !== 'tools/call') return { method, id, tool: null, refusal: null }
  const name = isRecord(body['params']) ? body['params']['name'] : undefined
  if (typeof name !== 'string') return { method, id, tool: null, refusal: 'tools/call without a tool name' }
  const tool = tools.get(name)
  if (tool === undefined) return { method, id, tool: null, refusal: `unknown tool ${JSON.stringify(name.slice(0, 128))}` }
  return { method, id, tool, refusal: null }
}

/**
 * Collects what happens to one MCP request and writes its audit row once both the answer is over (sent
 * or abandoned by the client) and the tool call, if one runs, has settled. The row of a tool call carries
 * the tool's own outcome (a refusal travels inside an HTTP 200), so it matches what its REST twin records.
 */
export class McpExchange {
  private outcome: ToolOutcome | null = null
  private toolRunning = false
  private ended = false
  /** whether the whole answer reached the socket, judged when the response ended (a later send to a closed socket does not count) */
  private answered = true
  private recorded = false
  /** read now: once the client has hung up, the socket no longer knows its peer */
  private readonly ip: string

  constructor (
    private readonly services: GatewayServices,
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    readonly message: RpcMessage
  ) {
    this.ip = (request.ip ?? '').slice(0, 64)
  }

  /** false when the client has already gone: nobody would read the result, so the tool must not run */
  toolStarted (): boolean {
    if (this.ended) return false
    this.toolRunning = true
    return true
  }

  toolFinished (outcome: ToolOutcome): void {
    this.toolRunning = false
    this.outcome = outcome
    this.settle()
  }

  /** from onResponse and from the raw response's 'close' (a client disconnect fires no onResponse); idempotent */
  responseEnded (): void {
    if (!this.ended) {
      this.ended = true
      this.answered = this.reply.raw.writableFinished
    }
    this.settle()
  }

  private settle (): void {
    if (this.recorded || !this.ended || this.toolRunning) return
    this.recorded = true
    // Called from a socket's 'close' listener too: a throw there would take the process down.
    try {
      this.record()
    } catch (err) {
      this.request.log.error({ err }, 'MCP audit row not recorded')
    }
  }

  private statusCode (): number {
    if (this.outcome !== null) return this.outcome.statusCode
    if (!this.answered) return CLIENT_CLOSED
    // The SDK answers an unknown tool or a nameless call with a JSON-RPC error, often inside an HTTP 200.
    if (this.message.refusal !== null && this.reply.statusCode < 400) return 400
    return this.reply.statusCode
  }

  /** The same row recordAudit (plugins/audit.ts) writes, with the status of the tool call instead of the HTTP one. */
  private record (): void {
    const { request, reply, services, message, answered } = this
    const statusCode = this.statusCode()
    const action = message.tool?.name ?? MCP_REQUEST_ACTION
    const details: Record<string, Json> = { rpc_method: message.method }
    const version = request.headers['mcp-protocol-version']
    if (typeof version === 'string') details['protocol_version'] = version.slice(0, 32)
    if (!answered) details['client_closed'] = true
    const error = this.outcome?.error ?? message.refusal ?? (answered ? null : 'the client closed the connection before the answer was complete')
    recordAuditEntry(services, request, reply, {
      action,
      statusCode,
      tokenId: request.mcpAudit.tokenId,
      userId: request.mcpAudit.userId,
      projectId: this.outcome?.projectId ?? null,
      details,
      error: error === null ? null : error.slice(0, 1000),
      via: 'mcp',
      ip: this.ip
    })
  }
}
