// One error handler and one not-found handler: every failure leaves as {statusCode, code, error, message}.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError, REASON } from '../core/errors.js'

export interface ErrorBody { statusCode: number, code: string, error: string, message: string }

export const errorBody = (statusCode: number, code: string, message: string): ErrorBody =>
  ({ statusCode, code, error: REASON[statusCode] ?? 'Error', message })

const PG_UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006', '57014'])

/** A database that is down, restarting, cut off or too slow — a 503 to retry, not a 500. */
export function isDatabaseUnavailable (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { code, message } = err as { code?: unknown, message?: unknown }
  if (typeof code === 'string' && PG_UNAVAILABLE_CODES.has(code)) return true
  return typeof message === 'string' && /Connection terminated|timeout exceeded when trying to connect|connection timeout|Client has encountered a connection error|not queryable/i.test(message)
}

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
  void reply.code(404).send(errorBody(404, 'MCP_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`))
}
