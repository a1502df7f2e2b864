// Audit entries: what the chain learns about a request, and the one mcp_access_log row each audited call becomes.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuditOutcome, Json } from '../db/schema.js'
import type { GatewayServices } from './services.js'
import { redactTokens, TOKEN_ID_SHAPE } from './token.js'
import { UUID } from '../lib/ids.js'

/** What the chain learns about a request as it passes, for its audit row. */
export interface AuditContext {
  tokenId: string | null
  userId: string | null
  projectId: string | null
  details: Json | null
  error: string | null
  via: 'rest' | 'mcp'
  /** set when one HTTP request stands for several audited calls (MCP) or none */
  skip: boolean
  /** when the status alone does not say it (an OAuth consent denied is a 302 recorded as `forbidden`) */
  outcome?: AuditOutcome
}

export function outcomeOf (statusCode: number): AuditOutcome {
  if (statusCode < 400) return 'success'
  switch (statusCode) {
    case 401: return 'unauthorized'
    case 403: return 'forbidden'
    case 429: return 'rate_limited'
    case 404: case 410: return 'not_found'
    case 400: case 405: case 406: case 408: case 413: case 414: case 415: case 422: case 431: return 'bad_request'
    default: return 'failure'
  }
}

/** The address to record: Fastify's `request.ip` honours TRUST_PROXY. */
const ipOf = (request: FastifyRequest): string => request.ip.slice(0, 64)

/** What one audited call adds to the request's own facts (method, path, ip, request id, timing). */
export interface AuditEntry extends Omit<AuditContext, 'skip'> {
  action: string
  statusCode: number
  /** the client's address when it was read earlier (a closed socket no longer knows its peer) */
  ip?: string
}

/** A client's own `X-Request-Id` worth keeping: short, and made of characters no log or query can misread. */
export const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/

/**
 * The row's `request_id` is the gateway's own id (SPEC §13.12); the id a client sent, when well formed, joins the
 * details as `client_request_id`, so an operator can still find a client's request without the client choosing ids.
 */
function withClientRequestId (request: FastifyRequest, details: Json | null): Json | null {
  const given = request.headers['x-request-id']
  if (typeof given !== 'string' || !CLIENT_REQUEST_ID.test(given)) return details
  if (details === null) return { client_request_id: given }
  return typeof details === 'object' && !Array.isArray(details) ? { ...details, client_request_id: given } : { details, client_request_id: given }
}

/** The URL without its query string. */
function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** A value for a uuid column: a canonical UUID (lower-cased), else null; the column must never see what it would refuse. */
const uuidColumn = (v: string | null): string | null => v !== null && UUID.test(v) ? v.toLowerCase() : null

/** Builds the row of one finished call and hands it to the writer (synchronous, cannot fail); counts it. */
export function recordAuditEntry (services: GatewayServices, request: FastifyRequest, reply: FastifyReply, e: AuditEntry): void {
  const outcome = e.outcome ?? outcomeOf(e.statusCode)
  services.audit.record({
    token_id: e.tokenId !== null && TOKEN_ID_SHAPE.test(e.tokenId) ? e.tokenId : null,
    user_id: uuidColumn(e.userId),
    action: e.action,
    outcome,
    details: withClientRequestId(request, e.details),
    error: e.error,
    ip: e.ip ?? ipOf(request),
    accessed_at: new Date(Date.now() - reply.elapsedTime),
    project_id: uuidColumn(e.projectId),
    status_code: e.statusCode,
    duration_ms: Math.round(reply.elapsedTime * 1000) / 1000,
    method: request.method,
    path: redactTokens(pathOf(request.url)).slice(0, 2048),
    request_id: String(request.id),
    via: e.via
  })
  services.metrics.observeCall(e.action, outcome, e.via, reply.elapsedTime / 1000)
}

/** The row of a request that is one call: its HTTP status and what the chain learned on the way. */
export function recordAudit (services: GatewayServices, request: FastifyRequest, reply: FastifyReply, action: string, a: AuditContext): void {
  recordAuditEntry(services, request, reply, {
    action, statusCode: reply.statusCode, tokenId: a.tokenId, userId: a.userId, projectId: a.projectId, details: a.details, error: a.error, via: a.via, outcome: a.outcome
  })
}

export const newAuditContext = (): AuditContext =>
  ({ tokenId: null, userId: null, projectId: null, details: null, error: null, via: 'rest', skip: false })
