// The README's room table is the import graph: every import is allowed by it, every allowed room is used, and no file reaches itself again.
import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const OUTSIDE = new Set(['node_modules', 'dist', 'test', 'bench', 'scripts', 'docs', '.git', '.data', '.tap', 'coverage'])

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    if (dir === ROOT && OUTSIDE.has(name)) return []
    if (name.startsWith('.')) return []
    if (statSync(path).isDirectory()) return sources(path)
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [relative(ROOT, path)] : []
  })
}

/** `lib/errors.ts` → `lib/`, `app.ts` → `app.ts`: the names the README's table uses. */
const roomOf = (file: string): string => file.includes('/') ? `${file.split('/')[0] ?? ''}/` : file

/** Relative imports of a file (static, dynamic, type-only and re-exports), as repository paths. */
function importsOf (file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8')
  return [...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)\.js['"]/g)]
    .map(m => relative(ROOT, resolve(ROOT, dirname(file), `${m[1] ?? ''}.ts`)))
}

function readmeRooms (): Map<string, Set<string>> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const table = readme.slice(readme.indexOf('<!-- rooms -->'), readme.indexOf('<!-- /rooms -->'))
  const rooms = new Map<string, Set<string>>()
  for (const line of table.split('\n').filter(l => l.startsWith('| `'))) {
    const cells = line.split('|').map(c => c.trim())
    const room = /`([^`]+)`/.exec(cells[1] ?? '')?.[1]
    if (room === undefined) continue
    rooms.set(room, new Set([...(cells[3] ?? '').matchAll(/`([^`]+)`/g)].map(m => m[1] ?? '')))
  }
  return rooms
}

const files = sources(ROOT)
const graph = new Map(files.map(f => [f, importsOf(f)]))
const rooms = readmeRooms()

t.test('every source file sits in a room of the README', async t => {
  const homeless = files.filter(f => !rooms.has(roomOf(f)))
  t.same(homeless, [], 'files outside the rooms the README names')
})

t.test('the imports between rooms are exactly the README table', async t => {
  const actual = new Map<string, Set<string>>([...rooms.keys()].map(r => [r, new Set<string>()]))
  const offending: string[] = []
  for (const [file, imports] of graph) {
    for (const target of imports) {
      const from = roomOf(file)
      const to = roomOf(target)
      if (from === to) continue
      actual.get(from)?.add(to)
      if (rooms.get(from)?.has(to) !== true) offending.push(`${file} → ${target}`)
    }
  }
  t.same(offending, [], 'no import the table does not allow')
  for (const [room, allowed] of rooms) {
    t.same([...(actual.get(room) ?? [])].sort(), [...allowed].sort(), `${room} imports exactly what its row says`)
  }
})

t.test('no import cycle between files', async t => {
  // Tarjan's strongly connected components: any component of more than one file is a cycle.
  let index = 0
  const indexOf = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const visit = (v: string): void => {
    indexOf.set(v, index)
    low.set(v, index)
    index++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!indexOf.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, indexOf.get(w) ?? 0))
      }
    }
    if (low.get(v) !== indexOf.get(v)) return
    const component: string[] = []
    for (let w = stack.pop(); w !== undefined; w = w === v ? undefined : stack.pop()) {
      onStack.delete(w)
      component.push(w)
    }
    if (component.length > 1) cycles.push(component.sort())
  }
  for (const file of graph.keys()) if (!indexOf.has(file)) visit(file)
  t.same(cycles, [], 'import cycles')
})
