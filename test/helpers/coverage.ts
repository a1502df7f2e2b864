/**
 * Child processes under `npm test`'s coverage run (docs/testing.md, "Coverage"). scripts/coverage.ts sets
 * NODE_V8_COVERAGE for the test processes and so for everything they start: each node process writes its V8 coverage
 * there on exit.
 */
import { fileURLToPath } from 'node:url'

/** The module `npm test` imports after tsx in every test process, and tsxArgs() in child processes. */
export const COVERAGE_REGISTER = fileURLToPath(new URL('coverage-register.js', import.meta.url))

/**
 * `node` arguments that run one of this checkout's TypeScript entry points the way tap runs test files: tsx, then, when
 * coverage is on, the coverage hooks (coverage-register.js). A child process must load the sources exactly as the
 * test processes do: the report merges every process's counts for a file by their offsets in the code that ran.
 */
export function tsxArgs (): string[] {
  return process.env.NODE_V8_COVERAGE !== undefined && process.env.NODE_V8_COVERAGE !== ''
    ? ['--import', 'tsx', '--import', COVERAGE_REGISTER]
    : ['--import', 'tsx']
}

/**
 * Drops the coverage variable from an environment for processes whose coverage is not measured: copies of the checkout
 * in temporary directories, npm and tsc, the benchmark's dist/ servers. They would write large files the report drops.
 */
export function withoutCoverage (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  delete env.NODE_V8_COVERAGE
  return env
}
