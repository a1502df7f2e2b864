// Exact sliding-window rate limiter: one atomic Lua round trip on Redis, or an in-process twin for the embedded mode.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import { TurnBatch } from './turn-batch.js'

export interface RateLimitDecision {
  allowed: boolean
  limit: number
  remaining: number
  /** Whole seconds until the oldest hit in the window leaves it (one slot frees); 0 when the window is empty. */
  resetSeconds: number
  /** Whole seconds (>= 1) a refused caller should wait; 0 when allowed. */
  retryAfterSeconds: number
}

/** A bucket as it stands, read without spending it. */
export interface BudgetReading {
  limit: number
  remaining: number
  /** Whole seconds until the oldest hit in the window leaves it (one slot frees); 0 when the window is empty. */
  resetSeconds: number
}

export interface PeekRequest { key: string, limit: number, windowMs: number }

export interface RateLimitStore {
  /** Counts the hit only when it is allowed. Rejects with LimiterUnavailableError when the store cannot decide. */
  hit(key: string, limit: number, windowMs: number): Promise<RateLimitDecision>
  /**
   * Reads buckets without changing them (no hit is counted, nothing expires early), one answer per request in
   * order. Rejects with LimiterUnavailableError when the store cannot answer.
   */
  peek(requests: readonly PeekRequest[]): Promise<BudgetReading[]>
  close(): Promise<void>
}

export type LimiterUnavailableReason = 'timeout' | 'error' | 'closed'

/** The store could not decide in time; the caller chooses fail-open or fail-closed. */
export class LimiterUnavailableError extends Error {
  override readonly name = 'LimiterUnavailableError'
  readonly reason: LimiterUnavailableReason

  constructor (message: string, reason: LimiterUnavailableReason, options?: ErrorOptions) {
    super(message, options)
    this.reason = reason
  }
}

// The window is a list of the allowed hits' Redis TIME stamps in microseconds, newest first (~1.7e15, exact in a
// double below 2^53; written with %.0f because Lua's tostring would print 1.7e+15 and lose digits). Each hit
// drops the stamps that left the window from the tail (each stamp is dropped once, so this is O(1) amortized),
// counts, and pushes its own stamp only when allowed, so refusals never extend the window. The key expires one
// window after its newest stamp, that is when every stamp has left. An allowed hit costs LINDEX, LPUSH and
// PEXPIRE, plus an RPOP and a LINDEX per stamp that left the window since the previous hit. A list costs Redis
// less than a sorted set (no skiplist, no member dictionary, no unique member to build) and holds at most
// `limit` stamps. A key of another type (a sorted-set window of an earlier version, during a rolling upgrade)
// is replaced.
// One call decides one or more hits (KEYS[i] with ARGV[2i-1] = limit, ARGV[2i] = window ms), in order, on one
// reading of TIME: each decision is as atomic and exact as if it had its own call (a key named twice sees its
// first hit), and the reply is { allowed, count, wait_us } per hit, flattened.
// TIME is non-deterministic, hence replicate_commands (a no-op since Redis 7, required on 3.2-4.x).
const HIT_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stamp = string.format('%.0f', now)
local out = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local window_ms = ARGV[2 * i]
  local window_us = tonumber(window_ms) * 1000
  local cutoff = now - window_us
  local last = redis.pcall('LINDEX', key, -1)
  if type(last) == 'table' then
    redis.call('DEL', key)
    last = false
  end
  local oldest = tonumber(last)
  while oldest and oldest <= cutoff do
    redis.call('RPOP', key)
    oldest = tonumber(redis.call('LINDEX', key, -1))
  end
  -- LPUSH answers the new length: push first and take the stamp back in the (rare) refused case
  local count = redis.call('LPUSH', key, stamp)
  local allowed = 1
  if count > limit then
    redis.call('LPOP', key)
    count = count - 1
    allowed = 0
  else
    redis.call('PEXPIRE', key, window_ms)
    if not oldest then oldest = now end
  end
  local wait_us = 0
  if oldest then wait_us = oldest + window_us - now end
  out[3 * i - 2] = allowed
  out[3 * i - 1] = count
  out[3 * i] = wait_us
