// Schemas every route shares: ids, paging, the list envelope and the error body.
import { Type, type TSchema } from '@fastify/type-provider-typebox'

export const Uuid = Type.String({ format: 'uuid', description: 'a UUID' })

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
