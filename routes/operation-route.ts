// Turns an operation into its REST route: method, schemas, the chain's config under config.mcp, and a thin handler. Not autoloaded: route files below call it.
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { Disconnect } from '../lib/disconnect.js'
import { restUrlFor } from '../core/links.js'
import { mcpRouteConfig, OPENAPI_TAGS, type RouteDocument } from '../core/route-config.js'
import type { Static, TObject } from '@fastify/type-provider-typebox'
import type { AnyOperation, Operation, OperationContext } from '../core/operations/index.js'
import { IdempotencyHeaders } from '../schemas/agent.js'

/** The context of a REST call; `signal` (the client hung up) is made on first read (lib/disconnect.ts). */
export function operationContext (fastify: FastifyInstance, request: FastifyRequest, reply: FastifyReply, idempotencyKey?: string): OperationContext {
  return new RestContext(fastify, request, reply, idempotencyKey)
}

/** A class, not a literal with a getter: one shape for every request, the getter on the prototype. */
class RestContext implements OperationContext {
  readonly services: OperationContext['services']
  readonly principal: OperationContext['principal']
  readonly project: OperationContext['project']
  readonly restUrl: OperationContext['restUrl']
  readonly idempotencyKey: string | undefined
  readonly #disconnect: Disconnect

  constructor (fastify: FastifyInstance, request: FastifyRequest, reply: FastifyReply, idempotencyKey: string | undefined) {
    this.services = fastify.mcpGateway
    this.principal = request.mcpPrincipal
    this.project = request.mcpProject ?? null
    this.restUrl = restUrlFor(request, fastify.mcpPrefix, fastify.mcpGateway.config.PUBLIC_BASE_URL)
    this.idempotencyKey = idempotencyKey
    this.#disconnect = new Disconnect(reply.raw)
  }

  get signal (): AbortSignal { return this.#disconnect.signal }
}

/** The arguments of an operation from a request its route's schemas have already validated (params, then query or body). */
export function operationArgs<P extends TObject, I extends TObject> (op: Operation<P, I, TObject>, request: FastifyRequest): Static<P> & Static<I> {
  const input = op.method === 'POST' ? request.body : request.query
  return { ...(request.params as Static<P>), ...(input as Static<I>) }
}

async function absentBodyIsEmpty (request: FastifyRequest): Promise<void> {
  if (request.body === undefined) request.body = {}
}

/**
 * Route options for `op`, mounted by the route file in the folder that mirrors `op.path` (checked here, so the
 * README, OpenAPI and the folder agree). The schema holds the success answer only: the OpenAPI document derives the
 * refusals from `config.mcp` (the chain's steps the route passes) and the operation's own `refusals`
 * (plugins/openapi.ts); `document` says what it cannot see, for routes that answer differently (text/plain, a stream).
 */
export function operationRoute (fastify: FastifyInstance, op: AnyOperation, document?: RouteDocument): RouteOptions {
  const folder = fastify.prefix.slice(fastify.mcpPrefix.length)
  if (folder !== op.path) throw new Error(`operation ${op.name} is declared at ${op.path} but its route file sits at ${folder}`)
  const hasParams = Object.keys(op.params.properties).length > 0
  return {
    method: op.method,
    url: '/',
    schema: {
      summary: op.title,
      description: op.description,
      tags: [OPENAPI_TAGS[op.tag ?? 'agent'].name],
      operationId: op.name,
      ...(hasParams ? { params: op.params } : {}),
      ...(op.method === 'POST' ? { body: op.input } : { querystring: op.input }),
      ...(op.idempotencyKey === true ? { headers: IdempotencyHeaders } : {}),
      response: { [op.successStatus]: op.output }
    },
    config: mcpRouteConfig({
      action: op.name,
      bucket: op.bucket,
      rpm: op.rpm,
      failClosed: op.failClosed,
      trigger: op.trigger,
      ...(op.refusals !== undefined ? { refusals: op.refusals } : {}),
      ...(document !== undefined ? { openapi: document } : {})
    }),
    // A POST may come without a body (`curl -X POST`): it is validated as {}, so an action whose fields are all optional needs none (JSON `null` is still a 400).
    ...(op.method === 'POST' ? { preValidation: absentBodyIsEmpty } : {}),
    handler: async (request, reply) => {
      // A client that hangs up ends a long operation (a wait) at once: ctx.signal.
      const key = request.headers['idempotency-key']
      const ctx = operationContext(fastify, request, reply, op.idempotencyKey === true && typeof key === 'string' ? key : undefined)
      const result = await op.run(ctx, operationArgs(op, request))
      return await reply.code(op.successStatus).send(result)
    }
  }
}
