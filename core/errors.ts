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
