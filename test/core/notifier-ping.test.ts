// The listening connection's ping: a connection that went silent (server→client bytes dropped, as by a middlebox that
// forgot it) still looks open; only the ping notices, and the notifier replaces it with one that hears again.
import t from 'tap'
import Fastify from 'fastify'
import pg from 'pg'
import { createTestDatabase, eventually } from '../helpers/db.js'
import { TcpProxy } from '../helpers/faults.js'
import { JOB_UPDATE, Notifier, pgListenConnector } from '../../core/notifier.js'

const PING_EVERY_MS = 200
const PING_TIMEOUT_MS = 300

const database = await createTestDatabase(t)
const target = new URL(database.url)
const proxy = await TcpProxy.start(t, { host: target.hostname, port: Number(target.port === '' ? 5432 : target.port) })
const notifier = new Notifier(pgListenConnector(proxy.urlFor(database.url), `mcp-test-ping-${process.pid}`), [JOB_UPDATE], {
  log: Fastify({ logger: false }).log, minBackoffMs: 50, pingEveryMs: PING_EVERY_MS, pingTimeoutMs: PING_TIMEOUT_MS
})
t.teardown(async () => { await notifier.close() })
const sender = new pg.Client({ connectionString: database.url })
await sender.connect()
t.teardown(async () => { await sender.end() })

const heard: string[] = []
notifier.on(JOB_UPDATE, payload => { heard.push(payload) })
const notify = async (payload: string): Promise<void> => { await sender.query('SELECT pg_notify($1, $2)', [JOB_UPDATE, payload]) }

t.test('a silent connection is found by the ping and replaced; notifications arrive again', async t => {
  t.equal(await notifier.ready(5000), true, 'listening')
  await notify('before')
  t.ok(await eventually(async () => heard.includes('before')), 'heard through the proxy')

  proxy.mode = 'swallow' // the connection stays open; nothing from the server reaches the client any more
  await notify('lost')
  t.ok(await eventually(async () => !notifier.listening, 10 * (PING_EVERY_MS + PING_TIMEOUT_MS)), 'the unanswered ping ended it')
  t.notOk(heard.includes('lost'), 'what was sent meanwhile never arrived (the reason the ping exists)')

  proxy.mode = 'open'
  t.ok(await eventually(async () => notifier.listening && notifier.connections === 2, 15_000), 'a new listening connection')
  await notify('after')
  t.ok(await eventually(async () => heard.includes('after')), 'heard again')
})
