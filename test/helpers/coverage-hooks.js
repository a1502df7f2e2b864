// Module hooks for `npm test`'s coverage run (docs/testing.md, "Coverage"), registered by coverage-register.js.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { transform } from 'esbuild'

const root = new URL('../../', import.meta.url).href

/**
 * This checkout's own TypeScript, transpiled by esbuild as tsx does but without tsx's `minifyWhitespace`: tsx puts a
 * module on one line, and V8's block ranges then map back to the source only as precisely as the source map's segments
 * reach (an uncovered `catch` block swallows the statements after it). Kept line by line, they map exactly.
 * @param {string} url
 * @param {object} context
 * @param {(url: string, context: object) => Promise<{ format?: string | null, source?: unknown }>} nextLoad
 */
export async function load (url, context, nextLoad) {
  if (!url.startsWith(root) || url.includes('/node_modules/') || !/\.ts$/.test(new URL(url).pathname)) return await nextLoad(url, context)
  const path = fileURLToPath(url)
  const { code } = await transform(await readFile(path, 'utf8'), {
    loader: 'ts',
    format: 'esm',
    target: `node${process.versions.node}`,
    sourcemap: 'inline',
    sourcefile: path
  })
  return { format: 'module', source: code, shortCircuit: true }
}
