// Prometheus metrics of one gateway instance (own registry, so several instances can live in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export function createMetrics (opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry()
  if (opts.defaultMetrics === true) collectDefaultMetrics({ register: registry })
  const m = {
    registry,
    requests: new Counter({ name: 'mcp_requests_total', help: 'MCP calls by action and outcome', labelNames: ['action', 'outcome', 'via'] as const, registers: [registry] }),
    duration: new Histogram({ name: 'mcp_request_duration_seconds', help: 'MCP call latency', labelNames: ['action'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] }),
    refusals: new Counter({ name: 'mcp_refusals_total', help: 'refused calls by reason', labelNames: ['reason'] as const, registers: [registry] }),
    rateLimitFailOpen: new Counter({ name: 'mcp_ratelimit_fail_open_total', help: 'requests let through because the limiter store did not answer', registers: [registry] }),
    rateLimitFailClosed: new Counter({ name: 'mcp_ratelimit_fail_closed_total', help: 'requests refused (503) because the limiter store did not answer on a fail-closed route', registers: [registry] }),
    // read when scraped (watchAuditDepth), not set on every request
    auditDepth: new Gauge({ name: 'mcp_audit_buffer_depth', help: 'audit rows waiting to be written', registers: [registry], collect () { this.set(auditDepthOf()) } }),
    auditWritten: new Counter({ name: 'mcp_audit_rows_written_total', help: 'audit rows written to mcp_access_log', registers: [registry] }),
    auditDropped: new Counter({ name: 'mcp_audit_rows_dropped_total', help: 'audit rows dropped because the buffer was full', registers: [registry] }),
    auditRepaired: new Counter({ name: 'mcp_audit_rows_repaired_total', help: 'audit rows PostgreSQL refused, written with the offending fields nulled and a note in details', registers: [registry] }),
    auditFlushFailures: new Counter({ name: 'mcp_audit_flush_failures_total', help: 'failed audit batch inserts (retried)', registers: [registry] }),
    digestWarmups: new Counter({ name: 'mcp_log_digest_warmups_total', help: 'failed jobs announced by InfraBox whose log digest was computed ahead (warmed), already kept, too small, gone, dropped (queue full) or failed', labelNames: ['outcome'] as const, registers: [registry] })
  }
  // The label children of each (action, outcome, via) a call was counted under: prom-client would otherwise
  // hash the label object on every request. Actions are the fixed set of operations, so the map stays small.
  type Call = { requests: ReturnType<typeof m.requests.labels>, duration: ReturnType<typeof m.duration.labels> }
  const calls = new Map<string, Call>()
  let auditDepthOf = (): number => 0
  return {
    ...m,
    /** Counts one finished call and its latency; a refusal also under its reason. */
    observeCall (action: string, outcome: string, via: string, seconds: number): void {
      const key = `${action}\u0000${outcome}\u0000${via}`
      let call = calls.get(key)
      if (call === undefined) {
        call = { requests: m.requests.labels(action, outcome, via), duration: m.duration.labels(action) }
        calls.set(key, call)
      }
      call.requests.inc()
      call.duration.observe(seconds)
      if (outcome !== 'success') m.refusals.inc({ reason: outcome })
    },
    /** Where mcp_audit_buffer_depth is read from at scrape time. */
    watchAuditDepth (depth: () => number): void { auditDepthOf = depth }
  }
}

export type Metrics = ReturnType<typeof createMetrics>
