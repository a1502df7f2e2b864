// `--import` this after tsx when NODE_V8_COVERAGE is set (scripts/coverage.ts does, through tap's node-arg; child processes
// through tsxArgs() in coverage.ts). Registration order matters: hooks registered later run first.
import { register } from 'node:module'

if (process.env.NODE_V8_COVERAGE) {
  // 1. this checkout's TypeScript, transpiled line by line instead of tsx's one-line output
  register('./coverage-hooks.js', import.meta.url)
  // 2. monocart's hook, which stores the code each module ran as (1. produced it) next to the coverage, for the report
  await import('monocart-coverage-reports/register')
}
