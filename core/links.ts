// Links the gateway hands out (artifact downloads): absolute URLs of its own REST routes.
import type { FastifyRequest } from 'fastify'

/**
 * `path` (starting with '/') below the gateway's mount point, as an absolute URL the client can call: on
 * PUBLIC_BASE_URL when set (SPEC §13.12; a client's Host header must not choose where a token is sent next), else
 * on the scheme and Host the request came to.
 */
export function restUrlFor (request: FastifyRequest, prefix: string, publicBaseUrl?: string): (path: string) => string {
  // worked out on the first link: most calls make none
  let base: string | null = null
  return (path) => {
    base ??= `${publicBaseUrl !== undefined ? publicBaseUrl.replace(/\/+$/, '') : `${request.protocol}://${request.host}`}${prefix}`
    return base + path
  }
}
