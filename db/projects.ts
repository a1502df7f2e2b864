// Project questions: which projects a token's owner may reach, and one project with the owner's role in it.
import { sql, type Kysely } from 'kysely'
import { decodeCursor, encodeCursor } from '../lib/cursor.js'
import { UUID } from '../lib/ids.js'
import { compiledShape, compiledShapes, type Slots } from './compiled.js'
import type { ProjectPage } from '../schemas/data.js'
import type { Database, EnabledProjects, ProjectType, UserRole } from './schema.js'

export interface ListProjectsOptions {
  userId: string
  /** The token's scope: `{}` means every collaboration; otherwise project id -> ISO expiry or null. */
  enabledProjects: EnabledProjects
  limit: number
  cursor?: string | undefined
  /** Clock for the per-project expiries (tests). */
  now?: Date
}

const CURSOR_KIND = 'projects'

const projectShapes = compiledShapes((db, v: Slots<{ userId: string, scope: string[], name: string, id: string, limit: number }>, shape: `${'' | 'scoped'}/${'' | 'after'}`) => {
  let query = db
    .selectFrom('collaborator')
    .innerJoin('project', 'project.id', 'collaborator.project_id')
    .select(['project.id', 'project.name', 'project.type', 'project.public', 'collaborator.role'])
    .where('collaborator.user_id', '=', v.userId)
  // One array parameter, whatever the number of projects: the statement's text stays the same.
  if (shape.startsWith('scoped/')) query = query.where('project.id', '=', sql<string>`any(${v.scope}::uuid[])`)
  if (shape.endsWith('/after')) query = query.where(eb => eb(eb.refTuple('project.name', 'project.id'), '>', eb.tuple(v.name, v.id)))
  return query
    .orderBy('project.name')
    .orderBy('project.id')
    .limit(v.limit)
})

/**
 * The projects in the token's scope that its owner collaborates on (any role), by name then id.
 * Public projects get no exception: a token never reaches beyond its owner's collaborations.
 */
export async function listProjects (db: Kysely<Database>, opts: ListProjectsOptions): Promise<ProjectPage> {
  const scope = scopedProjectIds(opts.enabledProjects, opts.now ?? new Date())
  if (scope !== null && scope.length === 0) return { items: [], next_cursor: null }
  const after = opts.cursor === undefined ? null : decodeCursor(CURSOR_KIND, opts.cursor, ['string', 'uuid'])
  const rows = await projectShapes(`${scope === null ? '' : 'scoped'}/${after === null ? '' : 'after'}`).execute(db, {
    userId: opts.userId,
    scope: scope ?? [],
    name: after === null ? '' : String(after[0]),
    id: after === null ? '' : String(after[1]),
    limit: opts.limit + 1
  })

  const items = rows.slice(0, opts.limit)
  const last = items.at(-1)
  return {
    items,
    next_cursor: rows.length > opts.limit && last !== undefined ? encodeCursor(CURSOR_KIND, [last.name, last.id]) : null
  }
}

/**
 * The project ids a scope still allows, or null for "all collaborations" (`{}`). A project whose expiry
 * has passed, or is not a date at all, is out of scope; keys that are not UUIDs never reach SQL.
 */
export function scopedProjectIds (enabled: EnabledProjects, now: Date): string[] | null {
  const entries = Object.entries(enabled)
  if (entries.length === 0) return null
  return entries
    .filter(([id, expiry]) => UUID.test(id) && (expiry === null || Date.parse(expiry) > now.getTime()))
    .map(([id]) => id.toLowerCase())
}

export interface ProjectAccess {
  project: { id: string, name: string, type: ProjectType, public: boolean }
  /** null when the user does not collaborate on the project. */
  role: UserRole | null
}

/**
 * The project and the user's role in it, in one query on two primary keys (project_pkey, then
 * collaborator_pkey (user_id, project_id)); null when no such project. Called on every request.
 */
const accessShape = compiledShape((db, v: Slots<{ userId: string, projectId: string }>) => db
  .selectFrom('project')
  .leftJoin('collaborator', join => join
    .onRef('collaborator.project_id', '=', 'project.id')
    .on('collaborator.user_id', '=', v.userId))
  .select(['project.id', 'project.name', 'project.type', 'project.public', 'collaborator.role'])
  .where('project.id', '=', v.projectId))

export async function getProjectAccess (db: Kysely<Database>, userId: string, projectId: string): Promise<ProjectAccess | null> {
  const [row] = await accessShape.execute(db, { userId, projectId })
  if (row === undefined) return null
  return { project: { id: row.id, name: row.name, type: row.type, public: row.public }, role: row.role }
}
