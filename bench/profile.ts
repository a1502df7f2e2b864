// Summarises a V8 .cpuprofile (node --cpu-prof): self time by area (package, Node internals, this project) and the top functions.
//   node dist/bench/profile.js <file.cpuprofile> [top]
import { readFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'

interface CallFrame { functionName: string, url: string, lineNumber: number, columnNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, hitCount?: number, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

export interface ProfileSummary {
  totalMs: number
  /** share of sampled time that was not idle */
  busyMs: number
  byArea: Array<{ area: string, ms: number, share: number }>
  top: Array<{ fn: string, where: string, ms: number, share: number }>
  /** time under (inclusive) selected frames of the chain and the stack around it */
  inclusive: Array<{ name: string, ms: number, share: number }>
  text: string
}

/** Which part of the process a frame belongs to. */
function areaOf (f: CallFrame): string {
  const url = f.url
  if (url === '') {
    if (f.functionName === '(idle)') return '(idle)'
    if (f.functionName === '(garbage collector)') return '(garbage collector)'
    if (f.functionName === '(program)') return '(program: native, not attributed)'
    return '(native)'
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (nm !== null) return nm[1] as string
  if (url.startsWith('node:')) return 'node: ' + url.slice(5).split('/').slice(0, 2).join('/')
  const own = /\/dist\/(.+)$/.exec(url)
  if (own !== null) return 'gateway: ' + (own[1] as string).replace(/\.js$/, '')
  return url
}

/** Frames whose inclusive time is worth a line: where the chain's and the handler's work happens. */
const INCLUSIVE: Array<[string, (f: CallFrame) => boolean]> = [
  ['chain: audit step (onResponse → record)', f => /plugins\/audit\.js$/.test(f.url)],
  ['chain: audit writer (batched INSERT)', f => /core\/audit-writer\.js$/.test(f.url)],
  ['chain: auth (token + project lookup)', f => /plugins\/mcp-auth\.js$/.test(f.url) || /core\/token-(store|lookup|usage)\.js$/.test(f.url) || /db\/tokens\.js$/.test(f.url)],
  ['chain: rate limit (spendBudget + Redis)', f => /plugins\/rate-limit\.js$/.test(f.url)],
  ['chain: project access', f => /plugins\/project-access\.js$/.test(f.url)],
  ['handler: listBuilds', f => f.functionName === 'listBuilds'],
  ['kysely: query building + compiling', f => /node_modules\/kysely\//.test(f.url) && /(compile|QueryCreator|SelectQueryBuilder|createQueryId|parse)/i.test(f.functionName)],
  ['pg: protocol + result parsing', f => /node_modules\/pg(-protocol)?\//.test(f.url)],
  ['ioredis', f => /node_modules\/ioredis\//.test(f.url)],
  ['pino (logging)', f => /node_modules\/pino/.test(f.url)],
  ['fast-json-stringify (serialize)', f => /node_modules\/fast-json-stringify/.test(f.url) || (f.functionName.startsWith('anonymous') && /serializ/i.test(f.url))],
  ['prom-client (metrics)', f => /node_modules\/prom-client/.test(f.url)]
]

export async function summarizeProfile (file: string, topN = 25): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const selfUs = new Map<number, number>()
  profile.samples.forEach((id, i) => { selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)) })

  const profilerFrames = new Map<number, boolean>()
  const underProfiler = (id: number): boolean => {
    const known = profilerFrames.get(id)
    if (known !== undefined) return known
    const frame = byId.get(id)?.callFrame
    const up = parent.get(id)
    const result = frame !== undefined && /bench\/serve\.js$/.test(frame.url) ? true : up === undefined ? false : underProfiler(up)
    profilerFrames.set(id, result)
    return result
  }

  let total = 0
  let idle = 0
  const area = new Map<string, number>()
  const fn = new Map<string, { fn: string, where: string, us: number }>()
  const inclusive = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    if (node === undefined) continue
    total += us
    const a = areaOf(node.callFrame)
    if (a === '(idle)') { idle += us; continue }
    if (underProfiler(id)) { idle += us; continue } // the inspector session taking the profile (bench/serve.ts), not the gateway
    area.set(a, (area.get(a) ?? 0) + us)
    const where = `${a}:${node.callFrame.lineNumber + 1}`
    const key = `${node.callFrame.functionName || '(anonymous)'} ${where}`
    const entry = fn.get(key) ?? { fn: node.callFrame.functionName || '(anonymous)', where, us: 0 }
    entry.us += us
    fn.set(key, entry)
    // inclusive: credit each selected category once per sample stack
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame
      if (frame === undefined) break
      for (const [name, match] of INCLUSIVE) {
        if (!seen.has(name) && match(frame)) { seen.add(name); inclusive.set(name, (inclusive.get(name) ?? 0) + us) }
      }
    }
  }
  const busy = total - idle
  const share = (us: number): number => busy === 0 ? 0 : us / busy
  const byArea = [...area.entries()].sort((x, y) => y[1] - x[1]).map(([a, us]) => ({ area: a, ms: us / 1000, share: share(us) }))
  const top = [...fn.values()].sort((x, y) => y.us - x.us).slice(0, topN).map(e => ({ fn: e.fn, where: e.where, ms: e.us / 1000, share: share(e.us) }))
  const incl = INCLUSIVE.map(([name]) => ({ name, ms: (inclusive.get(name) ?? 0) / 1000, share: share(inclusive.get(name) ?? 0) }))

  const pct = (x: number): string => (x * 100).toFixed(1).padStart(5) + ' %'
  const lines = [
    `sampled ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(1)} s (${((busy / Math.max(1, total)) * 100).toFixed(0)} % of one core; the profiler's own work excluded); shares below are of busy time`,
    '',
    'self time by area:',
    ...byArea.slice(0, 20).map(r => `  ${pct(r.share)}  ${r.area}`),
    '',
    'inclusive time (a sample counts once per line):',
    ...incl.map(r => `  ${pct(r.share)}  ${r.name}`),
    '',
    `top ${topN} functions by self time:`,
    ...top.map(r => `  ${pct(r.share)}  ${r.fn}  (${r.where})`)
  ]
  return { totalMs: total / 1000, busyMs: busy / 1000, byArea, top, inclusive: incl, text: lines.join('\n') }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2]
  if (file === undefined) { console.error('usage: node dist/bench/profile.js <file.cpuprofile> [top]'); process.exit(2) }
  summarizeProfile(file, Number(process.argv[3] ?? 25)).then(s => { console.log(s.text) }, (err: unknown) => { console.error(err); process.exit(1) })
}

