// Turns an operation into its REST route: schemas, the chain's config (action, bucket, trigger) and a thin handler.
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify'
import type { Static, TObject, TSchema } from '@fastify/type-provider-typebox'
import { ErrorBody } from '../schemas/common.js'
import type { Operation, OperationContext } from '../core/operations.js'

const REFUSALS = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 410: ErrorBody, 422: ErrorBody, 429: ErrorBody, 503: ErrorBody }

export const operationContext = (fastify: FastifyInstance, request: FastifyRequest): OperationContext =>
  ({ services: fastify.mcp, principal: request.principal, project: request.project ?? null })

/** The arguments of an operation from a request the schemas have already validated. */
export function operationArgs<P extends TObject, I extends TObject> (op: Operation<P, I, TSchema>, request: FastifyRequest): Static<P> & Static<I> {
  const input = op.inputIn === 'body' ? request.body : request.query
  return { ...(request.params as object), ...(input as object) } as Static<P> & Static<I>
}

/** Route options for `op` mounted at the folder's URL; `overrides` for routes that answer differently (e.g. text/plain). */
export function operationRoute<P extends TObject, I extends TObject, O extends TSchema> (
  fastify: FastifyInstance,
  op: Operation<P, I, O>,
  overrides: Partial<RouteOptions> = {}
): RouteOptions {
  const status = op.trigger ? 201 : 200
  const hasParams = Object.keys(op.params.properties).length > 0
  return {
    method: op.inputIn === 'body' ? 'POST' : 'GET',
    url: '/',
    schema: {
      summary: op.title,
      description: op.description,
      tags: ['mcp'],
      operationId: op.name,
      security: [{ mcpToken: [] }],
      ...(hasParams ? { params: op.params } : {}),
      ...(op.inputIn === 'body' ? { body: op.input } : { querystring: op.input }),
      response: { [status]: op.output, ...REFUSALS }
    },
    config: { action: op.name, rateLimit: { bucket: op.bucket, rpm: op.rpm }, trigger: op.trigger },
    handler: async (request, reply) => {
      const result = await op.run(operationContext(fastify, request), operationArgs(op, request))
      return await reply.code(status).send(result)
    },
    ...overrides
  }
}
