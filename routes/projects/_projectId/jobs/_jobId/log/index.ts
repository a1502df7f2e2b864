// GET /projects/:projectId/jobs/:jobId/log: a window of the job's log as JSON, or as text/plain when Accept prefers it (get_job_log).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { operationArgs, operationContext, operationRoute } from '../../../../../operation-route.js'
import { getJobLogOp } from '../../../../../../core/operations/index.js'
import { JobLog } from '../../../../../../schemas/data.js'

/** q-value of `type` in an Accept header (exact type, type/*, or * / *), 0 when absent. */
function quality (accept: string, type: string): number {
  let best = 0
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.trim().split(';').map(s => s.trim())
    const q = params.find(p => p.startsWith('q='))
    const value = q === undefined ? 1 : Number(q.slice(2))
    const matches = range === type || range === '*/*' || range === `${type.split('/')[0] ?? ''}/*`
    if (matches && Number.isFinite(value)) best = Math.max(best, range === type ? value + 0.0001 : value)
  }
  return best
}

const wantsText = (request: FastifyRequest): boolean => {
  const accept = request.headers.accept
  return accept !== undefined && quality(accept, 'text/plain') > quality(accept, 'application/json')
}

export default async function (fastify: FastifyInstance): Promise<void> {
  const route = operationRoute(fastify, getJobLogOp, {
    responses: {
      200: {
        description: 'The window as JSON, or its bytes as text/plain when Accept prefers text/plain (the window\'s position then in X-Log-* headers)',
        content: { 'application/json': JobLog, 'text/plain': { type: 'string' } },
        headers: ['X-Log-Total-Bytes', 'X-Log-Offset', 'X-Log-Length', 'X-Log-Truncated']
      }
    }
  })
  fastify.route({
    ...route,
    handler: async (request, reply) => {
      const log = await getJobLogOp.run(operationContext(fastify, request, reply), operationArgs(getJobLogOp, request))
      if (!wantsText(request)) return log
      // The window's position travels in headers so a text client can page too.
      return await reply
        .type('text/plain; charset=utf-8')
        .headers({
          'x-log-total-bytes': String(log.total_bytes),
          'x-log-offset': String(log.offset),
          'x-log-length': String(log.length),
          'x-log-truncated': String(log.truncated)
        })
        .send(log.log)
    }
  })
}
