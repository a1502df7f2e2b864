// Links the gateway hands out (artifact downloads): absolute URLs of its own REST routes.
import type { FastifyRequest } from 'fastify'

/** `path` (starting with '/') below the gateway's mount point, as an absolute URL the client can call. */
export function restUrlFor (request: FastifyRequest, prefix: string): (path: string) => string {
  const base = `${request.protocol}://${request.host}${prefix}`
  return (path) => base + path
}
