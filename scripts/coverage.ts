// `npm test`'s runner (docs/testing.md, "Coverage"): tap with V8 coverage in the test processes and every process they
// start, then monocart's report and verdict (mcr.config.js). Arguments go to tap (`node --import tsx
// scripts/coverage.ts test/x.test.ts` runs one file with coverage); `--report-only` reports the last run's data again
// (kept in .tap/v8-coverage until the next run). Exits with tap's status, else 1 when the coverage verdict fails.
import { spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import MCR from 'monocart-coverage-reports'

const root = fileURLToPath(new URL('..', import.meta.url))
// outside coverage/, which the report empties before writing
const dataDir = fileURLToPath(new URL('../.tap/v8-coverage', import.meta.url))

const reportOnly = process.argv.includes('--report-only')
let tapStatus = 0
if (!reportOnly) {
  await rm(dataDir, { recursive: true, force: true })
  tapStatus = await runTap(process.argv.slice(2))
}

const report = MCR()
await report.loadConfig(fileURLToPath(new URL('../mcr.config.js', import.meta.url)))
await report.addFromDir(dataDir)
await report.generate()
process.exit(tapStatus !== 0 ? tapStatus : (process.exitCode ?? 0))

async function runTap (args: string[]): Promise<number> {
  // The variable goes to the test processes only (tap's --test-env), not to tap's own runner: what the runner does is
  // not the product, and V8's block counters cost CPU. The register module makes them load the product as
  // coverage-hooks.js does; the processes they start inherit the variable and add it themselves (test/helpers/coverage.ts).
  const env = { ...process.env }
  delete env.NODE_V8_COVERAGE
  const tap = spawn(process.execPath, [
    fileURLToPath(new URL('dist/esm/run.mjs', import.meta.resolve('tap/package.json'))), // tap's bin
    `--test-env=NODE_V8_COVERAGE=${dataDir}`,
    '--node-arg=--import=./test/helpers/coverage-register.js',
    ...args
  ], { cwd: root, env, stdio: 'inherit' })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { tap.kill(signal) })
  return await new Promise<number>(resolve => tap.on('close', (code) => { resolve(code ?? 1) }))
}
