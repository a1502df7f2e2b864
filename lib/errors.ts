// The gateway's error type: every refusal carries an HTTP status and one of the contract's stable codes.
export type ErrorCode =
  | 'MCP_INVALID_TOKEN'
  | 'MCP_FORBIDDEN_PATH'
  | 'MCP_PROJECT_FORBIDDEN'
  | 'MCP_TRIGGER_FORBIDDEN'
  | 'MCP_RATE_LIMITED'
  | 'MCP_NOT_FOUND'
  | 'MCP_CONFLICT'
  | 'MCP_UNAVAILABLE'
  | 'MCP_UNAUTHORIZED'
  | 'MCP_BAD_REQUEST'
  | 'MCP_GONE'
  | 'MCP_UNPROCESSABLE'
  | 'MCP_ORIGIN_FORBIDDEN'
  | 'MCP_HEADERS_TOO_LARGE'
  | 'MCP_REQUEST_TIMEOUT'
  | 'MCP_METHOD_NOT_ALLOWED'
  | 'MCP_CROSS_SITE'
  | 'MCP_ENV_FORBIDDEN'

export class GatewayError extends Error {
  readonly statusCode: number
  readonly code: ErrorCode
  /** Extra response headers (e.g. Retry-After, WWW-Authenticate). */
  readonly headers: Record<string, string>

  constructor (statusCode: number, code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'GatewayError'
    this.statusCode = statusCode
    this.code = code
    this.headers = headers
  }
}

export const badRequest = (message: string): GatewayError => new GatewayError(400, 'MCP_BAD_REQUEST', message)
export const notFound = (message: string): GatewayError => new GatewayError(404, 'MCP_NOT_FOUND', message)
export const conflict = (message: string): GatewayError => new GatewayError(409, 'MCP_CONFLICT', message)
export const gone = (message: string): GatewayError => new GatewayError(410, 'MCP_GONE', message)
export const unprocessable = (message: string): GatewayError => new GatewayError(422, 'MCP_UNPROCESSABLE', message)
export const forbiddenProject = (projectId: string): GatewayError =>
  new GatewayError(403, 'MCP_PROJECT_FORBIDDEN', `this token may not access project ${projectId}`)
export const forbiddenTrigger = (projectId: string): GatewayError =>
  new GatewayError(403, 'MCP_TRIGGER_FORBIDDEN', `this token may not trigger builds of project ${projectId}`)
export const unavailable = (message = 'a backing service is unavailable, retry shortly', retryAfterSeconds = 5): GatewayError =>
  new GatewayError(503, 'MCP_UNAVAILABLE', message, { 'retry-after': String(retryAfterSeconds) })

/** HTTP reason phrases for the statuses the gateway answers with. */
export const REASON: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable'
}

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

// PostgreSQL refusing a value a client sent: NUL in text (22021), \u0000 in jsonb (22P05), an unpaired surrogate in
// jsonb or another malformed literal (22P02). The schemas refuse these first; this keeps any path they miss a 400.
const PG_CLIENT_DATA_CODES = new Set(['22021', '22P05', '22P02'])

export function isClientDataError (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { code, severity } = err as { code?: unknown, severity?: unknown }
  return typeof code === 'string' && PG_CLIENT_DATA_CODES.has(code) && typeof severity === 'string'
}

/**
 * PostgreSQL refusing the values of a row rather than being unreachable: a data exception (SQLSTATE class 22:
 * a malformed uuid, a value too long, out of range, NUL in text…) or an integrity violation (class 23: a NULL in
 * a NOT NULL column). Sending the same row again fails the same way; the audit writer repairs it instead.
 */
export function isRowDataError (err: unknown): boolean {
  if (typeof err !== 'object' || err === null || isDatabaseUnavailable(err)) return false
  const { code, severity } = err as { code?: unknown, severity?: unknown }
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code) && typeof severity === 'string'
}
