// TypeBox schemas of acting on builds (SPEC §14): restart, rerun, retry, abort, and the token's own access log.
import { Type, type Static } from '@fastify/type-provider-typebox'
import { DateTime, Page, PageQuery, Uuid } from './common.js'
import { JobState } from './data.js'

/** POST bodies of the six actions: nothing to say beyond the path (an empty or absent body). */
export const NoBody = Type.Object({}, {
  additionalProperties: false,
  // Fastify's Ajv strips unknown fields (removeAdditional) instead of refusing them; a property name schema that
  // matches nothing refuses any (written { not: {} }, not `false`: OpenAPI tools expect a schema object here).
  propertyNames: { not: {} },
  description: 'No fields (the body may be absent or {}): the path names what to act on.'
})

export const RestartedBuild = Type.Object({
  build: Type.Object({
    id: Uuid,
    build_number: Type.Integer({ minimum: 1, description: 'the same number as the build restarted' }),
    restart_counter: Type.Integer({ minimum: 1, description: 'the highest restart_counter of that number + 1' })
  }, { additionalProperties: false })
}, { additionalProperties: false, description: 'The new build, queued with its Create Jobs job; follow it with wait_for_build.' })
export type RestartedBuild = Static<typeof RestartedBuild>

export const RestartedJob = Type.Object({
  id: Uuid,
  name: Type.String({ description: 'the original name with .1 appended (or its .N raised by one)' }),
  state: Type.Literal('queued'),
  restarted_from: Type.Object({ id: Uuid, name: Type.String(), state: JobState }, { additionalProperties: false, description: 'the job this one replaces (now marked restarted)' })
}, { additionalProperties: false })
export type RestartedJob = Static<typeof RestartedJob>

export const RestartedJobs = Type.Object({
  build_id: Uuid,
  jobs: Type.Array(RestartedJob, { description: 'the queued clones, in the order of the jobs they replace' })
}, { additionalProperties: false, description: 'Jobs queued again in the same build; follow the build with wait_for_build.' })
export type RestartedJobs = Static<typeof RestartedJobs>

export const AbortedJob = Type.Object({
  id: Uuid,
  name: Type.String(),
  state: Type.Union([Type.Literal('queued'), Type.Literal('scheduled'), Type.Literal('running')], { description: 'its state when the abort was requested' })
}, { additionalProperties: false })

export const AbortResult = Type.Object({
  build_id: Uuid,
  aborted: Type.Array(AbortedJob, { description: 'jobs InfraBox\'s scheduler was asked to kill (empty: nothing was queued or running)' })
}, { additionalProperties: false, description: 'The scheduler kills these jobs shortly (state killed); wait_for_build shows the end.' })
export type AbortResult = Static<typeof AbortResult>

// ---------------------------------------------------------------- the token's own access log

export const MyAccessLogEntry = Type.Object({
  id: Uuid,
  action: Type.String({ description: 'the tool / operation called, e.g. get_job_log' }),
  outcome: Type.String({ description: 'success, unauthorized, forbidden, rate_limited, bad_request, not_found or failure' }),
  status_code: Type.Union([Type.Integer(), Type.Null()]),
  project_id: Type.Union([Uuid, Type.Null()]),
  via: Type.Union([Type.String(), Type.Null()], { description: 'rest or mcp' }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'why it was refused or failed' }),
  accessed_at: DateTime
}, { additionalProperties: false })
export type MyAccessLogEntry = Static<typeof MyAccessLogEntry>

export const MyAccessLogPage = Type.Object({ ...Page(MyAccessLogEntry).properties }, {
  additionalProperties: false,
  description: 'This token\'s recent calls, newest first. Rows land about a second after a call. Pass next_cursor back as cursor for older ones.'
})
export type MyAccessLogPage = Static<typeof MyAccessLogPage>

export const MyAccessLogQuery = Type.Object({ ...PageQuery.properties }, { additionalProperties: false })
