// Turns an operation into its REST route: method, schemas, the chain's config under config.mcp, and a thin handler. Not autoloaded: route files below call it.
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify'
import { ErrorBody } from '../schemas/common.js'
import { restUrlFor } from '../core/links.js'
import type { Static, TObject } from '@fastify/type-provider-typebox'
import type { AnyOperation, Operation, OperationContext } from '../core/operations/index.js'
import { IdempotencyHeaders } from '../schemas/agent.js'

const REFUSALS = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 410: ErrorBody, 422: ErrorBody, 429: ErrorBody, 503: ErrorBody }

export const operationContext = (fastify: FastifyInstance, request: FastifyRequest): OperationContext => ({
  services: fastify.mcpGateway,
  principal: request.mcpPrincipal,
  project: request.mcpProject ?? null,
  restUrl: restUrlFor(request, fastify.mcpPrefix, fastify.mcpGateway.config.PUBLIC_BASE_URL)
})

/** The arguments of an operation from a request its route's schemas have already validated (params, then query or body). */
export function operationArgs<P extends TObject, I extends TObject> (op: Operation<P, I, TObject>, request: FastifyRequest): Static<P> & Static<I> {
  const input = op.method === 'POST' ? request.body : request.query
  return { ...(request.params as Static<P>), ...(input as Static<I>) }
}

/**
 * Route options for `op`, mounted by the route file in the folder that mirrors `op.path` (checked here, so the
 * README, OpenAPI and the folder agree); `overrides` for routes that answer differently (text/plain, a stream).
 */
export function operationRoute (fastify: FastifyInstance, op: AnyOperation, overrides: Partial<RouteOptions> = {}): RouteOptions {
  const folder = fastify.prefix.slice(fastify.mcpPrefix.length)
  if (folder !== op.path) throw new Error(`operation ${op.name} is declared at ${op.path} but its route file sits at ${folder}`)
  const hasParams = Object.keys(op.params.properties).length > 0
  return {
    method: op.method,
    url: '/',
    schema: {
      summary: op.title,
      description: op.description,
      tags: ['mcp'],
      operationId: op.name,
      security: [{ mcpToken: [] }],
      ...(hasParams ? { params: op.params } : {}),
      ...(op.method === 'POST' ? { body: op.input } : { querystring: op.input }),
      ...(op.idempotencyKey === true ? { headers: IdempotencyHeaders } : {}),
      response: { [op.successStatus]: op.output, ...REFUSALS }
    },
    config: { mcp: { action: op.name, bucket: op.bucket, rpm: op.rpm, failClosed: op.failClosed, trigger: op.trigger } },
    handler: async (request, reply) => {
      // A client that hangs up ends a long operation (a wait) at once.
      const gone = new AbortController()
      reply.raw.once('close', () => { if (!reply.raw.writableFinished) gone.abort() })
      const key = request.headers['idempotency-key']
      const ctx: OperationContext = {
        ...operationContext(fastify, request),
        signal: gone.signal,
        ...(op.idempotencyKey === true && typeof key === 'string' ? { idempotencyKey: key } : {})
      }
      const result = await op.run(ctx, operationArgs(op, request))
      return await reply.code(op.successStatus).send(result)
    },
    ...overrides
  }
}
