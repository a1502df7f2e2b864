// Writes the README's generated sections (the operation tables) from OPERATIONS; `npm run docs`. test/docs.test.ts checks they are current.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../config.js'
import { limitsFrom } from '../core/services.js'
import { OPERATIONS, type AnyOperation } from '../core/operations/index.js'

const PREFIX = '/api/v1/mcp'

/** The default rpm of each bucket, from the configuration's defaults. */
const limits = limitsFrom(loadConfig({}))

const budget = (op: AnyOperation): string => `\`${op.bucket}\` (${limits[op.rpm]})`
const firstSentence = (text: string): string => (/^(.*?\.)(\s|$)/.exec(text)?.[1] ?? text).replaceAll('|', '\\|')

/** One row per operation: its REST route, MCP tool, budget and what it needs. */
export function operationsTable (): string {
  const rows = OPERATIONS.map(op => `| \`${op.method} ${PREFIX}${op.path}\` | \`${op.name}\` | ${budget(op)} | ${op.trigger ? '`allow_trigger`' : ''} | ${firstSentence(op.description)} |`)
  return ['| REST route | MCP tool | budget (default rpm) | needs | answers |', '|---|---|---|---|---|', ...rows].join('\n')
}

const SECTIONS: Record<string, () => string> = { operations: operationsTable }

/** The README with every generated section (between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`) rewritten. */
export function renderReadme (readme: string): string {
  let out = readme
  for (const [name, render] of Object.entries(SECTIONS)) {
    const begin = `<!-- generated:${name} (npm run docs) -->`
    const end = `<!-- /generated:${name} -->`
    const from = out.indexOf(begin)
    const to = out.indexOf(end)
    if (from < 0 || to < from) throw new Error(`README.md has no generated section ${name}`)
    out = out.slice(0, from + begin.length) + '\n' + render() + '\n' + out.slice(to)
  }
  return out
}

export const README = fileURLToPath(new URL('../README.md', import.meta.url))

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(README, renderReadme(readFileSync(README, 'utf8')))
}