end
return out
`

// The read-only twin of HIT_SCRIPT: for each key (ARGV[i] = window ms) the number of stamps still in the window
// and the µs until the oldest of them leaves it, { count, wait_us } per key, flattened. It walks the list from
// its tail (oldest) over the stamps that left the window without removing them (at most the limit of them) and
// writes nothing: a peek never spends, shortens or extends a window. A key of another type reads as empty.
const PEEK_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local window_us = tonumber(ARGV[i]) * 1000
  local cutoff = now - window_us
  local count = 0
  local wait_us = 0
  local len = redis.pcall('LLEN', key)
  if type(len) == 'number' and len > 0 then
    local at = -1
    local stamp = tonumber(redis.call('LINDEX', key, at))
    while stamp and stamp <= cutoff do
      at = at - 1
      stamp = tonumber(redis.call('LINDEX', key, at))
    end
    count = len + at + 1
    if stamp then wait_us = stamp + window_us - now end
  end
  out[2 * i - 1] = count
  out[2 * i] = wait_us
end
return out
`

const PEEK_COMMAND = 'ibMcpSlidingWindowPeek'
const HIT_COMMAND = 'ibMcpSlidingWindowHits'
/** numberOfKeys first, then the keys, then (limit, windowMs) per key */
type HitCommand = (...args: Array<string | number>) => Promise<unknown>
type ClientWithHit = RedisClient & { [HIT_COMMAND]: HitCommand, [PEEK_COMMAND]: HitCommand }

/** Hits per script call at most: bounds one call's time on Redis (each hit is a handful of list operations). */
const MAX_BATCH = 64

function assertArgs (limit: number, windowMs: number): void {
  // A bad limit is a configuration bug, not an outage: it must not be silently failed open.
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`rate limit must be a non-negative integer, got ${limit}`)
  if (!Number.isSafeInteger(windowMs) || windowMs <= 0) throw new RangeError(`rate-limit window must be a positive integer of ms, got ${windowMs}`)
}

function decide (allowed: boolean, limit: number, count: number, waitMs: number, windowMs: number): RateLimitDecision {
  const resetSeconds = count > 0 ? Math.max(1, Math.ceil(waitMs / 1000)) : 0
  // With limit 0 nothing is ever in the window, so "until a slot frees" is undefined: a full window is the honest hint.
  const retryAfterSeconds = allowed ? 0 : count > 0 ? resetSeconds : Math.max(1, Math.ceil(windowMs / 1000))
  return { allowed, limit, remaining: Math.max(0, limit - count), resetSeconds, retryAfterSeconds }
}

function reading (limit: number, count: number, waitMs: number): BudgetReading {
  const { remaining, resetSeconds } = decide(true, limit, count, waitMs, 1)
  return { limit, remaining, resetSeconds }
}

function toInt (value: unknown): number | undefined {
  // stringNumbers: true on the client turns integer replies into strings.
  const n = typeof value === 'string' ? Number(value) : value
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined
}

/** The decision of the `at`-th hit of a script reply ({ allowed, count, wait_us } per hit, flattened). */
function parseReply (raw: unknown, at: number, limit: number, windowMs: number): RateLimitDecision {
  if (Array.isArray(raw) && raw.length >= 3 * (at + 1)) {
    const allowed = toInt(raw[3 * at])
    const count = toInt(raw[3 * at + 1])
    const waitUs = toInt(raw[3 * at + 2])
    if (allowed !== undefined && count !== undefined && waitUs !== undefined) {
      return decide(allowed === 1, limit, count, waitUs / 1000, windowMs)
    }
  }
  throw new Error(`unexpected rate-limit script reply: ${JSON.stringify(raw)}`)
}

