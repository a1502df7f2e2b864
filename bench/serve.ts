// The server side of the benchmark's child processes: listen on a free port, count answered requests, report over IPC.
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import type { FastifyInstance } from 'fastify'

/** Messages from the parent (run.ts). */
export type ParentMessage =
  | { type: 'stats' }
  | { type: 'close' }
  /** V8's CPU profiler (what --cpu-prof uses), only around the measured run; the profile goes to `file` */
  | { type: 'profile-start' }
  | { type: 'profile-stop', file: string }

/** What a child reports: `ready` once listening, `stats` when asked. */
export type ChildMessage =
  | { type: 'ready', port: number }
  | { type: 'stats', cpuUserUs: number, cpuSystemUs: number, answered: number, rssBytes: number, counters: Record<string, number> }
  | { type: 'closed' }
  | { type: 'profile', started: boolean, file?: string }

/**
 * Every server of the benchmark counts the responses it finished with a root onResponse hook (same cost
 * in every variant). The count is independent of the gateway's own audit path: the audit check compares
 * mcp_access_log rows with it.
 */
export interface ServeOptions {
  onClose?: () => Promise<void>
  /** monotonic counters of the variant (e.g. failOpen: limiter calls that failed open); the parent reports their deltas */
  counters?: () => Promise<Record<string, number>>
}

export async function serve (fastify: FastifyInstance, opts: ServeOptions = {}): Promise<void> {
  let answered = 0
  fastify.addHook('onResponse', (_request, _reply, done) => { answered++; done() })
  await fastify.listen({ host: '127.0.0.1', port: 0 })
  const address = fastify.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0

  const profiler = new Profiler()
  let closing = false
  const close = async (): Promise<void> => {
    if (closing) return
    closing = true
    await fastify.close()
    await opts.onClose?.()
    process.send?.({ type: 'closed' } satisfies ChildMessage)
    // exit (not kill) so that --cpu-prof writes its profile
    process.exit(0)
  }
  process.on('message', (msg: ParentMessage) => {
    if (msg.type === 'stats') {
      const cpu = process.cpuUsage()
      const at = answered
      void (opts.counters?.() ?? Promise.resolve({})).then(counters => {
        process.send?.({ type: 'stats', cpuUserUs: cpu.user, cpuSystemUs: cpu.system, answered: at, rssBytes: process.memoryUsage.rss(), counters } satisfies ChildMessage)
      })
    } else if (msg.type === 'close') {
      void close()
    } else if (msg.type === 'profile-start') {
      void profiler.start().then(() => { process.send?.({ type: 'profile', started: true } satisfies ChildMessage) })
    } else if (msg.type === 'profile-stop') {
      void profiler.stop(msg.file).then(() => { process.send?.({ type: 'profile', started: false, file: msg.file } satisfies ChildMessage) })
    }
  })
  process.on('SIGTERM', () => { void close() })
  // the parent died: do not linger
  process.on('disconnect', () => { void close() })
  process.send?.({ type: 'ready', port } satisfies ChildMessage)
}

class Profiler {
  private session: Session | null = null

  async start (): Promise<void> {
    const session = new Session()
    session.connect()
    await session.post('Profiler.enable')
    // the --cpu-prof default sampling interval
    await session.post('Profiler.setSamplingInterval', { interval: 1000 })
    await session.post('Profiler.start')
    this.session = session
  }

  async stop (file: string): Promise<void> {
    const session = this.session
    if (session === null) return
    const { profile } = await session.post('Profiler.stop')
    session.disconnect()
    this.session = null
    await writeFile(file, JSON.stringify(profile))
  }
}
