// JSON-RPC 2.0 as the MCP endpoint speaks it, for the OpenAPI document (the SDK validates the messages themselves).
import { Type } from '@fastify/type-provider-typebox'

const RequestId = Type.Union([Type.String(), Type.Integer()], { description: 'chosen by the client; echoed in the response' })

/** One message a client POSTs: a request (with an id) or a notification (without). */
export const JsonRpcRequest = Type.Object({
  jsonrpc: Type.Literal('2.0'),
  id: Type.Optional(RequestId),
  method: Type.String({
    description: 'e.g. initialize (2025-11-25), server/discover (2026-07-28), tools/list, tools/call, ping, ' +
      'notifications/initialized (a notification: no id, answered 202)',
    examples: ['tools/call']
  }),
  params: Type.Optional(Type.Record(Type.String(), Type.Unknown(), {
    description: 'for tools/call: {name: "<tool, e.g. list_builds>", arguments: {…the tool\'s input…}}; ' +
      'for initialize: {protocolVersion, capabilities, clientInfo}'
  }))
}, { $id: 'JsonRpcRequest', description: 'One JSON-RPC 2.0 message; batches (arrays) are refused with a JSON-RPC error' })

const JsonRpcErrorObject = Type.Object({
  code: Type.Integer({ description: 'JSON-RPC error code: -32700 parse error, -32600 invalid request, -32601 method not found, -32602 invalid params, -32000 transport refusal' }),
  message: Type.String(),
  data: Type.Optional(Type.Unknown())
})

/** What the endpoint answers: a result or an error for the request's id. */
export const JsonRpcResponse = Type.Union([
  Type.Object({
    jsonrpc: Type.Literal('2.0'),
    id: RequestId,
    result: Type.Record(Type.String(), Type.Unknown(), {
      description: 'for tools/call: {content: [...], structuredContent: {...}, isError?: true} — a refusal inside a tool ' +
        '(project outside the scope, no trigger right, budget spent) is a result with isError: true'
    })
  }, { title: 'result' }),
  Type.Object({
    jsonrpc: Type.Literal('2.0'),
    id: Type.Union([RequestId, Type.Null()]),
    error: JsonRpcErrorObject
  }, { title: 'error' })
], { $id: 'JsonRpcResponse', description: 'A JSON-RPC 2.0 response: `result` or `error`, never both' })

/** An error answer alone, for the statuses that carry only errors. */
export const JsonRpcErrorResponse = Type.Object({
  jsonrpc: Type.Literal('2.0'),
  id: Type.Union([RequestId, Type.Null()]),
  error: JsonRpcErrorObject
}, { $id: 'JsonRpcErrorResponse' })
