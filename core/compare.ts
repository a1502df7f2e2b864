// compare_builds (SPEC §11): what changed between a build and the last passing build of its branch (or a given build): commits, job states, tests, new error lines.
import type { Kysely } from 'kysely'
import { notFound } from '../lib/errors.js'
import { untrustedText } from '../lib/text.js'
import { getBuild } from '../db/builds.js'
import { commitsBetween, jobsChanged, lastPassingBefore, testsChanged } from '../db/compare.js'
import type { Database } from '../db/schema.js'
import { COMPARE_LIST_MAX, type CompareResult } from '../schemas/agent.js'
import { buildHead, cut, digestLog, resolveBuildRef } from './failure-summary.js'

const FAILED_STATES: ReadonlySet<string> = new Set(['failure', 'error', 'killed', 'unstable'])
/** Error lines compared per job. */
const ERROR_LINES_COMPARED = 100

/** An error line as compared: numbers (line numbers, times, sizes, ids) and runs of spaces do not make it new. */
const likeness = (text: string): string => text.replace(/\d+/g, '#').replace(/\s+/g, ' ').trim()

export async function compareBuilds (db: Kysely<Database>, projectId: string, buildRef: string, opts: { with?: string | undefined, branch?: string | undefined }): Promise<CompareResult> {
  const buildId = await resolveBuildRef(db, projectId, buildRef, opts.branch)
  const build = await getBuild(db, projectId, buildId)
  const head = buildHead(build)
  const against = opts.with ?? 'last_passing'
  let baseId: string | null
  let reason: string
  if (against === 'last_passing') {
    baseId = await lastPassingBefore(db, projectId, build.id)
    reason = baseId === null
      ? `no build of branch ${build.branch ?? '(none)'} before #${build.build_number} passed: nothing to compare with`
      : `last_passing: the newest build of branch ${build.branch ?? '(none)'} before #${build.build_number} whose status is finished`
  } else {
    if (against === build.id) throw notFound('compare a build with another one')
    baseId = against
    reason = 'the build given by with'
  }
  const empty: CompareResult = {
    build: head, base: null, base_reason: reason, commits: [], jobs_changed: [], tests_newly_failing: [], tests_newly_passing: [], new_error_lines: [], truncated: false
  }
  if (baseId === null) return empty
  const base = await getBuild(db, projectId, baseId) // 404 for a build of another project

  let truncated = false
  const capped = <T>(rows: T[]): T[] => {
    if (rows.length > COMPARE_LIST_MAX) truncated = true
    return rows.slice(0, COMPARE_LIST_MAX)
  }
  const commits = build.branch === null ? [] : await commitsBetween(db, projectId, base.id, build.id, build.branch, COMPARE_LIST_MAX)
  const jobs = await jobsChanged(db, projectId, base.id, build.id)
  const tests = await testsChanged(db, projectId, base.id, build.id)

  // error lines of this build's failed jobs that the same-named job of the base did not have
  const newLines: CompareResult['new_error_lines'] = []
  for (const job of build.jobs.filter(j => FAILED_STATES.has(j.state))) {
    const now = await digestLog(db, projectId, job.id, 0, ERROR_LINES_COMPARED)
    const twin = base.jobs.filter(j => j.name === job.name).at(-1)
    const then = twin === undefined ? null : await digestLog(db, projectId, twin.id, 0, ERROR_LINES_COMPARED)
    const seen = new Set(then?.error_lines.map(l => likeness(l.text)) ?? [])
    for (const line of now.error_lines) {
      if (!seen.has(likeness(line.text))) newLines.push({ job_name: untrustedText(job.name), line_number: line.line_number, kind: line.kind, text: line.text })
    }
  }

  return {
    build: head,
    base: buildHead(base),
    base_reason: reason,
    commits: capped(commits).map(c => ({ sha: c.sha, message: cut(untrustedText((c.message ?? '').split('\n')[0] ?? ''), 200), author: untrustedText(c.author), timestamp: c.timestamp.toISOString() })),
    jobs_changed: capped(jobs).map(j => ({ name: untrustedText(j.name), before: j.before, after: j.after })),
    tests_newly_failing: capped(tests.flatMap(t => t.now === 'failure' || t.now === 'error'
      ? [{ suite: untrustedText(t.suite), name: untrustedText(t.name), state: t.now, before: t.then === 'ok' || t.then === 'skipped' ? t.then : null, message: t.message === null ? null : cut(untrustedText(t.message), 1000) }]
      : [])),
    tests_newly_passing: capped(tests.flatMap(t => t.now === 'ok' ? [{ suite: untrustedText(t.suite), name: untrustedText(t.name) }] : [])),
    new_error_lines: capped(newLines),
    truncated
  }
}
