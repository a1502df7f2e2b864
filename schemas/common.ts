// Schemas every route shares: ids, paging, the list envelope and the error body.
import { Type, type TSchema } from '@fastify/type-provider-typebox'

// Canonical 8-4-4-4-12 hex only. Ajv's `uuid` format also admits `urn:uuid:<uuid>`, which PostgreSQL's uuid type
// refuses: such an id once reached the audit's uuid column and stopped the writer (SPEC §13.1). The pattern
// decides; `format` stays for the OpenAPI document.
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
export const Uuid = Type.String({ format: 'uuid', pattern: UUID_PATTERN, description: 'a UUID (canonical form)' })

export const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'stable machine-readable code, e.g. MCP_PROJECT_FORBIDDEN' }),
  error: Type.String({ description: 'HTTP reason phrase' }),
  message: Type.String({ description: 'what went wrong, for a human or a model' })
}, { $id: 'ErrorBody', additionalProperties: false })

export const PageQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'page size, 1-100' }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'next_cursor of the previous page' }))
})

/** `{items, next_cursor}`: the shape of every list. */
export const Page = <T extends TSchema>(item: T) => Type.Object({
  items: Type.Array(item),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'pass as `cursor` for the next page; null on the last page' })
})

export const DateTime = Type.String({ format: 'date-time' })
export const NullableDateTime = Type.Union([DateTime, Type.Null()])
export const NullableString = Type.Union([Type.String(), Type.Null()])