function unavailable (err: unknown): LimiterUnavailableError {
  if (err instanceof LimiterUnavailableError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new LimiterUnavailableError(`Redis rate limiter failed: ${message}`, 'error', { cause: err })
}

interface PendingHit {
  readonly key: string
  readonly limit: number
  readonly windowMs: number
  /** performance.now() after which the hit fails open (or closed): the timeout from when it was sent */
  deadline: number
  settled: boolean
  readonly resolve: (decision: RateLimitDecision) => void
  readonly fail: (err: LimiterUnavailableError) => void
}

/**
 * The hits waiting for Redis, oldest first, under ONE timer (instead of a timer and a racing promise per hit).
 * Every hit gets the same budget, so deadlines come in the order hits were sent: the timer is armed for the
 * oldest unsettled hit, fails every hit whose deadline passed, and re-arms for the next one.
 */
class Deadlines {
  #queue: PendingHit[] = []
  #head = 0
  #timer: NodeJS.Timeout | null = null

  constructor (private readonly timeoutMs: number) {}

  watch (hit: PendingHit): void {
    this.#queue.push(hit)
    if (this.#timer === null) this.#arm(this.timeoutMs)
  }

  #arm (inMs: number): void {
    this.#timer = setTimeout(() => { this.#expire() }, Math.max(1, Math.ceil(inMs)))
    this.#timer.unref()
  }

  #expire (): void {
    this.#timer = null
    const now = performance.now()
    const q = this.#queue
    while (this.#head < q.length) {
      const hit = q[this.#head] as PendingHit
      if (!hit.settled && hit.deadline > now) break
      this.#head++
      if (hit.settled) continue
      // Timers run before I/O in a turn of the event loop: when the loop was busy past the deadline (a loaded
      // process), the answer may already sit in the socket. Decide after this turn's I/O phase (setImmediate),
      // so only an answer that really is late fails open.
      setImmediate(() => {
        if (hit.settled) return
        hit.settled = true
        hit.fail(new LimiterUnavailableError(`Redis did not answer within ${this.timeoutMs} ms`, 'timeout'))
      })
    }
    // drop what was passed over, in one splice once it is worth it
    if (this.#head === q.length) {
      this.#queue = []
      this.#head = 0
    } else if (this.#head > 1024) {
      this.#queue = q.slice(this.#head)
      this.#head = 0
    }
    const next = this.#queue[this.#head]
    if (next !== undefined) this.#arm(next.deadline - now)
  }
}

export interface RedisSlidingWindowOptions {
  /** Budget for one hit, round trip included (RATE_LIMIT_REDIS_TIMEOUT_MS). Default 50. */
  timeoutMs?: number
  /** close() also closes the client. Default false: whoever created the client closes it. */
  ownsClient?: boolean
}

export class RedisSlidingWindow implements RateLimitStore {
  readonly #client: ClientWithHit
  readonly #timeoutMs: number
  readonly #ownsClient: boolean
  readonly #deadlines: Deadlines
  /** the hits of the current turn; batches of 1 on a Redis Cluster client (a call's keys must share a slot) */
  readonly #batch: TurnBatch<PendingHit>
  #closed = false
  /** script calls sent and hits they carried: hits / calls is the average batch */
  calls = 0
  hits = 0

  /** `options` may be the timeout in ms alone. */
  constructor (client: RedisClient, options: number | RedisSlidingWindowOptions = {}) {
    const opts = typeof options === 'number' ? { timeoutMs: options } : options
    const timeoutMs = opts.timeoutMs ?? 50
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`)
    this.#timeoutMs = timeoutMs
    this.#ownsClient = opts.ownsClient ?? false
    this.#deadlines = new Deadlines(timeoutMs)
    // An ioredis Cluster client routes a call by its first key; other users' keys may live on other slots.
    this.#batch = new TurnBatch((client as { isCluster?: boolean }).isCluster === true ? 1 : MAX_BATCH, batch => { this.#send(batch) })
    // defineCommand sends EVAL once per connection and EVALSHA after, re-sending EVAL on NOSCRIPT
    // (e.g. after a Redis restart), so the script body crosses the wire only when needed.
    if (!(HIT_COMMAND in client)) client.defineCommand(HIT_COMMAND, { lua: HIT_SCRIPT })
    if (!(PEEK_COMMAND in client)) client.defineCommand(PEEK_COMMAND, { lua: PEEK_SCRIPT })
    this.#client = client as ClientWithHit
  }

  /**
   * One script call for all the buckets asked about (one user's keys share a Cluster slot through their hash
   * tag), under the same deadline as a hit. Reads only; see PEEK_SCRIPT.
   */
  async peek (requests: readonly PeekRequest[]): Promise<BudgetReading[]> {
    for (const r of requests) assertArgs(r.limit, r.windowMs)
    if (this.#closed) throw new LimiterUnavailableError('rate limiter is closed', 'closed')
    if (requests.length === 0) return []
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new LimiterUnavailableError(`Redis did not answer within ${this.#timeoutMs} ms`, 'timeout')), this.#timeoutMs)
      timer.unref()
    })
    try {
      const raw = await Promise.race([
        this.#client[PEEK_COMMAND](requests.length, ...requests.map(r => r.key), ...requests.map(r => r.windowMs)),
        late
      ])
      return requests.map((r, at) => {
        const count = Array.isArray(raw) ? toInt(raw[2 * at]) : undefined
        const waitUs = Array.isArray(raw) ? toInt(raw[2 * at + 1]) : undefined
        if (count === undefined || waitUs === undefined) throw new Error(`unexpected rate-limit peek reply: ${JSON.stringify(raw)}`)
        return reading(r.limit, count, waitUs / 1000)
      })
    } catch (err) {
      throw unavailable(err)
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Hits asked for in one turn of the event loop (the requests whose bytes, or whose auth answers, arrived
   * together) go to Redis as one script call when the loop reaches its check phase (setImmediate), the way
   * the token lookups are batched: a lone hit waits for nothing but that turn. Each hit keeps its own atomic,
   * exact decision on Redis's clock, and fails open (or closed) when Redis has not answered within the
   * timeout of the call that carried it.
   */
  hit (key: string, limit: number, windowMs: number): Promise<RateLimitDecision> {
    try {
      assertArgs(limit, windowMs)
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.#closed) return Promise.reject(new LimiterUnavailableError('rate limiter is closed', 'closed'))
    return new Promise<RateLimitDecision>((resolve, reject) => {
      this.#batch.push({ key, limit, windowMs, deadline: 0, settled: false, resolve, fail: reject })
    })
  }

  #send (batch: PendingHit[]): void {
    const args: Array<string | number> = [batch.length]
    for (const h of batch) args.push(h.key)
    for (const h of batch) args.push(h.limit, h.windowMs)
    this.calls++
    this.hits += batch.length
    // The budget is Redis's: it starts when the call goes out, not while the hit waited for the end of its turn
    // (on a saturated process one turn can take longer than the budget, which would fail open a Redis that
    // answered in a millisecond). Calls go out in order, so deadlines stay in order for the one timer.
    const deadline = performance.now() + this.#timeoutMs
    for (const h of batch) {
      h.deadline = deadline
      this.#deadlines.watch(h)
    }
    // A late answer after a hit's deadline is dropped; Redis may still have recorded that hit, which matches
    // a fail-open caller that let the request through anyway.
    this.#client[HIT_COMMAND](...args).then((raw) => {
      batch.forEach((h, at) => {
        if (h.settled) return
        h.settled = true
        let decision: RateLimitDecision
        try {
          decision = parseReply(raw, at, h.limit, h.windowMs)
        } catch (err) {
          h.fail(unavailable(err))
          return
        }
        h.resolve(decision)
      })
    }, (err: unknown) => {
      const failure = unavailable(err)
      for (const h of batch) {
        if (h.settled) continue
        h.settled = true
        h.fail(failure)
      }
    })
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (!this.#ownsClient || this.#client.status === 'end') return
    let timer: NodeJS.Timeout | undefined
    try {
      // QUIT is refused at once while disconnected (no offline queue) and may hang on a frozen server;
      // disconnect() is the fallback that also stops the reconnect loop.
      await Promise.race([
        this.#client.quit(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('quit timed out')), 1000)
          timer.unref()
        }),
      ])
    } catch {
      this.#client.disconnect()
    } finally {
      clearTimeout(timer)
    }
  }
}

