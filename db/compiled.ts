// Query shapes built and compiled once, values bound per call: what a hand-written parameterised statement costs in Node.
import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely'
import type { Database } from './schema.js'

/**
 * Placeholders handed to a shape's builder in place of values. Each is a string no caller can send (it starts
 * with NUL, which PostgreSQL text refuses), so after compiling, the parameters that hold one are known to be
 * the slots to bind, and all others are constants of the shape (job states, a LIMIT written into it, …).
 */
const MARK = '\u0000ib-mcp-slot:'

/** The placeholder of each named value a shape takes; typed as the value so the builder type-checks as usual. */
export type Slots<P> = { readonly [K in keyof P]: P[K] }

interface Template {
  compiled: CompiledQuery<unknown>
  /** for each parameter: the name of the value it binds, or undefined for a constant of the shape */
  binds: Array<string | undefined>
}

/**
 * One query shape: `build(db, slots)` returns a Kysely query whose values come from `slots` (never computed
 * from them: the builder runs once, with placeholders). The first call per Kysely instance builds and
 * compiles it; every call binds `values` into the compiled statement and sends it, skipping Kysely's
 * builder, its operation-node tree and its compiler, which cost more Node CPU than the round trip they
 * prepare (docs/performance.md). A value used where a list is expanded (`in [a, b]`) cannot be a slot:
 * pass the array as one value with `= any(…)`.
 */
export function compiledShape<P extends Record<string, unknown>, R> (build: (db: Kysely<Database>, slots: Slots<P>) => Compilable<R>) {
  const templates = new WeakMap<Kysely<Database>, Template>()

  function templateFor (db: Kysely<Database>): Template {
    let template = templates.get(db)
    if (template !== undefined) return template
    const slots = new Proxy({}, { get: (_target, name) => `${MARK}${String(name)}` }) as Slots<P>
    const compiled = build(db, slots).compile()
    const binds = compiled.parameters.map(v => typeof v === 'string' && v.startsWith(MARK) ? v.slice(MARK.length) : undefined)
    if (compiled.sql.includes(MARK)) throw new Error('a slot was written into the SQL text instead of a parameter')
    template = { compiled, binds }
    templates.set(db, template)
    return template
  }

  return {
    /** the statement's text, e.g. for EXPLAIN in the benchmark */
    sql: (db: Kysely<Database>): string => templateFor(db).compiled.sql,
    execute: async (db: Kysely<Database>, values: P): Promise<R[]> => {
      const { compiled, binds } = templateFor(db)
      const parameters = binds.map((name, i) => name === undefined ? compiled.parameters[i] : values[name])
      const result: QueryResult<R> = await db.executeQuery<R>({ ...compiled, parameters } as CompiledQuery<R>)
      return result.rows
    }
  }
}

/**
 * A family of shapes told apart by a small key (which optional filters a call uses): each key's shape is
 * compiled once, on first use. Keys must be few (a handful of flags), never values.
 */
export function compiledShapes<K extends string, P extends Record<string, unknown>, R> (build: (db: Kysely<Database>, slots: Slots<P>, key: K) => Compilable<R>) {
  const shapes = new Map<K, ReturnType<typeof compiledShape<P, R>>>()
  return (key: K) => {
    let shape = shapes.get(key)
    if (shape === undefined) {
      shape = compiledShape<P, R>((db, slots) => build(db, slots, key))
      shapes.set(key, shape)
    }
    return shape
  }
}
