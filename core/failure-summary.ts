// get_build_failure_summary (SPEC §11): why a build failed, in one bounded answer: failed jobs, their first error lines and log tails (streamed), failing tests marked new/known/flaky.
import type { Kysely } from 'kysely'
import { untrustedText } from '../lib/text.js'
import { getBuild } from '../db/builds.js'
import { failingTests, latestFailedBuild, type FailingTestRow } from '../db/failures.js'
import { logMeta, scanLogLines, type LogMeta } from '../db/log-lines.js'
import type { Database } from '../db/schema.js'
import type { BuildDetail, Job } from '../schemas/data.js'
import {
  ANSWER_LINE_CHARS, SUMMARY_BYTES_DEFAULT, SUMMARY_ERRORS_DEFAULT, SUMMARY_TAIL_DEFAULT,
  type BuildHead, type FailedJob, type FailingTest, type FailureSummary
} from '../schemas/agent.js'
import { CANDIDATE_LITERALS, classifyLine, displayLine, mayBeError, type ErrorKind } from './error-lines.js'

/** Failing tests shown per job at most (the count says how many there are). */
export const TESTS_PER_JOB = 50
/** Stack lines kept per failing test. */
const STACK_LINES = 5
/** The states of a failed job: the summary reports these jobs (and core/digest-warmer.ts digests their logs ahead). */
export const FAILED_STATES: ReadonlySet<string> = new Set(['failure', 'error', 'killed', 'unstable'])

export interface SummaryOptions { tail?: number, max_error_lines?: number, max_bytes?: number }

