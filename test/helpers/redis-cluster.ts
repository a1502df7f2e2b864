// A real Redis Cluster of the test's own: three `redis-server --cluster-enabled yes` on free ports, joined by
// `redis-cli --cluster create … --cluster-replicas 0`, configs and data in a temporary directory; nodes can be
// killed; everything is killed and removed in teardown.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freePort } from './faults.js'

const run = promisify(execFile)

interface Teardown { teardown: (fn: () => unknown) => void }

export interface ClusterNode { port: number, child: ChildProcess, id: string }

export class RedisClusterServer {
  private constructor (readonly dir: string, readonly nodes: ClusterNode[], readonly nodeTimeoutMs: number) {}

  /** The seed list as REDIS_URL takes it with REDIS_CLUSTER=true. */
  get urls (): string { return this.nodes.map(n => `redis://127.0.0.1:${n.port}`).join(',') }

  /**
   * Starts `count` masters and creates the cluster. `cluster-require-full-coverage no`: when a master fails, the
   * others keep serving their slots (what the gateway's README asks of a production cluster).
   */
  static async start (t: Teardown, opts: { count?: number, nodeTimeoutMs?: number } = {}): Promise<RedisClusterServer> {
    const count = opts.count ?? 3
    const nodeTimeoutMs = opts.nodeTimeoutMs ?? 1500
    const dir = mkdtempSync(join(tmpdir(), 'ib-redis-cluster-'))
    const nodes: ClusterNode[] = []
    const cluster = new RedisClusterServer(dir, nodes, nodeTimeoutMs)
    // should the test process end without its teardown (a crash, process.exit), no redis-server outlives it
    const orphans = (): void => { for (const n of nodes) n.child.kill('SIGKILL') }
    process.once('exit', orphans)
    t.teardown(async () => {
      await Promise.all(nodes.map(async (_n, i) => { await cluster.kill(i) }))
      process.off('exit', orphans)
      rmSync(dir, { recursive: true, force: true })
    })
    for (let i = 0; i < count; i++) {
      const port = await freePort()
      const child = spawn('redis-server', [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', String(nodeTimeoutMs), '--cluster-require-full-coverage', 'no'
      ], { stdio: 'ignore' })
      nodes.push({ port, child, id: '' })
    }
    for (const node of nodes) await waitForPing(node.port)
    await run('redis-cli', ['--cluster', 'create', ...nodes.map(n => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 60_000 })
    for (const node of nodes) {
      await cluster.#until(node.port, async r => String(await r.cluster('INFO')).includes('cluster_state:ok'), 'cluster_state:ok')
      const r = client(node.port)
      try { node.id = String(await r.cluster('MYID')) } finally { r.disconnect() }
    }
    return cluster
  }

  /** Which node (index) owns the key's slot. */
  async nodeOf (key: string): Promise<number> {
    const r = client(this.liveNode().port)
    try {
      const slot = Number(await r.cluster('KEYSLOT', key))
      const ranges = await r.cluster('SLOTS')
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1]
      const index = this.nodes.findIndex(n => n.port === owner)
      if (index < 0) throw new Error(`no node owns slot ${slot}`)
      return index
    } finally {
      r.disconnect()
    }
  }

  /** A plain connection to one node (no cluster routing): to read a key where it lives. */
  node (index: number): Redis {
    const n = this.nodes[index]
    if (n === undefined) throw new Error(`no node ${index}`)
    return client(n.port)
  }

  running (index: number): boolean {
    const c = this.nodes[index]?.child
    return c !== undefined && c.exitCode === null && c.signalCode === null
  }

  /** SIGKILL one node and wait for its exit. */
  async kill (index: number): Promise<void> {
    const child = this.nodes[index]?.child
    if (child === undefined || !this.running(index)) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  /** Waits until every live node flags node `index` as failed (after cluster-node-timeout) and still serves. */
  async failureAgreed (index: number): Promise<void> {
    const dead = this.nodes[index]
    if (dead === undefined) throw new Error(`no node ${index}`)
    for (const [i, node] of this.nodes.entries()) {
      if (i === index) continue
      await this.#until(node.port, async r => {
        const line = String(await r.cluster('NODES')).split('\n').find(l => l.startsWith(dead.id))
        return line !== undefined && /\bfail\b/.test(line.split(' ')[2] ?? '') && String(await r.cluster('INFO')).includes('cluster_state:ok')
      }, `node ${index} flagged fail`)
    }
  }

  private liveNode (): ClusterNode {
    const live = this.nodes.find((_n, i) => this.running(i))
    if (live === undefined) throw new Error('no live node')
    return live
  }

  async #until (port: number, probe: (r: Redis) => Promise<boolean>, what: string): Promise<void> {
    const r = client(port)
    try {
      const deadline = Date.now() + 30_000 + 10 * this.nodeTimeoutMs
      for (;;) {
        try { if (await probe(r)) return } catch { /* not yet */ }
        if (Date.now() > deadline) throw new Error(`redis ${port}: no ${what} in time`)
        await sleep(50)
      }
    } finally {
      r.disconnect()
    }
  }
}

function client (port: number): Redis {
  const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => null })
  r.on('error', () => {})
  return r
}

async function waitForPing (port: number): Promise<void> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const r = client(port)
    try {
      if (await r.ping() === 'PONG') return
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`)
      await sleep(25)
    } finally {
      r.disconnect()
    }
  }
}
