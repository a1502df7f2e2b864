// Coverage of the product's TypeScript sources, measured by `npm test` (scripts/coverage.ts).
// How it works, why this tool, and what is excluded: docs/testing.md ("Coverage").
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { transformSync } from 'esbuild'

/** The compiler options tsx hands esbuild too (class field semantics follow `target`). */
const tsconfigRaw = { compilerOptions: JSON.parse(readFileSync(new URL('tsconfig.json', import.meta.url), 'utf8')).compilerOptions }

/**
 * How the test processes load a product source under coverage (test/helpers/coverage-hooks.js): esbuild as tsx uses it,
 * without tsx's `minifyWhitespace` and `keepNames` (docs/testing.md says why), with an inline source map.
 * @param {string} path absolute
 * @returns {import('esbuild').TransformOptions}
 */
export const coverageTransform = (path) => ({ loader: 'ts', format: 'esm', target: `node${process.versions.node}`, sourcemap: 'inline', sourcefile: path, tsconfigRaw })

const root = fileURLToPath(new URL('.', import.meta.url))
const rootUrl = new URL('.', import.meta.url).href

/**
 * The minimum total coverage (percent) `npm test` accepts: about four points below what the whole suite measured
 * (statements 90.2, branches 80.3, functions 92.0, lines 93.0; docs/testing.md). Below any of them, `npm test` exits 1.
 */
export const thresholds = { statements: 90, branches: 80, functions: 91, lines: 93 }

/**
 * What is measured: the product, i.e. every `.ts` file outside these folders. `test/` is the suite itself (and its
 * helpers), `bench/` is `npm run bench`, `scripts/` writes the README's generated tables; `node_modules/` and `dist/`
 * are not sources (`dist/` is tsc's output of these same files; what runs from it, e.g. the benchmark's servers, is
 * left out rather than mixed with the tsx-loaded copies); `coverage/` is this report.
 */
const excludedDirs = ['test', 'bench', 'scripts', 'node_modules', 'dist', 'coverage']

/**
 * Product sources the tests run only compiled, from dist/, as their npm script does: `npm run migrate` is
 * `node dist/db/migrate-cli.js` (test/db/migrate.test.ts). Their coverage is taken from that dist/ file (tsc's source
 * map leads back to the source). Nothing else is taken from dist/: counts of one source from two different compilations
 * (esbuild's in the test processes, tsc's in dist/) do not merge exactly.
 */
export const compiledOnly = ['db/migrate-cli.ts']

/** @type {Map<string, number>} product source → length of the code coverageTransform makes of it */
const transformedLengths = new Map()
/** @param {string} path relative to the repository */
const transformedLength = (path) => {
  let length = transformedLengths.get(path)
  if (length === undefined) {
    const absolute = join(root, path)
    length = transformSync(readFileSync(absolute, 'utf8'), coverageTransform(absolute)).code.length
    transformedLengths.set(path, length)
  }
  return length
}

/** @type {Map<string, number>} product source → entries left out because their process did not load it through the hook */
export const unhooked = new Map()

/**
 * Whether a V8 entry (one script of one process) counts. The report adds up all processes' counts for a file by their
 * offsets into one copy of its code, so every entry of a product source must come from coverageTransform's code: V8's
 * top-level range spans the whole script, and an entry of another length (tsx's code, in a process started without
 * tsxArgs()) is left out and named at the end instead of corrupting the file's figures.
 * @param {string} path relative to the repository
 * @param {{ functions: { ranges: { endOffset: number }[] }[] }} entry
 */
const measuredEntry = (path, entry) => {
  if (path.startsWith('dist/')) return compiledOnly.some((source) => path === `dist/${source.replace(/\.ts$/, '.js')}`)
  if (!isProductSource(path)) return false
  const length = Math.max(0, ...entry.functions.flatMap((f) => f.ranges.map((r) => r.endOffset)))
  if (length === transformedLength(path)) return true
  unhooked.set(path, (unhooked.get(path) ?? 0) + 1)
  return false
}

/** @param {string} path relative to the repository, `/`-separated */
export const isProductSource = (path) => {
  const parts = path.split('/')
  return path.endsWith('.ts') && !path.endsWith('.d.ts') && !excludedDirs.includes(parts[0] ?? '') &&
    !parts.some((part) => part === 'node_modules' || part.startsWith('.'))
}