export interface MemorySlidingWindowOptions {
  /** How often keys whose hits all left their window are dropped. Default 60 000. */
  sweepIntervalMs?: number
}

interface MemoryBucket {
  /** Monotonic timestamps (ms) of allowed hits, oldest first. */
  hits: number[]
  windowMs: number
}

function prune (bucket: MemoryBucket, now: number): void {
  const cutoff = now - bucket.windowMs
  let expired = 0
  while (expired < bucket.hits.length && (bucket.hits[expired] ?? Infinity) <= cutoff) expired++
  if (expired > 0) bucket.hits.splice(0, expired)
}

export class MemorySlidingWindow implements RateLimitStore {
  readonly #buckets = new Map<string, MemoryBucket>()
  readonly #sweeper: NodeJS.Timeout
  #closed = false

  constructor (options: MemorySlidingWindowOptions = {}) {
    const every = options.sweepIntervalMs ?? 60_000
    if (!Number.isFinite(every) || every <= 0) throw new RangeError(`sweepIntervalMs must be positive, got ${every}`)
    this.#sweeper = setInterval(() => this.#sweep(), every)
    // The sweep is housekeeping: it must never keep the process alive on shutdown.
    this.#sweeper.unref()
  }

  /** Number of keys currently held. */
  get size (): number {
    return this.#buckets.size
  }

