// GET /me: who the token speaks for, what it reaches and every budget, read without spending them (get_token_info).
import type { FastifyInstance } from 'fastify'
import { operationRoute } from '../operation-route.js'
import { getTokenInfoOp } from '../../core/operations/index.js'

export default async function (fastify: FastifyInstance): Promise<void> {
  fastify.route(operationRoute(fastify, getTokenInfoOp))
}