/**
 * @param {string} [dir] relative to the repository, `/`-separated
 * @returns {string[]} every product source under it, relative to the repository
 */
export const productSources = (dir = '') => readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
  const path = dir === '' ? entry.name : `${dir}/${entry.name}`
  if (entry.isDirectory()) return entry.name.startsWith('.') || entry.name === 'node_modules' || excludedDirs.includes(path) ? [] : productSources(path)
  return isProductSource(path) ? [path] : []
}).sort()

/**
 * Product sources with no code at run time (types only: esbuild, as the tests load them, emits nothing), which no
 * process ever loads and which have nothing to cover.
 * @param {string} path relative to the repository
 */
const typesOnly = (path) => transformSync(readFileSync(join(root, path), 'utf8'), { loader: 'ts', format: 'esm' }).code.trim() === ''

/**
 * The verdict on a run: which totals are under their threshold, and which product sources (with code) no test loaded
 * at all: a file that is never imported has no coverage entry, so it would not lower the totals; it fails the run.
 * @param {Record<string, { pct: number | string } | undefined>} total the istanbul summary's `total`
 * @param {string[]} covered the sources the report holds
 * @param {string[]} sources every product source
 * @returns {{ low: string[], unloaded: string[] }}
 */
export const verdict = (total, covered, sources) => {
  const low = Object.entries(thresholds)
    .filter(([metric, min]) => !(Number(total[metric]?.pct) >= min))
    .map(([metric, min]) => `${metric} ${total[metric]?.pct ?? 'n/a'}% < ${min}%`)
  const seen = new Set(covered)
  return { low, unloaded: sources.filter((s) => !seen.has(s) && !typesOnly(s)) }
}

const outputDir = join(root, 'coverage')

/** @type {import('monocart-coverage-reports').CoverageReportOptions} */
const options = {
  name: 'InfraBox MCP Gateway',
  logging: 'error',
  outputDir,
  baseDir: root,
  // Istanbul's reports (monocart converts V8's byte ranges to statements, branches, functions and lines): the per-file
  // table in the output, its totals in coverage-summary.json (checked below), lcov.info for tools. A line counts as
  // covered when its statements ran (monocart's own V8 reports count a line with any unrun byte, e.g. the `{` of an
  // unrun block, as uncovered).
  reports: [
    ['text', { maxCols: 150 }],
    ['json-summary'],
    ['lcovonly']
  ],
  // V8 reports every script a process ran; keep this checkout's own files (not copies in temporary directories, not
  // dependencies, not tap's build of its plugins under .tap/, from dist/ only `compiledOnly`), then, after source
  // maps, only the product's sources.
  entryFilter: (entry) => entry.url.startsWith(rootUrl) && measuredEntry(decodeURIComponent(new URL(entry.url).pathname).slice(new URL(rootUrl).pathname.length), entry),
  sourceFilter: (sourcePath) => isProductSource(relative(root, join(root, sourcePath)).split(sep).join('/')),
  onEnd: (results) => {
    /** @type {{ total?: Record<string, { pct: number | string }> }} */
    const summary = existsSync(join(outputDir, 'coverage-summary.json')) ? JSON.parse(readFileSync(join(outputDir, 'coverage-summary.json'), 'utf8')) : {}
    if (results === undefined || summary.total === undefined) {
      console.log('# coverage: no data was collected')
      process.exitCode = 1
      return
    }
    const total = summary.total
    const { low, unloaded } = verdict(total, results.files.map((f) => f.sourcePath), productSources())
    const totals = Object.keys(thresholds).map((m) => `${m} ${total[m]?.pct}%`).join(', ')
    console.log(`# coverage: ${totals} (thresholds: ${Object.entries(thresholds).map(([m, v]) => `${m} ${v}%`).join(', ')})`)
    for (const file of unloaded) console.log(`# coverage: ${file} is loaded by no test`)
    if (unhooked.size > 0) {
      console.log(`# coverage: left out, loaded without the coverage hook (a process started without tsxArgs()): ${[...unhooked].map(([f, n]) => `${f} ×${n}`).join(', ')}`)
    }
    for (const line of low) console.log(`# coverage below threshold: ${line}`)
    if (low.length > 0 || unloaded.length > 0) process.exitCode = 1
  }
}

export default options
