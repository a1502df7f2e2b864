// Module hooks for `npm test`'s coverage run (docs/testing.md, "Coverage"), registered by coverage-register.js.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { transform } from 'esbuild'
import { coverageTransform, isProductSource } from '../../mcr.config.js'

const root = new URL('../../', import.meta.url)

/**
 * The product's TypeScript (what mcr.config.js measures; test files stay with tsx and its cache), transpiled by esbuild
 * as tsx does, but without tsx's `minifyWhitespace` and `keepNames`: keepNames adds a `__name(fn, "fn")` call after
 * every function, on the declaration's line, which runs at load and would count never-called functions' lines and
 * statements as covered (docs/testing.md). The code V8 counts is then the source's statements, one per line.
 * @param {string} url
 * @param {object} context
 * @param {(url: string, context: object) => Promise<{ format?: string | null, source?: unknown }>} nextLoad
 */
export async function load (url, context, nextLoad) {
  const { pathname, protocol } = new URL(url)
  if (protocol !== 'file:' || !pathname.startsWith(root.pathname) || !isProductSource(decodeURIComponent(pathname.slice(root.pathname.length)))) {
    return await nextLoad(url, context)
  }
  const path = fileURLToPath(url)
  const { code } = await transform(await readFile(path, 'utf8'), coverageTransform(path))
  return { format: 'module', source: code, shortCircuit: true }
}
