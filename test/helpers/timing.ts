// Time bounds in tests come from the configured deadlines plus room for a loaded host (two cores shared by parallel
// test files, GC, a busy event loop), never from how fast this machine happens to be today. A bound built here
// still catches what it is for: an answer that waits for something other than the deadline (an offline queue,
// ioredis's command or socket timeouts, TCP keep-alive) takes seconds to minutes, far beyond deadline + slack.

/** Extra time a loaded host may add to any configured deadline (override: TEST_TIMING_SLACK_MS). */
export const SLACK_MS = Number(process.env.TEST_TIMING_SLACK_MS ?? 1000)

/** The latest a step bounded by `deadlineMs`, followed by `steps - 1` more steps with no deadline of their own (a check, an HTTP answer), may finish on a loaded host: each step gets the room. */
export const within = (deadlineMs: number, steps = 1): number => deadlineMs + steps * SLACK_MS

/**
 * The latest an answer may arrive that must come from one mechanism (a notification, a close, a refusal) and not from
 * the fallback that would otherwise end it after `fallbackMs` (the wait's own timeout): halfway there, far above a
 * loaded host's stalls and far below what a missing mechanism would take.
 */
export const wellBefore = (fallbackMs: number): number => fallbackMs / 2
