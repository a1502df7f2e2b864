// npm test's coverage verdict (mcr.config.js) and the module hook that loads sources for it (test/helpers/coverage-hooks.js).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'

interface Metric { pct: number | string }
interface CoverageConfig {
  thresholds: Record<string, number>
  isProductSource: (path: string) => boolean
  productSources: () => string[]
  verdict: (total: Record<string, Metric | undefined>, covered: string[], sources: string[]) => { low: string[], unloaded: string[] }
}
type Load = (url: string, context: object, nextLoad: (url: string, context: object) => Promise<{ format?: string | null, source?: unknown }>) => Promise<{ format?: string | null, source?: unknown, shortCircuit?: boolean }>

const root = new URL('..', import.meta.url)
// imported by URL: plain JavaScript, loaded by mcr itself outside the TypeScript build
const config = await import(new URL('mcr.config.js', root).href) as CoverageConfig
const { load } = await import(new URL('test/helpers/coverage-hooks.js', root).href) as { load: Load }

t.test('what is measured: the product, not the suite, the benchmark, the scripts, dependencies or builds', async t => {
  for (const path of ['app.ts', 'core/limiter.ts', 'routes/projects/_projectId/builds/index.ts', 'db/migrations/0004-oauth.ts']) t.ok(config.isProductSource(path), path)
  for (const path of ['test/core/limiter.test.ts', 'test/helpers/app.ts', 'bench/run.ts', 'scripts/readme.ts', 'dist/app.js', 'dist/app.ts',
    'node_modules/x/index.ts', '.tap/plugins/node_modules/@tapjs/tsx/src/index.ts', 'mcr.config.js', 'test/types/s3rver.d.ts']) t.notOk(config.isProductSource(path), path)
  const sources = config.productSources()
  t.ok(sources.includes('oauth/routes.ts') && sources.includes('server.ts'), 'the walk finds the product')
  t.same(sources.filter(s => !config.isProductSource(s)), [], 'and nothing else')
})

t.test('the verdict: each total against its threshold, and product files with code that no process loaded', async t => {
  const total = (pct: number): Record<string, Metric> => Object.fromEntries(Object.keys(config.thresholds).map(m => [m, { pct }]))
  const sources = ['core/limiter.ts', 'db/schema.ts']
  t.same(config.verdict(total(100), sources, sources), { low: [], unloaded: [] })
  const low = config.verdict({ ...total(100), branches: { pct: (config.thresholds.branches ?? 0) - 0.01 } }, sources, sources).low
  t.equal(low.length, 1)
  t.match(low[0], /^branches /)
  t.same(config.verdict({}, sources, sources).low.length, Object.keys(config.thresholds).length, 'no figures at all fails every threshold')
  t.same(config.verdict(total(100), [], sources).unloaded, ['core/limiter.ts'], 'db/schema.ts holds only types: nothing runs, nothing to load')
})

t.test('the hook: the product\'s TypeScript line for line, everything else (tests too) to the next loader', async t => {
  const next = async (url: string): Promise<{ format: string, source: string }> => ({ format: 'next', source: url })
  const url = new URL('core/token-usage.ts', root).href
  const loaded = await load(url, {}, next)
  t.equal(loaded.format, 'module')
  t.equal(loaded.shortCircuit, true)
  const code = String(loaded.source)
  const original = readFileSync(fileURLToPath(url), 'utf8')
  t.ok(code.split('\n').length > original.split('\n').length / 2, 'not folded onto one line as tsx does')
  t.match(code, /^\/\/# sourceMappingURL=data:application\/json;base64,/m, 'with its source map')
  t.match(code, /if \(this\.touchedAt\.size > 1e4\) \{\n/, 'a statement keeps a line of its own')
  for (const other of [new URL('test/helpers/app.ts', root).href, new URL('node_modules/tsx/package.json', root).href, pathToFileURL('/tmp/elsewhere.ts').href, new URL('mcr.config.js', root).href]) {
    t.same(await load(other, {}, next), { format: 'next', source: other }, other)
  }
})
