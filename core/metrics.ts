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
    auditDepth: new Gauge({ name: 'mcp_audit_buffer_depth', help: 'audit rows waiting to be written', registers: [registry] }),
    auditWritten: new Counter({ name: 'mcp_audit_rows_written_total', help: 'audit rows written to mcp_access_log', registers: [registry] }),
    auditDropped: new Counter({ name: 'mcp_audit_rows_dropped_total', help: 'audit rows dropped because the buffer was full', registers: [registry] }),
    auditFlushFailures: new Counter({ name: 'mcp_audit_flush_failures_total', help: 'failed audit batch inserts (retried)', registers: [registry] })
  }
  return m
}

export type Metrics = ReturnType<typeof createMetrics>
