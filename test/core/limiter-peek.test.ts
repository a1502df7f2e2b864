// The limiter's read-only peek, on real Redis and in process: it reports what hit() would see and never spends.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { createRedisClient, LimiterUnavailableError, MemorySlidingWindow, RedisSlidingWindow, type RateLimitStore } from '../../core/limiter.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const PREFIX = `test:peek:${process.pid}:${randomBytes(4).toString('hex')}:`
let seq = 0
const newKey = (label: string): string => `${PREFIX}{user-${++seq}}:${label}`

function peekBehaviour (t: Test, store: RateLimitStore): void {
  t.test('an unknown bucket reads full, and reading spends nothing', async t => {
    const key = newKey('fresh')
    for (let i = 0; i < 5; i++) t.same(await store.peek([{ key, limit: 2, windowMs: 60_000 }]), [{ limit: 2, remaining: 2, resetSeconds: 0 }])
    t.match(await store.hit(key, 2, 60_000), { allowed: true, remaining: 1 }, 'the first hit after five peeks still has the whole budget')
  })

  t.test('agrees with hit() after hits, refusals included', async t => {
    const key = newKey('spent')
    await store.hit(key, 3, 60_000)
    await store.hit(key, 3, 60_000)
    const [read] = await store.peek([{ key, limit: 3, windowMs: 60_000 }])
    t.equal(read?.remaining, 1)
    t.ok((read?.resetSeconds ?? 0) >= 59 && (read?.resetSeconds ?? 0) <= 60, `reset ${read?.resetSeconds}`)
    await store.hit(key, 3, 60_000)
    t.match(await store.hit(key, 3, 60_000), { allowed: false }, 'the budget is spent')
    t.match(await store.peek([{ key, limit: 3, windowMs: 60_000 }]), [{ remaining: 0 }], 'peek says so; the refusal was not counted')
    t.match(await store.peek([{ key, limit: 5, windowMs: 60_000 }]), [{ remaining: 2 }], 'the limit is the caller\'s: the same stamps under another limit')
  })

  t.test('many buckets in one call, in order', async t => {
    const a = newKey('a')
    const b = newKey('b')
    await store.hit(a, 10, 60_000)
    const readings = await store.peek([{ key: a, limit: 10, windowMs: 60_000 }, { key: b, limit: 4, windowMs: 60_000 }, { key: a, limit: 1, windowMs: 60_000 }])
    t.match(readings, [{ limit: 10, remaining: 9 }, { limit: 4, remaining: 4, resetSeconds: 0 }, { limit: 1, remaining: 0 }])
    t.same(await store.peek([]), [])
  })

  t.test('hits that left the window are not counted, and stay until hit() drops them', async t => {
    const key = newKey('slide')
    await store.hit(key, 2, 300)
    await store.hit(key, 2, 300)
    t.match(await store.peek([{ key, limit: 2, windowMs: 300 }]), [{ remaining: 0 }])
    await sleep(400)
    t.match(await store.peek([{ key, limit: 2, windowMs: 300 }]), [{ remaining: 2, resetSeconds: 0 }], 'the window slid')
    t.match(await store.hit(key, 2, 300), { allowed: true, remaining: 1 })
  })

  t.test('bad arguments are refused like hit() refuses them', async t => {
    await t.rejects(store.peek([{ key: newKey('bad'), limit: -1, windowMs: 1000 }]), RangeError)
  })
}

t.test('RedisSlidingWindow.peek', async t => {
  const client = createRedisClient(REDIS_URL)
  const store = new RedisSlidingWindow(client, { timeoutMs: 2000 })
  t.teardown(async () => {
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await client.del(...keys)
    } while (cursor !== '0')
    await store.close()
    client.disconnect()
  })
  await new Promise<void>(resolve => { if (client.status === 'ready') resolve(); else client.once('ready', () => resolve()) })
  peekBehaviour(t, store)

  t.test('writes nothing: no key is created, no TTL moves', async t => {
    const key = newKey('ro')
    await store.peek([{ key, limit: 1, windowMs: 60_000 }])
    t.equal(await client.exists(key), 0, 'peeking an empty bucket creates no key')
    await store.hit(key, 5, 60_000)
    const ttl = await client.pttl(key)
    await sleep(50)
    await store.peek([{ key, limit: 5, windowMs: 60_000 }])
    t.ok(await client.pttl(key) < ttl, 'the expiry was not pushed back')
    t.equal(await client.llen(key), 1, 'one stamp, as before')
  })

  t.test('a key of another type reads as an empty bucket', async t => {
    const key = newKey('zset')
    await client.zadd(key, 1, 'x')
    t.match(await store.peek([{ key, limit: 3, windowMs: 60_000 }]), [{ remaining: 3 }])
  })

  t.test('a closed store refuses', async t => {
    const other = new RedisSlidingWindow(client)
    await other.close()
    await t.rejects(other.peek([{ key: newKey('closed'), limit: 1, windowMs: 1000 }]), LimiterUnavailableError)
  })
})

t.test('MemorySlidingWindow.peek', async t => {
  const store = new MemorySlidingWindow()
  t.teardown(async () => { await store.close() })
  peekBehaviour(t, store)
  t.test('peeking creates no bucket', async t => {
    const before = store.size
    await store.peek([{ key: newKey('none'), limit: 1, windowMs: 1000 }])
    t.equal(store.size, before)
  })
})
