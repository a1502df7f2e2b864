// Time bounds in tests come from the configured deadlines plus room for a loaded host (two cores shared by parallel
// test files, GC, a busy event loop), never from how fast this machine happens to be today. A bound built here
// still catches what it is for: an answer that waits for something other than the deadline (an offline queue,
// ioredis's command or socket timeouts, TCP keep-alive) takes seconds to minutes, far beyond deadline + slack.

/** Extra time a loaded host may add to any configured deadline (override: TEST_TIMING_SLACK_MS). */
export const SLACK_MS = Number(process.env.TEST_TIMING_SLACK_MS ?? 1000)

/** The latest a step bounded by `deadlineMs` may finish on a loaded host. */
export const within = (deadlineMs: number): number => deadlineMs + SLACK_MS
