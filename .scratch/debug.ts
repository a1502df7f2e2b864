import { startOAuthApp } from '../test/helpers/oauth.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
const teardowns: Array<() => unknown> = []
const t = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }
const a = await startOAuthApp(t as never)
const provider = {
  redirectUrl: 'http://127.0.0.1:9/cb',
  clientMetadata: { client_name: 'x', redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' },
  info: undefined as unknown,
  clientInformation () { return this.info },
  saveClientInformation (i: unknown) { this.info = i; console.log('registered', i) },
  tokens () { return undefined },
  saveTokens () {},
  saveCodeVerifier () {},
  codeVerifier () { return '' },
  redirectToAuthorization (u: URL) { console.log('REDIRECT TO', u.toString()) }
}
const client = new Client({ name: 'x', version: '1' })
const origFetch = globalThis.fetch
globalThis.fetch = async (input, init) => { const r = await origFetch(input, init); console.log('fetch', init?.method ?? 'GET', String(input), r.status); return r }
try { await client.connect(new StreamableHTTPClientTransport(new URL(a.endpoint), { authProvider: provider as never })) } catch (e) { console.log('ERR', e) }
for (const fn of teardowns.reverse()) await fn()
process.exit(0)
