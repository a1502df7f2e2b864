// Idempotent triggers (SPEC §11): the first trigger with a token's Idempotency-Key starts the build; a retry within 24 h gets the same answer.
import { createHash } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import { conflict, unprocessable } from '../lib/errors.js'
import type { TriggerBody, TriggerResult } from '../schemas/data.js'
import type { Database } from './schema.js'
import { triggerBuildIn, type TriggerProject } from './trigger.js'
import { SCHEMA_47_COLUMNS, type InfraboxColumns } from './infrabox-version.js'

/** How long a key answers with its first build. */
export const IDEMPOTENCY_TTL_HOURS = 24

export interface IdempotentTriggerOutcome {
  result: TriggerResult
  /** true: the key was seen before and this is the first answer again; no build was started */
  replayed: boolean
}

/**
 * What identifies a request under one key: the project and the body in a canonical form (absent and empty `env`
 * alike, names sorted, the sha lower-cased), hashed. Branch and sha are compared as given, not as resolved: the
 * same request made later asks for the same thing even if the branch has moved on.
 */
export function triggerRequestHash (projectId: string, body: TriggerBody): string {
  const env = Object.entries(body.env ?? {}).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  const canonical = JSON.stringify([projectId.toLowerCase(), body.branch ?? null, body.sha?.toLowerCase() ?? null, env])
  return createHash('sha256').update(canonical).digest('hex')
}

/**
 * Starts the build unless this token used `key` in the last 24 h. One transaction claims the key (an INSERT on
 * the key's primary key) and starts the build, so concurrent retries with one key queue on the claim: the first
 * starts exactly one build and commits; the others then find its row and answer with its build. A trigger that
 * fails (422, 409) rolls its claim back: errors are not remembered, a corrected retry may use the key again.
 * The same key with another project or body is 422. The token's expired keys are dropped on the way.
 */
export async function triggerOnce (db: Kysely<Database>, tokenId: string, key: string, project: TriggerProject, body: TriggerBody, columns: InfraboxColumns = SCHEMA_47_COLUMNS): Promise<IdempotentTriggerOutcome> {
  const requestHash = triggerRequestHash(project.id, body)
  const expired = sql<Date>`now() - make_interval(hours => ${IDEMPOTENCY_TTL_HOURS})`
  return await db.transaction().execute(async trx => {
    await trx.deleteFrom('mcp_trigger_idempotency')
      .where('token_id', '=', tokenId)
      .where('created_at', '<', expired)
      .execute()
    const claimed = await trx.insertInto('mcp_trigger_idempotency')
      .values({ token_id: tokenId, idempotency_key: key, request_hash: requestHash, project_id: project.id, build_id: null, build_number: null, restart_counter: null })
      .onConflict(oc => oc.columns(['token_id', 'idempotency_key']).doNothing())
      .returning('token_id')
      .executeTakeFirst()

    if (claimed !== undefined) {
      const result = await triggerBuildIn(trx, project, body, columns)
      await trx.updateTable('mcp_trigger_idempotency')
        .set({ build_id: result.build.id, build_number: result.build.build_number, restart_counter: result.build.restart_counter })
        .where('token_id', '=', tokenId)
        .where('idempotency_key', '=', key)
        .execute()
      return { result, replayed: false }
    }

    // The INSERT waited for the claiming transaction to end; it committed (else this one would have claimed).
    const first = await trx.selectFrom('mcp_trigger_idempotency')
      .select(['request_hash', 'build_id', 'build_number', 'restart_counter'])
      .where('token_id', '=', tokenId)
      .where('idempotency_key', '=', key)
      .executeTakeFirst()
    if (first === undefined) throw conflict('the trigger with this Idempotency-Key was just being replaced; retry')
    if (first.request_hash !== requestHash) {
      throw unprocessable('this Idempotency-Key was used with a different request (project, branch, sha or env) in the last 24 hours; use a new key')
    }
    if (first.build_id === null || first.build_number === null || first.restart_counter === null) {
      throw conflict('the trigger with this Idempotency-Key is still starting; retry in a moment')
    }
    return { result: { build: { id: first.build_id, build_number: first.build_number, restart_counter: first.restart_counter } }, replayed: true }
  })
}