  hit (key: string, limit: number, windowMs: number): Promise<RateLimitDecision> {
    try {
      assertArgs(limit, windowMs)
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.#closed) return Promise.reject(new LimiterUnavailableError('rate limiter is closed', 'closed'))
    // performance.now() is monotonic: a wall-clock step (NTP) must not free or freeze a window.
    const now = performance.now()
    let bucket = this.#buckets.get(key)
    if (bucket === undefined) {
      bucket = { hits: [], windowMs }
      this.#buckets.set(key, bucket)
    }
    bucket.windowMs = windowMs
    prune(bucket, now)
    const allowed = bucket.hits.length < limit
    if (allowed) bucket.hits.push(now)
    else if (bucket.hits.length === 0) this.#buckets.delete(key)
    const oldest = bucket.hits[0]
    // Rounded to whole µs (the Redis store's resolution): (t + 60000) - t can come out as 60000.00000001
    // in floating point, which ceil() would turn into a 61 s reset on a 60 s window.
    const waitMs = oldest === undefined ? 0 : Math.round((oldest + windowMs - now) * 1000) / 1000
    return Promise.resolve(decide(allowed, limit, bucket.hits.length, waitMs, windowMs))
  }

  peek (requests: readonly PeekRequest[]): Promise<BudgetReading[]> {
    try {
      for (const r of requests) assertArgs(r.limit, r.windowMs)
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.#closed) return Promise.reject(new LimiterUnavailableError('rate limiter is closed', 'closed'))
    const now = performance.now()
    return Promise.resolve(requests.map(r => {
      // Counted, not pruned: a peek leaves the bucket exactly as it found it.
      const hits = this.#buckets.get(r.key)?.hits ?? []
      const live = hits.filter(stamp => stamp > now - r.windowMs)
      const oldest = live[0]
      const waitMs = oldest === undefined ? 0 : Math.round((oldest + r.windowMs - now) * 1000) / 1000
      return reading(r.limit, live.length, waitMs)
    }))
  }

  #sweep (): void {
    const now = performance.now()
    for (const [key, bucket] of this.#buckets) {
      prune(bucket, now)
      if (bucket.hits.length === 0) this.#buckets.delete(key)
    }
  }

  close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#sweeper)
    this.#buckets.clear()
    return Promise.resolve()
  }
}

/** What the limiter talks to: one Redis, or a Redis Cluster (REDIS_CLUSTER=true). */
export type RedisClient = Redis | Cluster

/** The client's socket timeout: a frozen server's connection is torn down after this long without a reply. */
export const REDIS_SOCKET_TIMEOUT_MS = 1000

export interface CreateRedisClientOptions extends RedisOptions {
  /** Receives every client error (connection refused, reset, timeouts); without it they are swallowed. */
  onError?: (err: Error) => void
}

