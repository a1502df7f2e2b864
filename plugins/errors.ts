// One error handler and one not-found handler: every failure leaves as {statusCode, code, error, message}.
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errorBody, GatewayError, isClientDataError, isDatabaseUnavailable, REASON } from '../lib/errors.js'
import { redactTokens } from '../core/token.js'

export function errorHandler (err: FastifyError | GatewayError | Error, request: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof GatewayError) {
    void reply.code(err.statusCode).headers(err.headers).send(errorBody(err.statusCode, err.code, err.message))
    return
  }
  const fe = err as FastifyError
  if (fe.validation !== undefined) {
    void reply.code(400).send(errorBody(400, 'FST_ERR_VALIDATION', fe.message))
    return
  }
  if (isDatabaseUnavailable(err)) {
    request.log.warn({ err: { message: err.message, code: (err as { code?: unknown }).code } }, 'database unavailable')
    void reply.code(503).header('retry-after', '5').send(errorBody(503, 'MCP_UNAVAILABLE', 'the database is unavailable, retry shortly'))
    return
  }
  if (isClientDataError(err)) {
    request.log.warn({ err: { message: err.message, code: (err as { code?: unknown }).code } }, 'value refused by the database')
    void reply.code(400).send(errorBody(400, 'MCP_BAD_REQUEST', 'the request carries a value that cannot be stored (e.g. a NUL character or an unpaired surrogate)'))
    return
  }
  const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500
  if (status < 500) {
    // Fastify's own client errors (bad JSON, 413, 415...): keep their code, which is stable.
    void reply.code(status).send(errorBody(status, typeof fe.code === 'string' ? fe.code : 'MCP_BAD_REQUEST', fe.message))
    return
  }
  request.log.error({ err }, 'unhandled error')
  void reply.code(500).send(errorBody(500, 'MCP_INTERNAL', 'internal error; the request id in the logs identifies it'))
}

export function notFoundHandler (request: FastifyRequest, reply: FastifyReply): void {
  void reply.code(404).send(errorBody(404, 'MCP_NOT_FOUND', `no route ${request.method} ${redactTokens(request.url.split('?')[0] ?? '').slice(0, 512)}`))
}

/**
 * Fastify's `frameworkErrors`: a URL the router cannot decode (400 FST_ERR_BAD_URL) or a path parameter over
 * maxParamLength (414 FST_ERR_MAX_PARAM_LENGTH). Answered before any route or hook, so in the contract's body
 * and without echoing the URL (Fastify's own body repeats it, tokens included).
 */
export function frameworkErrorHandler (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 400
  const message = error.code === 'FST_ERR_BAD_URL'
    ? 'the URL is not valid (malformed percent-encoding)'
    : error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is too long' : 'the request could not be routed'
  void reply.code(status).send(errorBody(status, typeof error.code === 'string' ? error.code : 'MCP_BAD_REQUEST', message))
}

/**
 * Fastify's `clientErrorHandler`: requests Node's HTTP parser refuses (bad bytes in a header, headers over the size
 * limit, a request that took too long). No request exists yet, so nothing is routed, audited or logged with it;
 * the client still gets the contract's JSON body with a stable code.
 */
export function clientErrorHandler (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code, message] = err.code === 'HPE_HEADER_OVERFLOW'
    ? [431, 'MCP_HEADERS_TOO_LARGE', 'the request headers are too large']
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'MCP_REQUEST_TIMEOUT', 'the request was not received in time']
      : [400, 'MCP_BAD_REQUEST', 'the request is not valid HTTP']
  this.log.debug({ err: { code: err.code } }, 'client error')
  if (socket.writable) {
    const body = JSON.stringify(errorBody(status, code, message))
    socket.write(`HTTP/1.1 ${status} ${REASON[status] ?? 'Error'}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy(err)
}
