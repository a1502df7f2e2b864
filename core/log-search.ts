// search_build_logs (SPEC §11): every job log of a build (or one job's) searched with a linear-time regular expression, streamed, with context lines, per-job caps and a cursor.
import type { Kysely } from 'kysely'
import type { RE2JS } from 're2js'
import { decodeCursor, encodeCursor } from '../lib/cursor.js'
import { notFound } from '../lib/errors.js'
import { untrustedText } from '../lib/text.js'
import { assertBuildInProject, getJob, jobsOfBuild } from '../db/jobs.js'
import { scanLogLines, type LogPosition } from '../db/log-lines.js'
import type { Database } from '../db/schema.js'
import type { Job } from '../schemas/data.js'
import type { LogSearchResult } from '../schemas/agent.js'
import { compilePattern } from './artifact-text.js'
import { displayLine } from './error-lines.js'
import { cut } from './failure-summary.js'

/** One call reads at most this much log (then answers with a cursor to go on). */
export const SEARCH_SCAN_MAX = 64 * 1024 * 1024
/** One answer carries at most about this much text (then a cursor). */
const ANSWER_TEXT_MAX = 256 * 1024
const CURSOR_KIND = 'log_search'

export interface SearchArgs {
  q: string
  ignore_case: boolean
  context: number
  limit: number
  per_job: number
  cursor?: string | undefined
  /** a name filter: jobs whose name contains it, case-insensitively */
  job?: string | undefined
  jobId?: string | undefined
}

type Match = LogSearchResult['matches'][number]

/** The lines [from, from + count) of a job's log, from a position a scan returned (the after-context of a last match). */
async function linesFrom (db: Kysely<Database>, projectId: string, jobId: string, from: LogPosition, count: number): Promise<string[]> {
  const out: string[] = []
  if (count === 0) return out
  await scanLogLines(db, projectId, jobId, line => { out.push(cut(displayLine(line))); return out.length < count }, { from })
  return out
}

/**
 * Searches the logs of a build's jobs (creation order; `jobId` or the `job` name filter narrow them), each streamed
 * line by line (db/log-lines.ts) and matched after displayLine (no prefix, no escapes) by RE2 (re2js: linear time
 * whatever the pattern). Stops at `limit` matches, at ~256 KiB of answer or after SEARCH_SCAN_MAX bytes read, with a
 * cursor (job, byte, line) to resume exactly after the last line handled.
 */
export async function searchBuildLogs (db: Kysely<Database>, projectId: string, buildId: string, args: SearchArgs): Promise<LogSearchResult> {
  const pattern: RE2JS = compilePattern(args.q, args.ignore_case) // 400 before any read
  const resume = args.cursor === undefined ? null : decodeCursor(CURSOR_KIND, args.cursor, ['uuid', 'number', 'number'])
  let jobs: Job[] = await jobsOfBuild(db, projectId, buildId)
  if (jobs.length === 0) await assertBuildInProject(db, projectId, buildId)
  if (args.jobId !== undefined) {
    jobs = jobs.filter(job => job.id === args.jobId)
    if (jobs.length === 0) throw notFound(`job ${args.jobId} not found in build ${buildId}`)
  }
  const nameFilter = args.job?.toLowerCase()
  if (nameFilter !== undefined) jobs = jobs.filter(job => job.name.toLowerCase().includes(nameFilter))
  let startAt = 0
  let from: LogPosition | undefined
  if (resume !== null) {
    startAt = jobs.findIndex(job => job.id === resume[0])
    if (startAt === -1) throw notFound('the cursor names a job this search does not cover (were the arguments changed?)')
    from = { byte: Number(resume[1]), line: Number(resume[2]) }
  }

  const result: LogSearchResult = { build_id: buildId, matches: [], jobs_searched: [], capped_jobs: [], scanned_bytes: 0, next_cursor: null }
  let answerChars = 0
  for (let j = startAt; j < jobs.length; j++) {
    const job = jobs[j]
    if (job === undefined) break
    const before: string[] = [] // the last `context` lines seen, displayed
    const pending: Match[] = [] // matches still collecting their after-context
    let inJob = 0
    let full = false
    let capped = false
    const scan = await scanLogLines(db, projectId, job.id, (raw, n) => {
      const text = displayLine(raw)
      for (let i = pending.length - 1; i >= 0; i--) {
        const m = pending[i]
        if (m === undefined) continue
        m.after.push(cut(text))
        if (m.after.length >= args.context) pending.splice(i, 1)
      }
      if (pattern.test(text)) {
        const match: Match = { job_id: job.id, job_name: untrustedText(job.name), line_number: n, text: cut(text), before: [...before], after: [] }
        result.matches.push(match)
        answerChars += match.text.length + match.before.reduce((sum, l) => sum + l.length, 0) + args.context * 100
        if (args.context > 0) pending.push(match)
        inJob++
        if (result.matches.length >= args.limit || answerChars >= ANSWER_TEXT_MAX) full = true
        else if (inJob >= args.per_job) capped = true
        // stop right after the match: the cursor resumes at the next line, and the after-context is read below
        if (full || capped) return false
      }
      if (args.context > 0) {
        before.push(cut(text))
        if (before.length > args.context) before.shift()
      }
      return undefined
    }, { from, maxBytes: SEARCH_SCAN_MAX - result.scanned_bytes })
    from = undefined
    result.scanned_bytes += scan.scanned_bytes
    result.jobs_searched.push({ id: job.id, name: untrustedText(job.name), state: job.state, log_bytes: scan.total_bytes })
    const last = pending.at(-1)
    if (last !== undefined && scan.next !== null && (full || capped)) {
      // the stopping match's after-context (earlier pending matches got theirs while the scan went on)
      last.after.push(...await linesFrom(db, projectId, job.id, scan.next, args.context - last.after.length))
    }
    if (capped) {
      result.capped_jobs.push(job.id)
      continue
    }
    if (scan.next !== null) {
      // stopped by the limit or by the scan bound: resume in this job
      result.next_cursor = encodeCursor(CURSOR_KIND, [job.id, scan.next.byte, scan.next.line])
      return result
    }
    if (full) {
      // the limit fell on the job's last line: resume with the next job, if any
      const next = jobs[j + 1]
      result.next_cursor = next === undefined ? null : encodeCursor(CURSOR_KIND, [next.id, 0, 1])
      return result
    }
    if (result.scanned_bytes >= SEARCH_SCAN_MAX) {
      const next = jobs[j + 1]
      result.next_cursor = next === undefined ? null : encodeCursor(CURSOR_KIND, [next.id, 0, 1])
      return result
    }
  }
  return result
}

/** The same search within one job (GET …/jobs/:jobId/log-search). */
export async function searchJobLog (db: Kysely<Database>, projectId: string, jobId: string, args: Omit<SearchArgs, 'job' | 'jobId'>): Promise<LogSearchResult> {
  const job = await getJob(db, projectId, jobId)
  return await searchBuildLogs(db, projectId, job.build_id, { ...args, jobId })
}