export interface ProfileDiff {
  variant: string
  baseline: string
  /** busy µs per answered request (the profiler's own work excluded), variant and baseline */
  busyUsPerReq: [number, number]
  /** functions by the difference of their self time per answered request, largest first */
  rows: Array<{ fn: string, where: string, usPerReq: number, baselineUsPerReq: number }>
  text: string
}

/**
 * Self time per answered request, function by function, of a variant against its baseline (profiles of
 * measured runs of the same length): where the variant's extra CPU goes. Native socket writes (writev) carry
 * the time the process waits to run again after waking its peer on a busy machine, so they are wall time more
 * than CPU time.
 */
export async function diffProfiles (variant: string, file: string, answered: number, baseline: string, baselineFile: string, baselineAnswered: number, topN = 15): Promise<ProfileDiff> {
  const [v, b] = await Promise.all([summarizeProfile(file, Infinity), summarizeProfile(baselineFile, Infinity)])
  const per = (ms: number, n: number): number => ms * 1000 / Math.max(1, n)
  const keyOf = (e: { fn: string, where: string }): string => `${e.fn} ${e.where}`
  const rows = new Map<string, { fn: string, where: string, usPerReq: number, baselineUsPerReq: number }>()
  for (const e of v.top) rows.set(keyOf(e), { fn: e.fn, where: e.where, usPerReq: per(e.ms, answered), baselineUsPerReq: 0 })
  for (const e of b.top) {
    const row = rows.get(keyOf(e)) ?? { fn: e.fn, where: e.where, usPerReq: 0, baselineUsPerReq: 0 }
    row.baselineUsPerReq = per(e.ms, baselineAnswered)
    rows.set(keyOf(e), row)
  }
  const sorted = [...rows.values()].sort((x, y) => Math.abs(y.usPerReq - y.baselineUsPerReq) - Math.abs(x.usPerReq - x.baselineUsPerReq)).slice(0, topN)
  const busy: [number, number] = [per(v.busyMs, answered), per(b.busyMs, baselineAnswered)]
  const f = (x: number): string => x.toFixed(1).padStart(7)
  const text = [
    `profile ${variant} against ${baseline}: busy ${busy[0].toFixed(1)} vs ${busy[1].toFixed(1)} µs per answered request; self time per request, largest differences:`,
    `   ${'Δ µs'.padStart(7)} ${variant.padStart(7)} ${baseline.padStart(7)}  function`,
    ...sorted.map(r => `   ${f(r.usPerReq - r.baselineUsPerReq)} ${f(r.usPerReq)} ${f(r.baselineUsPerReq)}  ${r.fn} (${r.where})`)
  ].join('\n')
  return { variant, baseline, busyUsPerReq: busy, rows: sorted, text }
}
