// Proves the limiter's sliding-window semantics on real Redis and in memory, and its fail-fast behaviour when Redis freezes or dies.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import {
  createRedisClient,
  LimiterUnavailableError,
  MemorySlidingWindow,
  REDIS_SOCKET_TIMEOUT_MS,
  RedisSlidingWindow,
  type RateLimitDecision,
  type RateLimitStore,
} from '../../core/limiter.js'
import { within } from '../helpers/timing.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
// tap runs files in parallel processes (and other people's files share this Redis).
const PREFIX = `test:limiter:${process.pid}:${randomBytes(4).toString('hex')}:`
// Behavioural tests are not about timeouts: a generous budget keeps a busy CI box from failing them open.
const RELAXED_TIMEOUT_MS = 2000

const now = (): number => performance.now()
const sleepUntil = async (target: number): Promise<void> => {
  const wait = target - now()
  if (wait > 0) await sleep(wait)
}
let keySeq = 0
const newKey = (label: string): string => `${PREFIX}ib_mcp_rl:{user-${++keySeq}}:${label}`

async function waitReady (client: Redis, ms: number): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis not ready after ${ms} ms`)), ms)
    client.once('ready', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

async function deleteByPrefix (client: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    cursor = next
    if (keys.length > 0) await client.del(...keys)
  } while (cursor !== '0')
}

/** The same contract, whichever store: run against Redis and against memory. */
function behaviour (t: Test, store: RateLimitStore): void {
  t.test('exactly `limit` hits pass, then refusals with Retry-After >= 1', async (t) => {
    const key = newKey('exact')
    for (let i = 0; i < 3; i++) {
      const d = await store.hit(key, 3, 1000)
      t.match(d, { allowed: true, limit: 3, remaining: 2 - i, retryAfterSeconds: 0 }, `hit ${i + 1} allowed`)
      t.ok(d.resetSeconds >= 1 && d.resetSeconds <= 1, 'resetSeconds is whole and within the window')
    }
    for (let i = 0; i < 2; i++) {
      const d = await store.hit(key, 3, 1000)
      t.same(d, { allowed: false, limit: 3, remaining: 0, resetSeconds: 1, retryAfterSeconds: 1 }, 'refused')
    }
  })

  t.test('keys are independent', async (t) => {
    const a = newKey('a')
    const b = newKey('b')
    t.equal((await store.hit(a, 1, 1000)).allowed, true)
    t.equal((await store.hit(a, 1, 1000)).allowed, false)
    t.equal((await store.hit(b, 1, 1000)).allowed, true, 'another key has its own budget')
  })

  t.test('limit 0 refuses everything without recording', async (t) => {
    const d = await store.hit(newKey('zero'), 0, 2000)
    t.same(d, { allowed: false, limit: 0, remaining: 0, resetSeconds: 0, retryAfterSeconds: 2 })
  })

  t.test('invalid arguments are a programming error, not an outage', async (t) => {
    const key = newKey('bad')
    for (const [limit, windowMs] of [[-1, 1000], [1.5, 1000], [1, 0], [1, 10.5], [Number.NaN, 1000]] as const) {
      await t.rejects(store.hit(key, limit, windowMs), RangeError, `limit=${limit} windowMs=${windowMs}`)
    }
  })

  t.test('refused hits do not extend the window', async (t) => {
    // A window long enough that the refusals stop a whole second before it ends: a loaded host may delay a hit that
    // long between the check of the loop and Redis, and a hit arriving after the window would rightly be allowed.
    const W = 2000
    const key = newKey('refusals')
    const t0 = now()
    t.equal((await store.hit(key, 2, W)).allowed, true)
    t.equal((await store.hit(key, 2, W)).allowed, true)
    const admitted = now()
    let refusals = 0
    // Keep hammering until shortly before the admitted hits leave: if any refusal were recorded,
    // the window would still be full well after `admitted + W`.
    while (now() < t0 + W - 1000) {
      const d = await store.hit(key, 2, W)
      t.equal(d.allowed, false, 'refused while full')
      refusals++
      await sleep(40)
    }
    t.ok(refusals >= 2, `${refusals} refusals happened in between`)
    await sleepUntil(admitted + W + 60)
    const first = await store.hit(key, 2, W)
    const second = await store.hit(key, 2, W)
    t.match(first, { allowed: true, remaining: 1 }, 'a slot freed as soon as the first hit left')
    t.match(second, { allowed: true, remaining: 0 }, 'both admitted hits left; no refusal was counted')
  })

  t.test('the window slides: hits free up one by one', async (t) => {
    const W = 800
    const key = newKey('sliding')
    const a0 = now()
    t.equal((await store.hit(key, 2, W)).allowed, true, 'A allowed')
    const a1 = now()
    await sleepUntil(a0 + 400)
    const b0 = now()
    t.match(await store.hit(key, 2, W), { allowed: true, remaining: 0 }, 'B allowed, budget spent')
    const b1 = now()
    const c = await store.hit(key, 2, W)
    t.match(c, { allowed: false, retryAfterSeconds: 1, resetSeconds: 1 }, 'C refused; A leaves within a second')

    await sleepUntil(a1 + W + 50)
    t.ok(now() < b0 + W - 100, 'timing sanity: B is still in the window')
    t.match(await store.hit(key, 2, W), { allowed: true, remaining: 0 }, 'D allowed: A left')
    // A fixed window that reset at a0 + W would let E through.
    t.match(await store.hit(key, 2, W), { allowed: false }, 'E refused: B and D still in the window')

    await sleepUntil(b1 + W + 50)
    t.match(await store.hit(key, 2, W), { allowed: true, remaining: 0 }, 'F allowed: B left, D remains')
    t.match(await store.hit(key, 2, W), { allowed: false }, 'G refused')
  })

  t.test('50 concurrent hits with limit 10: exactly 10 pass', async (t) => {
    const key = newKey('burst')
    const decisions = await Promise.all(Array.from({ length: 50 }, () => store.hit(key, 10, 5000)))
    const allowed = decisions.filter((d) => d.allowed)
    t.equal(allowed.length, 10)
    t.same(allowed.map((d) => d.remaining).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'each admitted hit saw its own slot')
    t.ok(decisions.filter((d) => !d.allowed).every((d) => d.retryAfterSeconds >= 1 && d.retryAfterSeconds <= 5))
  })
}

t.test('RedisSlidingWindow on the shared Redis', async (t) => {
  const clientA = createRedisClient(REDIS_URL)
  const clientB = createRedisClient(REDIS_URL)
  t.teardown(async () => {
    await deleteByPrefix(clientA, PREFIX).catch(() => undefined)
    clientA.disconnect()
    clientB.disconnect()
  })
  await Promise.all([waitReady(clientA, 3000), waitReady(clientB, 3000)])
  const storeA = new RedisSlidingWindow(clientA, { timeoutMs: RELAXED_TIMEOUT_MS })
  const storeB = new RedisSlidingWindow(clientB, RELAXED_TIMEOUT_MS)

  behaviour(t, storeA)

  t.test('a key of another type (an earlier sorted-set window during a rolling upgrade) is replaced, not failed open', async (t) => {
    const key = newKey('old-format')
    await clientA.zadd(key, 1, 'a', 2, 'b')
    const d = await storeA.hit(key, 3, 5000)
    t.same([d.allowed, d.remaining], [true, 2])
    t.equal(await clientA.type(key), 'list')
    t.equal(await clientA.llen(key), 1)
  })

  t.test('two clients (two gateway processes) share one budget under concurrent load', async (t) => {
    const key = newKey('shared')
    const decisions = await Promise.all(
      Array.from({ length: 50 }, (_v, i) => (i % 2 === 0 ? storeA : storeB).hit(key, 10, 5000))
    )
    t.equal(decisions.filter((d) => d.allowed).length, 10, 'exactly 10 allowed across both clients')
    t.equal(await clientA.llen(key), 10, 'only admitted hits are recorded, none lost')
    const pttl = await clientA.pttl(key)
    t.ok(pttl > 0 && pttl <= 5000, `key expires with the window (pttl ${pttl})`)
  })

  t.test('hits asked for in one turn go as one script call, each decided in order', async (t) => {
    const store = new RedisSlidingWindow(clientA, { timeoutMs: RELAXED_TIMEOUT_MS })
    const [k1, k2, k3] = [newKey('batch-1'), newKey('batch-2'), newKey('batch-3')]
    // k1 named four times with limit 3: the fourth sees the first three; k2 and k3 are unaffected
    const decisions = await Promise.all([
      store.hit(k1, 3, 5000), store.hit(k2, 2, 5000), store.hit(k1, 3, 5000),
      store.hit(k3, 1, 5000), store.hit(k1, 3, 5000), store.hit(k1, 3, 5000), store.hit(k3, 1, 5000),
    ])
    t.same(decisions.map((d) => [d.allowed, d.remaining]), [
      [true, 2], [true, 1], [true, 1], [true, 0], [true, 0], [false, 0], [false, 0],
    ])
    t.same([store.calls, store.hits], [1, 7], 'one call carried the seven hits')
    t.same(await Promise.all([clientA.llen(k1), clientA.llen(k2), clientA.llen(k3)]), [3, 1, 1], 'only allowed hits are recorded')
    t.ok(decisions[5]!.retryAfterSeconds >= 1, 'a refusal in a batch still says when to retry')

    const many = await Promise.all(Array.from({ length: 150 }, (_v, i) => store.hit(newKey(`batch-many-${i % 7}`), 1000, 5000)))
    t.equal(many.filter((d) => d.allowed).length, 150)
    t.same([store.calls, store.hits], [1 + 3, 7 + 150], 'a large turn is split into calls of at most 64 hits')
  })

  t.test('on a Redis Cluster client every hit is its own call (its keys may live on other slots)', async (t) => {
    const client = createRedisClient(REDIS_URL)
    t.teardown(() => { client.disconnect() })
    Object.defineProperty(client, 'isCluster', { value: true })
    await waitReady(client, 3000)
    const store = new RedisSlidingWindow(client, { timeoutMs: RELAXED_TIMEOUT_MS })
    const key = newKey('cluster')
    const decisions = await Promise.all([store.hit(key, 2, 5000), store.hit(key, 2, 5000), store.hit(key, 2, 5000)])
    t.same(decisions.map((d) => d.allowed), [true, true, false])
    t.same([store.calls, store.hits], [3, 3])
  })

  t.test('the key disappears once its hits leave the window', async (t) => {
    const key = newKey('expiry')
    await storeA.hit(key, 5, 300)
    t.equal(await clientA.exists(key), 1)
    await sleep(450)
    t.equal(await clientA.exists(key), 0)
  })

  t.test('an answer that arrived while the event loop was busy is not turned into a timeout', async (t) => {
    // Under load the loop can be busy past the deadline with the reply already in the socket; timers run
    // before I/O in a turn of the loop, so a naive deadline would fail open a request Redis did answer.
    const store = new RedisSlidingWindow(clientA, 20)
    const key = newKey('busy-loop')
    const pending = store.hit(key, 5, 1000)
    await new Promise((resolve) => setImmediate(resolve)) // the command is on the wire (after any auto-pipelining)
    const until = now() + 150
    while (now() < until) {
      // busy: Redis answers meanwhile, the reply waits in the socket buffer
    }
    t.match(await pending, { allowed: true, remaining: 4 })
  })

  t.test('after close() hits fail as unavailable and the borrowed client stays open', async (t) => {
    const store = new RedisSlidingWindow(clientA, 50)
    await store.close()
    await t.rejects(store.hit(newKey('closed'), 1, 1000), LimiterUnavailableError)
    t.equal(clientA.status, 'ready')
  })
})

t.test('MemorySlidingWindow', async (t) => {
  const store = new MemorySlidingWindow()
  t.teardown(() => store.close())

  behaviour(t, store)

  t.test('the sweep drops keys whose hits all expired', async (t) => {
    const swept = new MemorySlidingWindow({ sweepIntervalMs: 50 })
    t.teardown(() => swept.close())
    for (let i = 0; i < 20; i++) await swept.hit(`k${i}`, 3, 100)
    await swept.hit('live', 3, 5000)
    t.equal(swept.size, 21)
    await sleep(300)
    t.equal(swept.size, 1, 'only the key with a live hit remains')
  })

  t.test('after close() hits fail as unavailable', async (t) => {
    const closed = new MemorySlidingWindow()
    await closed.close()
    await t.rejects(closed.hit('x', 1, 1000), LimiterUnavailableError)
  })
})

async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port'))
      })
    })
  })
}

function startRedis (port: number): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
}

async function expectUnavailable (store: RateLimitStore, key: string): Promise<{ ms: number; err: unknown }> {
  const start = now()
  try {
    const d: RateLimitDecision = await store.hit(key, 1_000_000, 10_000)
    return { ms: now() - start, err: new Error(`unexpected decision ${JSON.stringify(d)}`) }
  } catch (err) {
    return { ms: now() - start, err }
  }
}

/** Polls until a hit succeeds; returns how long that took. */
async function waitUntilServed (store: RateLimitStore, key: string, ms: number): Promise<number> {
  const start = now()
  for (;;) {
    try {
      await store.hit(key, 1_000_000, 10_000)
      return now() - start
    } catch (err) {
      if (!(err instanceof LimiterUnavailableError)) throw err
      if (now() - start > ms) throw new Error(`not served after ${ms} ms: ${err.message}`)
      await sleep(25)
    }
  }
}

t.test('timeouts and outages on a private redis-server', async (t) => {
  const TIMEOUT_MS = 50
  // A failure comes from the limiter's deadline or the client's refusal, never from waiting for the client to give
  // up on the socket: below its socket timeout, with the deadline plus a loaded host's slack as the usual bound.
  const BOUND_MS = Math.min(within(TIMEOUT_MS), REDIS_SOCKET_TIMEOUT_MS)
  const port = await freePort()
  let server = startRedis(port)
  const errors: Error[] = []
  const client = createRedisClient(`redis://127.0.0.1:${port}`, { onError: (err) => errors.push(err) })
  const killServer = (): void => {
    server.kill('SIGKILL')
  }
  process.once('exit', killServer)
  t.teardown(() => {
    client.disconnect()
    killServer()
    process.off('exit', killServer)
  })
  const store = new RedisSlidingWindow(client, TIMEOUT_MS)
  const key = `${PREFIX}ib_mcp_rl:{outage}:default`
  t.comment(`redis-server up and served after ${(await waitUntilServed(store, key, 5000)).toFixed(0)} ms`)

  // On the private server: flushing the shared Redis's script cache could disturb other test files.
  t.test('the script survives SCRIPT FLUSH (EVALSHA falls back to EVAL)', async (t) => {
    const flushed = `${key}:noscript`
    t.equal((await store.hit(flushed, 5, 1000)).allowed, true)
    await client.script('FLUSH')
    t.match(await store.hit(flushed, 5, 1000), { allowed: true, remaining: 3 })
  })

  t.test('frozen server (SIGSTOP): hits fail within the timeout, then recover on SIGCONT', async (t) => {
    server.kill('SIGSTOP')
    const first = await expectUnavailable(store, key)
    t.type(first.err, LimiterUnavailableError)
    t.equal((first.err as LimiterUnavailableError).reason, 'timeout')
    // Not before the deadline (a frozen server cannot have refused), and by the deadline's own timer: reason
    // 'timeout', well before ioredis's socketTimeout (1 s) would have torn the connection down.
    t.ok(first.ms >= TIMEOUT_MS - 5, `first hit failed after ${first.ms.toFixed(1)} ms, not before the ${TIMEOUT_MS} ms deadline`)
    t.ok(first.ms < BOUND_MS, `first hit failed within ${BOUND_MS} ms (${first.ms.toFixed(1)} ms)`)
    // Keep going past the client's socketTimeout, which tears the dead socket down and reconnects.
    const timings: number[] = []
    const reasons = new Map<string, number>()
    const until = now() + 1500
    while (now() < until) {
      const r = await expectUnavailable(store, key)
      t.type(r.err, LimiterUnavailableError)
      if (r.err instanceof LimiterUnavailableError) reasons.set(r.err.reason, (reasons.get(r.err.reason) ?? 0) + 1)
      timings.push(r.ms)
      await sleep(50)
    }
    const worst = Math.max(...timings)
    t.ok(worst < BOUND_MS, `${timings.length} more hits failed, none waited for the client's socket timeout (slowest ${worst.toFixed(1)} ms)`)
    t.comment(`failure reasons while frozen: ${JSON.stringify(Object.fromEntries(reasons))}`)
    server.kill('SIGCONT')
    const recovered = await waitUntilServed(store, key, 5000)
    t.pass(`served again ${recovered.toFixed(0)} ms after SIGCONT`)
  })

  t.test('dead server: hits fail fast while reconnecting, succeed after a restart on the same port', async (t) => {
    const exited = new Promise((resolve) => server.once('exit', resolve))
    server.kill('SIGKILL')
    await exited
    const timings: number[] = []
    const reasons: string[] = []
    const until = now() + 1000
    while (now() < until) {
      const r = await expectUnavailable(store, key)
      t.type(r.err, LimiterUnavailableError)
      if (r.err instanceof LimiterUnavailableError) reasons.push(r.err.reason)
      timings.push(r.ms)
      await sleep(50)
    }
    const worst = Math.max(...timings)
    t.ok(worst < BOUND_MS, `${timings.length} hits failed, none waited for the client's socket timeout (slowest ${worst.toFixed(1)} ms)`)
    // "At once" as an event, not a stopwatch: a hit refused by the client (no offline queue) fails with reason
    // 'error'; one that waited for the deadline would say 'timeout'. Only a hit already on the wire when the
    // server died may time out.
    const refused = reasons.filter((r) => r === 'error').length
    t.ok(refused >= reasons.length - 1, `${refused}/${reasons.length} refused by the client without waiting for the deadline (reasons ${JSON.stringify(reasons)})`)
    server = startRedis(port)
    // The client retries every ≤ 1.1 s (retryStrategy) with a 500 ms connect timeout: two rounds of that, plus slack.
    const recovered = await waitUntilServed(store, key, within(2 * (1100 + 500)))
    t.pass(`served again ${recovered.toFixed(0)} ms after the restart`)
    t.match(await store.hit(`${key}:fresh`, 2, 1000), { allowed: true, remaining: 1 }, 'the script is loaded again on the new server')
    t.ok(errors.length > 0, `onError received ${errors.length} connection errors and nothing crashed`)
  })
})
