// One log line per request (Fastify's default writes two: on arrival and when answered), and no work for it when `info` is off.
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'

/** The levels at which an `info` line is written (pino's names; a route's `logLevel` gives its request logger one). */
const INFO_OR_LOWER: ReadonlySet<string> = new Set(['info', 'debug', 'trace'])

/**
 * The standalone service's request log (serverOptions `logController`): each request is logged once, when its
 * answer is sent, with method, url (tokens masked by the req serializer), status and time. The audit table holds
 * the full record of every gateway call; this line is for operators. Routes with a higher `logLevel` (health and
 * metrics at `warn`) write nothing, and below `info` a request costs one set lookup, not a log object.
 */
export class OneLineRequestLog extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error != null) {
      reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    } else if (INFO_OR_LOWER.has(reply.log.level)) {
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
    }
  }
}
