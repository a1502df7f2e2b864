// What a token reaches, project by project, for token info: its named projects (or its owner's collaborations) with the owner's live role.
import type { Kysely } from 'kysely'
import { UUID } from '../lib/ids.js'
import type { Database, EnabledProjects, UserRole } from './schema.js'

export interface ScopedProject {
  id: string
  name: string | null
  role: UserRole | null
  /** the project's own expiry in the token (ISO), null for the token's */
  expires_at: string | null
  usable: boolean
}

export interface TokenScope {
  owner: { id: string, username: string | null }
  allProjects: boolean
  projects: ScopedProject[]
}

/** At most this many projects are listed (a token may name many; the answer must stay small). */
export const SCOPE_LIST_MAX = 100

/**
 * The owner and, project by project, what the token may reach now: a token scoped to named projects lists each of
 * them (a deleted project or a lost collaboration shows as unusable, so the owner sees why a call is refused); an
 * all-projects token (`{}`) lists the owner's collaborations. Two indexed queries; the role is read live.
 */
export async function tokenScope (db: Kysely<Database>, userId: string, enabled: EnabledProjects, now = new Date()): Promise<TokenScope> {
  const owner = await db.selectFrom('user').select(['user.id', 'user.username']).where('user.id', '=', userId).executeTakeFirst()
  const who = { id: userId, username: owner?.username ?? null }
  const named = Object.entries(enabled).filter(([id]) => UUID.test(id)).slice(0, SCOPE_LIST_MAX)
  if (Object.keys(enabled).length === 0) {
    const rows = await db.selectFrom('collaborator')
      .innerJoin('project', 'project.id', 'collaborator.project_id')
      .select(['project.id', 'project.name', 'collaborator.role'])
      .where('collaborator.user_id', '=', userId)
      .orderBy('project.name').orderBy('project.id')
      .limit(SCOPE_LIST_MAX)
      .execute()
    return { owner: who, allProjects: true, projects: rows.map(r => ({ id: r.id, name: r.name, role: r.role, expires_at: null, usable: true })) }
  }
  const ids = named.map(([id]) => id.toLowerCase())
  const rows = ids.length === 0
    ? []
    : await db.selectFrom('project')
      .leftJoin('collaborator', join => join.onRef('collaborator.project_id', '=', 'project.id').on('collaborator.user_id', '=', userId))
      .select(['project.id', 'project.name', 'collaborator.role'])
      .where('project.id', 'in', ids)
      .execute()
  const found = new Map(rows.map(r => [r.id, r]))
  const projects = named.map(([rawId, expiry]): ScopedProject => {
    const id = rawId.toLowerCase()
    const row = found.get(id)
    const live = expiry === null || Date.parse(expiry) > now.getTime()
    const role = row?.role ?? null
    return { id, name: row?.name ?? null, role, expires_at: expiry, usable: live && row !== undefined && role !== null }
  })
  projects.sort((a, b) => (a.name ?? '\uffff').localeCompare(b.name ?? '\uffff') || a.id.localeCompare(b.id))
  return { owner: who, allProjects: false, projects }
}
