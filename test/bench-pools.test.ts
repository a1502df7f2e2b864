// Issue 16 item 6: the benchmark's variants may use the same number of PostgreSQL connections. The gateway (G) holds
// a request pool of DB_POOL_MAX plus the audit writer's and the auth lookups' pools; the bare variants (a, b, d) get
// one pool of that total (bench/pools.ts). Checked without running the benchmark.
import t from 'tap'
import { loadConfig } from '../config.js'
import { AUDIT_POOL_MAX, AUTH_POOL_MAX, gatewayConnections } from '../plugins/storage.js'
import { barePoolMax } from '../bench/pools.js'
import { buildApp } from './helpers/app.js'

t.test('bare variants: as many connections as the gateway in all, for any DB_POOL_MAX', async t => {
  for (const max of ['1', '10', '50']) {
    const config = loadConfig({ DB_POOL_MAX: max })
    const g = gatewayConnections(config)
    t.equal(g.requests + g.audit + g.auth, g.total, `DB_POOL_MAX=${max}: the total is the sum of the pools`)
    t.equal(barePoolMax(config), g.total, `DB_POOL_MAX=${max}: bare ${barePoolMax(config)} = gateway ${g.total}`)
  }
  t.equal(gatewayConnections(loadConfig({})).total, 10 + AUDIT_POOL_MAX + AUTH_POOL_MAX, 'the default: 10 + 2 + 2 = 14 each')
})

t.test('the running gateway\'s request pool is the size counted', async t => {
  const { app, config } = await buildApp(t, { redis: false, env: { DB_POOL_MAX: '7' } })
  t.equal(app.pg.pool.options.max, gatewayConnections(config).requests, 'request pool max = DB_POOL_MAX')
})