/** `s` cut to `max` characters, with … where it was cut. */
export function cut (s: string, max = ANSWER_LINE_CHARS): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`
}

/** A build given by id or as latest_failed (of `branch`). */
export async function resolveBuildRef (db: Kysely<Database>, projectId: string, ref: string, branch: string | undefined): Promise<string> {
  return ref === 'latest_failed' ? await latestFailedBuild(db, projectId, branch) : ref
}

export function buildHead (build: BuildDetail): BuildHead {
  const message = build.commit?.message ?? null
  return {
    id: build.id,
    build_number: build.build_number,
    restart_counter: build.restart_counter,
    status: build.status,
    branch: build.branch,
    commit_sha: build.commit_sha,
    commit_message: message === null ? null : cut(untrustedText(message.split('\n')[0] ?? ''), 200),
    created_at: build.created_at,
    finished_at: build.finished_at
  }
}

export interface LogDigest {
  source: LogMeta['source']
  total_bytes: number
  total_lines: number
  deleted: boolean
  error_line_count: number
  error_lines: Array<{ line_number: number, kind: ErrorKind, text: string }>
  tail: Array<{ line_number: number, text: string }>
  /** a shown line was cut at ANSWER_LINE_CHARS */
  cut: boolean
}

/**
 * One pass over the job's log, streamed (db/log-lines.ts): the first `maxErrors` error lines (core/error-lines.ts)
 * and the last `tail` lines in a ring. Memory: those lines, each cut to ANSWER_LINE_CHARS, whatever the log's size.
 */
/**
 * Digests of ended jobs' logs (job.console, which InfraBox writes once when the job ends), by job, size and the
 * digest's arguments: an agent asking again about the same build is answered without reading the log again. A log
 * the collector deletes changes size, so its digest is not reused. At most DIGEST_CACHE_MAX entries (least recently
 * used first out), each a few KiB.
 */
const digests = new Map<string, LogDigest>()
export const DIGEST_CACHE_MAX = 256
/**
 * Reads of ended jobs' logs under way, by the same key: a call that comes while the log is being read (say, right
 * after the digest warmer started on it) waits for that read instead of reading the log a second time.
 */
const reading = new Map<string, Promise<LogDigest>>()

const digestKey = (jobId: string, totalBytes: number, tail: number, maxErrors: number): string => `${jobId}:${totalBytes}:${tail}:${maxErrors}`

/** Whether the digest of this log (an ended job's, of this size) with these arguments is kept (tests, the warmer). */
export function digestKept (jobId: string, totalBytes: number, tail: number, maxErrors: number): boolean {
  return digests.has(digestKey(jobId, totalBytes, tail, maxErrors))
}

export async function digestLog (db: Kysely<Database>, projectId: string, jobId: string, tail: number, maxErrors: number): Promise<LogDigest> {
  // the project check comes first, then the cache: a job of another project is 404 whatever was read before
  const meta = await logMeta(db, projectId, jobId)
  if (meta.source !== 'job') return await readDigest(db, projectId, jobId, tail, maxErrors)
  const key = digestKey(jobId, meta.total_bytes, tail, maxErrors)
  const cached = digests.get(key)
  if (cached !== undefined) {
    digests.delete(key)
    digests.set(key, cached)
    return cached
  }
  const pending = reading.get(key)
  if (pending !== undefined) {
    try {
      return await pending
    } catch {
      // the other read failed (its connection, its deadline): this call reads for itself
    }
  }
  const read = readDigest(db, projectId, jobId, tail, maxErrors)
  reading.set(key, read)
  try {
    const digest = await read
    if (digest.source === 'job' && digest.total_bytes === meta.total_bytes) {
      digests.set(key, digest)
      if (digests.size > DIGEST_CACHE_MAX) digests.delete(digests.keys().next().value ?? '')
    }
    return digest
  } finally {
    if (reading.get(key) === read) reading.delete(key)
  }
}

async function readDigest (db: Kysely<Database>, projectId: string, jobId: string, tail: number, maxErrors: number): Promise<LogDigest> {
  const errors: LogDigest['error_lines'] = []
  // the last `tail` lines in a circular buffer, kept raw (cut) and cleaned once at the end
  const ring: Array<{ line_number: number, raw: string }> = new Array(tail)
  let seen = 0
  let errorCount = 0
  let wasCut = false
  const show = (raw: string): string => {
    const text = displayLine(raw)
    if (text.length > ANSWER_LINE_CHARS) wasCut = true
    return cut(text)
  }
  const scan = await scanLogLines(db, projectId, jobId, (raw, n) => {
    if (tail > 0) ring[seen % tail] = { line_number: n, raw: raw.length > 4 * ANSWER_LINE_CHARS ? raw.slice(0, 4 * ANSWER_LINE_CHARS) : raw }
    seen++
    // the cheap test on the stored line first: most lines of a log end here
    if (!mayBeError(raw)) return undefined
    const kind = classifyLine(displayLine(raw.length > 4096 ? raw.slice(0, 4096) : raw))
    if (kind !== null) {
      errorCount++
      if (errors.length < maxErrors) errors.push({ line_number: n, kind, text: show(raw) })
    }
    return undefined
  }, { only: { match: CANDIDATE_LITERALS, last: tail } })
  const kept = Math.min(seen, tail)
  const last = Array.from({ length: kept }, (_, i) => ring[(seen - kept + i) % tail]).filter(r => r !== undefined)
  return {
    source: scan.source,
    total_bytes: scan.total_bytes,
    total_lines: scan.lines,
    deleted: scan.deleted,
    error_line_count: errorCount,
    error_lines: errors,
    tail: last.map(r => ({ line_number: r.line_number, text: show(r.raw) })),
    cut: wasCut
  }
}

const durationOf = (job: Job): number | null =>
  job.start_date === null || job.end_date === null ? null : Math.max(0, Math.round((Date.parse(job.end_date) - Date.parse(job.start_date)) / 100) / 10)

function failingTest (row: FailingTestRow): FailingTest {
  const stack = row.stack === null || row.stack === '' ? null : row.stack.split('\n').slice(0, STACK_LINES).map(l => cut(untrustedText(l))).join('\n')
  return {
    suite: untrustedText(row.suite),
    name: untrustedText(row.name),
    state: row.state,
    verdict: row.verdict,
    history: row.history,
    message: row.message === null ? null : cut(untrustedText(row.message), 1000),
    stack
  }
}

const sizeOf = (value: unknown): number => Buffer.byteLength(JSON.stringify(value))

/**
 * Cuts the answer to `maxBytes` of JSON, job by job from the last: first the older tail lines (keeping 5), then the
 * stacks, then error lines beyond the first 5, then tests beyond the first 5, then whatever remains of tails and
 * error lines. Every cut job says truncated, and so does the answer.
 */
function fit (summary: FailureSummary, maxBytes: number): void {
  const over = (): boolean => sizeOf(summary) > maxBytes
  if (!over()) return
  summary.truncated = true
  const steps: Array<(job: FailedJob) => boolean> = [
    job => job.tail.length > 5 ? (job.tail.splice(0, job.tail.length - 5), true) : false,
    job => job.failing_tests.some(test => test.stack !== null) ? (job.failing_tests.forEach(test => { test.stack = null }), true) : false,
    job => job.error_lines.length > 5 ? (job.error_lines.splice(5), true) : false,
    job => job.failing_tests.length > 5 ? (job.failing_tests.splice(5), true) : false,
    job => job.tail.length > 0 ? (job.tail.splice(0), true) : false,
    job => job.error_lines.length > 1 ? (job.error_lines.splice(1), true) : false,
    job => job.failing_tests.length > 0 ? (job.failing_tests.splice(0), true) : false
  ]
  for (const step of steps) {
    for (let i = summary.failed_jobs.length - 1; i >= 0; i--) {
      const job = summary.failed_jobs[i]
      if (job !== undefined && step(job)) job.truncated = true
      if (!over()) return
    }
  }
  // still too large: drop whole jobs from the end (their names stay countable in job_states)
  while (over() && summary.failed_jobs.length > 1) summary.failed_jobs.pop()
}

/** The failure summary of a build (given by id or latest_failed). */
export async function failureSummary (db: Kysely<Database>, projectId: string, buildRef: string, opts: SummaryOptions & { branch?: string | undefined } = {}): Promise<FailureSummary> {
  const buildId = await resolveBuildRef(db, projectId, buildRef, opts.branch)
  const build = await getBuild(db, projectId, buildId)
  const tail = opts.tail ?? SUMMARY_TAIL_DEFAULT
  const maxErrors = opts.max_error_lines ?? SUMMARY_ERRORS_DEFAULT
  const failed = build.jobs.filter(job => FAILED_STATES.has(job.state))
  const jobStates: Record<string, number> = {}
  for (const job of build.jobs) jobStates[job.state] = (jobStates[job.state] ?? 0) + 1

  const tests = await failingTests(db, projectId, build.id, failed.map(job => job.id), TESTS_PER_JOB)
  const jobs: FailedJob[] = []
  // one job's log at a time: one pool connection, and memory bounded by one scan
  for (const job of failed) {
    const digest = await digestLog(db, projectId, job.id, tail, maxErrors)
    const own = tests.filter(row => row.job_id === job.id)
    const failingCount = own[0]?.failing_count ?? 0
    jobs.push({
      id: job.id,
      name: untrustedText(job.name),
      state: job.state,
      duration_seconds: durationOf(job),
      message: job.message === null ? null : cut(untrustedText(job.message), 1000),
      log: { total_bytes: digest.total_bytes, total_lines: digest.total_lines, deleted: digest.deleted, error_line_count: digest.error_line_count },
      error_lines: digest.error_lines,
      tail: digest.tail,
      failing_tests: own.map(failingTest),
      failing_test_count: failingCount,
      truncated: digest.cut || digest.error_line_count > digest.error_lines.length || failingCount > own.length
    })
  }
  const summary: FailureSummary = {
    build: buildHead(build),
    job_states: jobStates,
    failed_jobs: jobs,
    truncated: false,
    next_steps: failed.length === 0
      ? 'No job of this build failed.' + (build.status === 'running' ? ' It is still running: wait_for_build tells you when it ends.' : '')
      : 'search_build_logs finds any pattern in these logs (with context); get_job_log reads a window by line or byte; compare_builds shows what changed since the last passing build.'
  }
  fit(summary, opts.max_bytes ?? SUMMARY_BYTES_DEFAULT)
  return summary
}
