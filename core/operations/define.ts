// What an operation is: one action an agent can take, defined once; its REST route, MCP tool, audit action, budget and README rows derive from it.
import type { Static, TObject } from '@fastify/type-provider-typebox'
import type { ContentBlock } from '@modelcontextprotocol/server'
import type { BucketLimits } from '../budget.js'
import type { Principal, ProjectGrant } from '../access.js'
import type { GatewayServices } from '../services.js'
import type { Refusals } from '../route-config.js'

export interface OperationContext {
  services: GatewayServices
  principal: Principal
  /** the authorized project (for operations on one project), null for those that name none */
  project: ProjectGrant | null
  /** absolute URL of a REST route below the gateway's prefix (`path` starts with '/'), for links in answers */
  restUrl: (path: string) => string
  /** fires when the caller has gone (the client closed its connection): long operations (wait_for_build) stop early */
  signal?: AbortSignal
  /** the caller's Idempotency-Key (REST header) or idempotency_key (MCP argument), for operations that take one */
  idempotencyKey?: string
}

export interface ToolAnnotations { readOnlyHint: boolean, destructiveHint: boolean, idempotentHint: boolean, openWorldHint: boolean }

export interface Operation<P extends TObject = TObject, I extends TObject = TObject, O extends TObject = TObject> {
  /** the MCP tool's name and the audit action of both twins */
  name: string
  title: string
  /** written for a model: what comes back, where to start, how to page, what it costs */
  description: string
  /** the REST route below the gateway's prefix, e.g. `/projects/:projectId/builds`; its autoloaded folder must match */
  path: string
  method: 'GET' | 'POST'
  /** the rate-limit budget it spends, shared with its twin, and that budget's rpm (a BucketLimits key) */
  bucket: string
  rpm: keyof BucketLimits
  /** 503 instead of going on while the limiter cannot answer */
  failClosed: boolean
  /** path parameters of the REST route; `projectId` among them means project access is checked */
  params: P
  /** query string (GET) or body (POST) */
  input: I
  output: O
  /** the status of a success (201 for what creates a build) */
  successStatus: 200 | 201
  /** needs the token's allow_trigger */
  trigger: boolean
  annotations: ToolAnnotations
  /** its answers carry text from CI (logs, messages, artifacts): MCP results say so in _meta, the tool's description too */
  untrusted?: boolean
  /** takes an idempotency key: the `Idempotency-Key` header over REST, the `idempotency_key` argument over MCP */
  idempotencyKey?: boolean
  /**
   * what `run` itself can refuse over REST, status → when (e.g. `{ 410: 'MCP_GONE: the log was deleted' }`). The chain's
   * refusals (401, 429, 403/404 for a project, 403 for the trigger right, 400 for bad input, 404 for an id in the path
   * that names nothing, 503) are derived for the OpenAPI document from the fields above; list only the handler's own.
   */
  refusals?: Refusals
  /** the OpenAPI tag: `data` for SPEC §5's records, `agent` (the default) for the tools that answer or act */
  tag?: 'data' | 'agent'
  /** the work; the same for REST and MCP */
  run (ctx: OperationContext, args: Static<P> & Static<I>): Promise<Static<O>>
  /** MCP content blocks after the JSON text (default none), e.g. a resource_link */
  toolContent? (result: Static<O>): ContentBlock[]
}

/** The schema of an idempotency key, for the MCP argument that carries it (REST carries it as a header). */
export { IdempotencyKey } from '../../schemas/agent.js'

/** An operation with its schema types erased, as the lists, the route builder and the MCP server hold it. */
export type AnyOperation = Operation<TObject, TObject, TObject>

export const READ: ToolAnnotations = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false }

type Defaults = 'method' | 'failClosed' | 'successStatus' | 'trigger' | 'annotations'

/** An operation with the defaults of a read: GET, fail-open, 200, no trigger right, read-only annotations. */
export function defineOperation<P extends TObject, I extends TObject, O extends TObject> (op: Omit<Operation<P, I, O>, Defaults> & Partial<Pick<Operation<P, I, O>, Defaults>>): Operation<P, I, O> {
  return { method: 'GET', failClosed: false, successStatus: 200, trigger: false, annotations: READ, ...op }
}

/** The project the chain authorized; operations with a projectId param always have one. */
export function projectOf (ctx: OperationContext): ProjectGrant {
  if (ctx.project === null) throw new Error('operation needs an authorized project')
  return ctx.project
}

/** The sentence every description ends with: which budget a call spends. */
export const budgetNote = (bucket: string, rpmHint = ''): string =>
  ` Costs one call of your ${bucket} budget${rpmHint === '' ? '' : ` (${rpmHint})`}, per user per minute.`
