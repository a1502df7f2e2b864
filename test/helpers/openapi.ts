// The served OpenAPI document and the two independent judges of it: @seriousme/openapi-schema-validator and Redocly's recommended rules.
import type { FastifyInstance } from 'fastify'
import { Validator } from '@seriousme/openapi-schema-validator'
import { createConfig, lintFromString, type NormalizedProblem } from '@redocly/openapi-core'

export interface DocResponse { description: string, headers?: Record<string, { $ref?: string }>, content?: Record<string, { schema?: { $ref?: string } }> }
export interface DocOperation {
  operationId?: string
  tags?: string[]
  security?: Array<Record<string, string[]>>
  parameters?: Array<{ in: string, name: string, required?: boolean }>
  requestBody?: { content: Record<string, { schema?: { $ref?: string } }> }
  responses: Record<string, DocResponse>
}
export interface OpenApiDoc {
  openapi: string
  info: { license?: { name: string } }
  servers?: Array<{ url: string }>
  tags?: Array<{ name: string }>
  paths: Record<string, Record<string, DocOperation>>
  components: { schemas?: Record<string, unknown>, headers?: Record<string, unknown>, securitySchemes?: Record<string, unknown> }
}

export async function servedDocument (app: FastifyInstance, prefix = '/api/v1/mcp'): Promise<OpenApiDoc> {
  const res = await app.inject(`${prefix}/openapi.json`)
  if (res.statusCode !== 200) throw new Error(`openapi.json answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

/** Every operation as [method (upper case), path, operation]. */
export const operationsOf = (doc: OpenApiDoc): Array<[string, string, DocOperation]> =>
  Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]): [string, string, DocOperation] => [method.toUpperCase(), path, op]))

export async function validateDocument (doc: OpenApiDoc): Promise<{ valid: boolean, errors: unknown }> {
  const result = await new Validator().validate(structuredClone(doc) as unknown as Record<string, unknown>)
  return { valid: result.valid, errors: result.errors ?? [] }
}

/** Redocly's `recommended` ruleset, as `redocly lint` runs it. */
export async function lintDocument (doc: OpenApiDoc): Promise<NormalizedProblem[]> {
  const config = await createConfig({ extends: ['recommended'] })
  return await lintFromString({ source: JSON.stringify(doc), absoluteRef: '/openapi.json', config })
}

export const pointerOf = (p: NormalizedProblem): string => p.location[0]?.pointer ?? ''
