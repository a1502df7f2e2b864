// The MCP tools: every operation of core/operations.ts plus get_artifact, with their schemas and the checked call behind each.
import { Type, type Static, type TObject, type TProperties } from '@fastify/type-provider-typebox'
import { Compile } from 'typebox/compile'
import type { TLocalizedValidationError } from 'typebox/error'
import type { CallToolResult, ContentBlock } from '@modelcontextprotocol/server'
import type { FastifyBaseLogger } from 'fastify'
import { authorizeProject, authorizeTrigger, type Principal, type ProjectGrant } from '../core/access.js'
import { spendBudget } from '../core/budget.js'
import { badRequest, GatewayError } from '../core/errors.js'
import { type Operation, type OperationContext, type ToolAnnotations } from '../core/operations.js'
import type { BucketLimits, GatewayServices } from '../core/services.js'
import { isDatabaseUnavailable } from '../plugins/errors.js'

/** What a tool's work sees: the operation context plus what only MCP answers need. */
export interface ToolContext extends OperationContext {
  /** absolute URL of a REST route below the gateway's prefix (`path` starts with '/') */
  restUrl: (path: string) => string
}

/** Who is calling and where to log: the per-request part of a tool call. */
export interface ToolCaller {
  services: GatewayServices
  principal: Principal
  log: FastifyBaseLogger
  restUrl: (path: string) => string
}

/** The structured answer of a tool and, when plain JSON text is not enough, its content blocks. */
export interface ToolAnswer<T> {
  structured: T
  /** default: the structured answer as JSON text (SPEC §7: structuredContent plus the same JSON as text) */
  content?: ContentBlock[]
}

/** A tool written against typed arguments: an operation's fields with a `run` that answers MCP-shaped. */
export interface ToolSpec<P extends TObject, I extends TObject, O extends TObject> {
  name: string
  title: string
  description: string
  bucket: string
  rpm: keyof BucketLimits
  params: P
  input: I
  output: O
  trigger: boolean
  annotations: ToolAnnotations
  run: (ctx: ToolContext, args: Static<P> & Static<I>) => Promise<ToolAnswer<Static<O>>>
}

/** How a call ended, for the tool result and for its audit row. */
export interface ToolOutcome {
  result: CallToolResult
  /** the status its REST twin would have answered (200/201, or the refusal's 4xx/5xx) */
  statusCode: number
  error: string | null
  /** the project named by the arguments, once they are valid (a uuid column: never unchecked text) */
  projectId: string | null
}

