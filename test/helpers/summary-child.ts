// Run by test/agent/failures-100mb.test.ts in a process with a small heap cap: the failure summary of one build, timed, cold and then again; prints one JSON line.
import { kyselyWithOwnPool } from '../../db/connect.js'
import { failureSummary } from '../../core/failure-summary.js'

const [url, projectId, buildId] = process.argv.slice(2)
if (url === undefined || projectId === undefined || buildId === undefined) throw new Error('usage: summary-child <db url> <project> <build>')
const db = kyselyWithOwnPool({ connectionString: url, max: 2 })
let peak = 0
const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().heapUsed) }, 2)
const rounds: Array<{ ms: number, error_lines: number[], total_lines: number }> = []
for (let i = 0; i < 3; i++) {
  const started = performance.now()
  const summary = await failureSummary(db, projectId, buildId)
  const job = summary.failed_jobs[0]
  rounds.push({ ms: Math.round(performance.now() - started), error_lines: job?.error_lines.map(l => l.line_number) ?? [], total_lines: job?.log.total_lines ?? 0 })
}
clearInterval(sampler)
peak = Math.max(peak, process.memoryUsage().heapUsed)
console.log(JSON.stringify({ rounds, heap_peak_mib: Math.round(peak / 1024 / 1024), rss_mib: Math.round(process.memoryUsage().rss / 1024 / 1024) }))
await db.destroy()