/**
 * An ioredis client for a fail-open limiter: commands fail at once instead of queueing while Redis is
 * away, it reconnects forever in the background, and nothing waits for 'ready'. Overrides win.
 */
export function createRedisClient (url: string, opts: CreateRedisClientOptions = {}): Redis {
  const { onError, ...overrides } = opts
  const client = new Redis(url, {
    // ioredis defaults queue a command for up to ~73 s while Redis is down; a limiter must answer now.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // A hit that already failed open must not be replayed (and counted) after a reconnect.
    autoResendUnfulfilledCommands: false,
    connectTimeout: 500,
    // A frozen server or a black-holed link never closes the TCP socket; without this, commands pile
    // up on a dead connection until keepalive notices, minutes later.
    socketTimeout: REDIS_SOCKET_TIMEOUT_MS,
    // Jitter keeps a fleet of gateways from reconnecting in lockstep after a Redis restart.
    retryStrategy: (times: number) => Math.min(500 * times, 1000) + Math.floor(Math.random() * 100),
    // No auto-pipelining: the store already sends a turn's hits as one script call, and ioredis's per-turn
    // Pipeline costs more server CPU than it saves at these rates (measured: docs/performance.md).
    enableAutoPipelining: false,
    ...overrides,
  })
  // Without a listener ioredis reports each failed reconnect as an unhandled 'error' event.
  client.on('error', (err: Error) => {
    onError?.(err)
  })
  return client
}

/**
 * The seed nodes of a Redis Cluster from one or more comma-separated URLs (`redis://[user:password@]host:port`,
 * `rediss://` for TLS); credentials and TLS come from the first.
 */
export function clusterSeeds (urls: string): { nodes: Array<{ host: string, port: number }>, redisOptions: RedisOptions } {
  const parsed = urls.split(',').map(u => u.trim()).filter(u => u !== '').map(u => new URL(u))
  const first = parsed[0]
  if (first === undefined) throw new RangeError('no Redis Cluster node given')
  const nodes = parsed.map(u => ({ host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? 6379 : Number(u.port) }))
  const redisOptions: RedisOptions = {}
  if (first.username !== '') redisOptions.username = decodeURIComponent(first.username)
  if (first.password !== '') redisOptions.password = decodeURIComponent(first.password)
  if (first.protocol === 'rediss:') redisOptions.tls = {}
  return { nodes, redisOptions }
}

export interface CreateRedisClusterClientOptions {
  onError?: (err: Error) => void
  /** ioredis Cluster options; they win over the fail-fast defaults */
  cluster?: ClusterOptions
}

/**
 * An ioredis Cluster client for a fail-open limiter, with the fail-fast choices of createRedisClient: no offline
 * queue (a command for a node that is not connected fails at once), few redirections, background reconnects. A
 * node that dies takes only the budgets on its slots with it (they fail open); the other nodes' budgets hold as
 * long as the cluster keeps serving them (`cluster-require-full-coverage no`, see README).
 */
export function createRedisClusterClient (urls: string, opts: CreateRedisClusterClientOptions = {}): Cluster {
  const { nodes, redisOptions } = clusterSeeds(urls)
  const cluster = new Cluster(nodes, {
    enableOfflineQueue: false,
    // A dead node's slots answer MOVED back to it from the others: give up soon, the request has failed open anyway.
    maxRedirections: 3,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    slotsRefreshTimeout: 1000,
    clusterRetryStrategy: (times: number) => Math.min(500 * times, 1000) + Math.floor(Math.random() * 100),
    redisOptions: {
      ...redisOptions,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: 500,
      socketTimeout: REDIS_SOCKET_TIMEOUT_MS,
      enableAutoPipelining: false,
    },
    ...opts.cluster,
  })
  cluster.on('error', (err: Error) => {
    opts.onError?.(err)
  })
  // A node's own connection reports its errors on itself, not always through the cluster.
  cluster.on('+node', (node: Redis) => {
    node.on('error', (err: Error) => { opts.onError?.(err) })
  })
  return cluster
}