/** A tool with its types erased, as the server registers it. */
export interface McpTool {
  name: string
  title: string
  description: string
  annotations: ToolAnnotations
  /** what tools/list shows: path params and query/body in one object; fields with a default are optional */
  inputSchema: TObject
  outputSchema: TObject
  /** never throws: every failure becomes an isError result with the status its REST twin would give */
  call: (caller: ToolCaller, args: unknown) => Promise<ToolOutcome>
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * One advertised object of the arguments. A field with a default is optional to the caller (REST fills it
 * in during validation, and so does the tool), so a model is not told that e.g. `limit` is required.
 */
function argumentsSchema (params: TObject, input: TObject): TObject {
  const properties: TProperties = { ...params.properties }
  for (const [key, schema] of Object.entries(input.properties)) {
    properties[key] = 'default' in schema ? Type.Optional(schema) : schema
  }
  return Type.Object(properties, { additionalProperties: false })
}

/** Validation errors as one line a model can act on (TypeBox reports an unknown field twice; say it once). */
function describeErrors (errors: TLocalizedValidationError[]): string {
  const lines = errors.flatMap((e): string[] => {
    if (e.keyword === 'boolean') return [] // the "schema is false" twin of an additionalProperties error
    const field = e.instancePath === '' ? 'arguments' : e.instancePath.slice(1).replaceAll('/', '.')
    if (e.keyword === 'additionalProperties' && 'additionalProperties' in e.params && Array.isArray(e.params.additionalProperties)) {
      return [`unknown argument(s): ${e.params.additionalProperties.join(', ')}`]
    }
    if (e.keyword === 'enum' && 'allowedValues' in e.params && Array.isArray(e.params.allowedValues)) {
      return [`${field} must be one of ${e.params.allowedValues.join(', ')}`]
    }
    return [`${field} ${e.message}`]
  })
  return [...new Set(lines)].join('; ')
}

/** A refusal or failure as the tool result an agent reads, and the status its REST twin would have had. */
function failure (err: unknown, tool: string, caller: ToolCaller): Omit<ToolOutcome, 'projectId'> {
  if (err instanceof GatewayError) {
    return { statusCode: err.statusCode, error: err.message, result: errorResult(`${err.message} [${err.code}]`) }
  }
  if (isDatabaseUnavailable(err)) {
    caller.log.warn({ tool, err: err instanceof Error ? err.message : String(err) }, 'database unavailable during an MCP tool call')
    const message = 'the database is unavailable; retry in a few seconds'
    return { statusCode: 503, error: message, result: errorResult(`${message} [MCP_UNAVAILABLE]`) }
  }
  // Never the raw message: it may name tables, hosts or paths. The request id in the log finds it.
  caller.log.error({ err, tool }, 'MCP tool failed')
  const message = `internal error while running ${tool}; the gateway logged it`
  return { statusCode: 500, error: message, result: errorResult(message) }
}

const errorResult = (text: string): CallToolResult => ({ isError: true, content: [{ type: 'text', text }] })

/**
 * Erases a spec's types behind the checks its REST twin makes, in the chain's order (SPEC §4): budget
 * (spent even when the arguments turn out invalid, as REST's rate limit runs before validation), arguments
 * (defaults, REST-like coercion, schema), project access, trigger access, then the work.
 */
export function defineTool<P extends TObject, I extends TObject, O extends TObject> (spec: ToolSpec<P, I, O>): McpTool {
  const paramsCheck = Compile(spec.params)
  const inputCheck = Compile(spec.input)
  const paramKeys = new Set(Object.keys(spec.params.properties))

  function parseArguments (raw: unknown): Static<P> & Static<I> {
    if (raw !== undefined && !isRecord(raw)) throw badRequest(`invalid arguments for ${spec.name}: arguments must be an object`)
    // Split like a URL does: path params, then the query string or body, each checked by its own schema.
    const params: Record<string, unknown> = {}
    const input: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(raw ?? {})) (paramKeys.has(key) ? params : input)[key] = value
    const converted = inputCheck.Convert(inputCheck.Default(input))
    if (paramsCheck.Check(params) && inputCheck.Check(converted)) return { ...params, ...converted }
    const message = describeErrors([...paramsCheck.Errors(params), ...inputCheck.Errors(converted)])
    throw badRequest(`invalid arguments for ${spec.name}: ${message}`)
  }

  return {
    name: spec.name,
    title: spec.title,
    description: spec.description,
    annotations: spec.annotations,
    inputSchema: argumentsSchema(spec.params, spec.input),
    outputSchema: spec.output,
    call: async (caller, raw) => {
      let projectId: string | null = null
      try {
        await spendBudget(caller.services, caller.principal.userId, { bucket: spec.bucket, rpm: spec.rpm })
        const args = parseArguments(raw)
        const named = isRecord(args) ? args['projectId'] : undefined
        let project: ProjectGrant | null = null
        if (typeof named === 'string') {
          projectId = named.toLowerCase()
          project = await authorizeProject(caller.services, caller.principal, named)
        }
        if (spec.trigger) {
          if (project === null) throw new Error(`${spec.name} starts builds but names no project`)
          authorizeTrigger(caller.principal, project)
        }
        const answer = await spec.run({ services: caller.services, principal: caller.principal, project, restUrl: caller.restUrl }, args)
        const structured = answer.structured
        if (!isRecord(structured)) throw new Error(`${spec.name} answered something other than an object`)
        const text: ContentBlock = { type: 'text', text: JSON.stringify(structured) }
        return {
          statusCode: spec.trigger ? 201 : 200,
          error: null,
          projectId,
          result: { structuredContent: structured, content: answer.content ?? [text] }
        }
      } catch (err) {
        return { ...failure(err, spec.name, caller), projectId }
      }
    }
  }
}

/** An operation as a tool: its JSON result is the structured answer. */
export function operationTool<P extends TObject, I extends TObject, O extends TObject> (op: Operation<P, I, O>): McpTool {
  return defineTool({
    name: op.name,
    title: op.title,
    description: op.description,
    bucket: op.bucket,
    rpm: op.rpm,
    params: op.params,
    input: op.input,
    output: op.output,
    trigger: op.trigger,
    annotations: op.annotations,
    run: async (ctx, args) => ({ structured: await op.run(ctx, args) })
  })
}
