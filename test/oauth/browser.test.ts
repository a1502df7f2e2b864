// The whole MCP authorization flow in a real browser (headless Chromium) driven by the MCP SDK client's own OAuth support: discovery → registration → login → consent → code → token → tool call; deny, refresh, reuse, revocation.
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { sql } from 'kysely'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js'
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js'
import { FIXTURE } from '../../db/seed.js'
import { freePort, MCP_PATH, startOAuthApp, tokenRequest } from '../helpers/oauth.js'
import { accessRows, CallResult, mintToken, parsed, textOf } from '../helpers/mcp.js'

const CHROMIUM = '/usr/bin/chromium'
const SCREENSHOTS = join(process.cwd(), 'test-output', 'oauth')
const { users, projects } = FIXTURE

if (!existsSync(CHROMIUM)) {
  t.fail(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`)
  process.exit(1)
}

/** The clients' loopback redirect target: records what the authorization server sent back, per client (path). */
interface Callbacks { url: (name: string) => string, next: (name: string) => Promise<URLSearchParams> }

async function callbackServer (t: Test): Promise<Callbacks> {
  const waiting = new Map<string, (q: URLSearchParams) => void>()
  const arrived = new Map<string, URLSearchParams>()
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    const name = /^\/cb\/([a-z0-9-]+)$/.exec(url.pathname)?.[1]
    if (name === undefined) { res.writeHead(404).end(); return }
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>done</title><p>You can close this window.</p>')
    const w = waiting.get(name)
    waiting.delete(name)
    if (w !== undefined) w(url.searchParams)
    else arrived.set(name, url.searchParams)
  })
  const port = await freePort()
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  return {
    url: (name) => `http://127.0.0.1:${port}/cb/${name}`,
    next: async (name) => {
      const q = arrived.get(name)
      arrived.delete(name)
      return q ?? await new Promise(resolve => waiting.set(name, resolve))
    }
  }
}

type Decision = (page: Page) => Promise<void>

/**
 * An OAuthClientProvider as an IDE or agent host implements it, in memory; `redirectToAuthorization` opens the URL in
 * the browser and lets `decide` act on the pages (login, consent), as the user would.
 */
class BrowserProvider implements OAuthClientProvider {
  info: OAuthClientInformationMixed | undefined
  stored: OAuthTokens | undefined
  verifier = ''
  redirects = 0
  /** the query the callback received for the latest authorization */
  landed: Promise<URLSearchParams> | null = null

  readonly redirectUrl: string
  private readonly slug: string

  constructor (readonly name: string, private readonly context: BrowserContext, private readonly callback: Callbacks, public decide: Decision) {
    this.slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-')
    this.redirectUrl = callback.url(this.slug)
  }

  get clientMetadata (): OAuthClientMetadata {
    return { client_name: this.name, redirect_uris: [this.redirectUrl], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }
  }

  clientInformation (): OAuthClientInformationMixed | undefined { return this.info }
  saveClientInformation (info: OAuthClientInformationMixed): void { this.info = info }
  tokens (): OAuthTokens | undefined { return this.stored }
  saveTokens (tokens: OAuthTokens): void { this.stored = tokens }
  saveCodeVerifier (v: string): void { this.verifier = v }
  codeVerifier (): string { return this.verifier }
  /** what the SDK asks after invalid_grant (tokens) or invalid_client (all): forget, then authorize again */
  invalidateCredentials (scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): void {
    if (scope === 'all' || scope === 'tokens') this.stored = undefined
    if (scope === 'all' || scope === 'client') this.info = undefined
    if (scope === 'all' || scope === 'verifier') this.verifier = ''
  }

  async redirectToAuthorization (url: URL): Promise<void> {
    this.redirects++
    const landed = this.callback.next(this.slug)
    this.landed = landed
    const page = await this.context.newPage()
    await page.goto(url.toString())
    await this.decide(page)
    // A user who walks away leaves the page open; the context closes it at the end.
    void landed.then(async () => { await page.close() })
  }
}

/** Connects; when the server asks for authorization, waits for the browser flow and connects again with the code. */
async function connect (endpoint: string, provider: BrowserProvider): Promise<Client> {
  const client = new Client({ name: 'oauth-browser-test', version: '1.0.0' })
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider }))
    return client
  } catch (err) {
    if (!(err instanceof UnauthorizedError) || provider.landed === null) throw err
  }
  const query = await provider.landed
  const code = query.get('code')
  if (code === null) throw new Error(`authorization ended without a code: ${query.toString()}`)
  const transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider })
  await transport.finishAuth(code)
  const again = new Client({ name: 'oauth-browser-test', version: '1.0.0' })
  await again.connect(transport)
  return again
}

/** The SDK's way of saying "the user has to authorize (again)": UnauthorizedError after redirectToAuthorization. */
async function refusedForAuthorization (call: Promise<unknown>): Promise<boolean> {
  try {
    await call
    return false
  } catch (err) {
    return err instanceof UnauthorizedError || (err instanceof Error && err.message === 'Unauthorized')
  }
}

const listProjects = async (client: Client): Promise<string> =>
  textOf(parsed(CallResult, await client.callTool({ name: 'list_projects', arguments: {} }), 'list_projects'))

t.test('MCP authorization in headless Chromium', async t => {
  let signSession: ((userId: string) => Promise<string>) | null = null
  const a = await startOAuthApp(t, {
    envFor: origin => ({ INFRABOX_LOGIN_URL: `${origin}/infrabox/login?next={return_to}` }),
    // Stands in for InfraBox's own login: a page with a button that sets the session cookie and goes back.
    extend: async (fastify) => {
      fastify.get('/infrabox/login', async (request, reply) => {
        const next = (request.query as { next?: string }).next ?? '/'
        return await reply.type('text/html').send(`<!doctype html><title>InfraBox login</title><form method="post" action="/infrabox/login"><input type="hidden" name="next" value="${next.replace(/"/g, '&quot;')}"><button id="login">Log in as demo</button></form>`)
      })
      fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_r, body, done) => { done(null, Object.fromEntries(new URLSearchParams(String(body)))) })
      fastify.post('/infrabox/login', async (request, reply) => {
        const next = (request.body as { next?: string }).next ?? '/'
        if (signSession === null) throw new Error('not ready')
        return await reply.header('set-cookie', `token=${await signSession(users.demo)}; Path=/; HttpOnly; SameSite=Lax`).redirect(next, 302)
      })
    }
  })
  signSession = a.session
  const callback = await callbackServer(t)
  await mkdir(SCREENSHOTS, { recursive: true })
  const profile = await mkdtemp(join(tmpdir(), 'chromium-profile-'))
  t.teardown(async () => { await rm(profile, { recursive: true, force: true }) })
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 900, height: 1100 }
  })
  t.teardown(async () => { await context.close() })
  const sessionCookie = `token=${await a.session(users.demo)}`

  /** The user logs in (when asked), ticks the github project, optionally the trigger right, and allows. */
  const allow = (opts: { trigger?: boolean, screenshot?: string } = {}): Decision => async (page) => {
    if (page.url().includes('/infrabox/login')) {
      await page.click('#login')
      await page.waitForURL(/\/oauth\/authorize/)
    }
    await page.getByRole('heading', { level: 1 }).waitFor()
    if (opts.screenshot !== undefined) await page.screenshot({ path: join(SCREENSHOTS, opts.screenshot), fullPage: true })
    await page.getByLabel('demo-github').check()
    if (opts.trigger === true) await page.getByLabel('Also allow it to start builds').check()
    await page.getByRole('button', { name: 'Allow access' }).click()
  }

  let grantClient: Client | null = null
  let provider: BrowserProvider | null = null

  await t.test('discovery → registration → login → consent → code → token → a tool call', async t => {
    provider = new BrowserProvider('Browser Agent', context, callback, allow({ trigger: true, screenshot: 'consent.png' }))
    grantClient = await connect(a.endpoint, provider)
    t.equal(provider.redirects, 1, 'one trip through the browser')
    t.match(provider.info, { client_name: 'Browser Agent' }, 'registered dynamically (RFC 7591)')
    t.match(provider.stored?.access_token, /^ib_mcp_[0-9a-f]{48}$/)
    t.equal(provider.stored?.scope, 'mcp mcp:trigger')
    const text = await listProjects(grantClient)
    t.match(text, 'demo-github')
    t.notMatch(text, 'demo-upload', 'only the consented project')
    const tools = (await grantClient.listTools()).tools.map(tool => tool.name)
    t.ok(tools.includes('list_builds'))
    const session = await a.session(users.demo)
    const entries = (await a.app.inject({ method: 'GET', url: `${MCP_PATH}/tokens/`, headers: { authorization: `Bearer ${session}` } })).json() as Array<{ name: string, token_id: string, allow_trigger: boolean, oauth_grant?: object }>
    const entry = entries.find(e => e.token_id === provider?.stored?.access_token.slice(7, 23))
    t.match(entry, { name: 'Browser Agent', allow_trigger: true, oauth_grant: { client_name: 'Browser Agent' } }, 'one entry in the dashboard list')
  })

  await t.test('the consent page works by keyboard and reads well (screenshots in test-output/oauth)', async t => {
    const page = await context.newPage()
    await context.addCookies([{ name: 'token', value: sessionCookie.slice(6), url: a.origin }])
    const info = provider?.info
    const url = new URL(`${a.endpoint}/oauth/authorize`)
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: info?.client_id ?? '', redirect_uri: callback.url('browser-agent'), code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 'kbd', scope: 'mcp mcp:trigger' })) url.searchParams.set(k, v)
    await page.goto(url.toString())
    await page.setViewportSize({ width: 390, height: 900 })
    await page.screenshot({ path: join(SCREENSHOTS, 'consent-narrow.png'), fullPage: true })
    await page.setViewportSize({ width: 900, height: 1100 })
    // Every control has a label; Tab reaches the first project box and Space ticks it.
    for (const box of await page.locator('input[type=checkbox]').all()) {
      const id = await box.getAttribute('id')
      t.equal(await page.locator(`label[for="${id ?? ''}"]`).count(), 1, `checkbox ${id ?? ''} has a label`)
    }
    t.equal(await page.locator('fieldset legend').count(), 2, 'grouped in fieldsets with legends')
    await page.keyboard.press('Tab')
    t.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'project', 'the first tab stop is a project')
    await page.keyboard.press('Space')
    t.equal(await page.locator('input[name=project]:checked').count(), 1)
    await page.locator('select#expires_days').focus()
    await page.screenshot({ path: join(SCREENSHOTS, 'consent-focus.png'), fullPage: true })
    const styles = await page.evaluate(() => {
      const allowButton = document.querySelector('button.allow')
      return allowButton === null ? null : getComputedStyle(allowButton).backgroundColor
    })
    t.equal(styles, 'rgb(29, 78, 216)', 'the stylesheet applied under the CSP (no inline-style violation)')
    await page.close()
    await context.clearCookies()
  })

  await t.test('deny: the client gets access_denied and no token', async t => {
    const denier = new BrowserProvider('Denied Agent', context, callback, async (page) => {
      if (page.url().includes('/infrabox/login')) { await page.click('#login'); await page.waitForURL(/\/oauth\/authorize/) }
      await page.getByRole('button', { name: 'Deny' }).click()
    })
    await context.clearCookies()
    const client = new Client({ name: 'deny', version: '1' })
    t.ok(await refusedForAuthorization(client.connect(new StreamableHTTPClientTransport(new URL(a.endpoint), { authProvider: denier }))), 'the client is sent to authorize')
    const query = await denier.landed
    t.equal(query?.get('error'), 'access_denied')
    t.equal(query?.get('code'), null)
    t.equal(denier.stored, undefined)
  })

  await t.test('refresh: when the hour is over the SDK client renews the token by itself; the entry stays one', async t => {
    if (grantClient === null || provider === null) throw new Error('the first flow did not finish')
    const before = provider.stored
    await sql`UPDATE mcp_token SET expires_at = (now() AT TIME ZONE 'UTC') - interval '1 second' WHERE token_id = ${before?.access_token.slice(7, 23) ?? ''}`.execute(a.database.db)
    const client = new Client({ name: 'oauth-browser-test', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL(a.endpoint), { authProvider: provider }))
    t.match(await listProjects(client), 'demo-github')
    t.equal(provider.redirects, 1, 'no new consent')
    t.not(provider.stored?.access_token, before?.access_token)
    t.not(provider.stored?.refresh_token, before?.refresh_token)
    t.equal(provider.stored?.access_token.slice(7, 23), before?.access_token.slice(7, 23), 'the same grant, the same entry')
    await client.close()

    await t.test('refresh reuse: a copied refresh token ends the grant; the client has to ask the user again', async t => {
      const stolen = await tokenRequest(a.origin, { grant_type: 'refresh_token', refresh_token: before?.refresh_token ?? '', client_id: provider?.info?.client_id ?? '' })
      t.equal(stolen.body.error, 'invalid_grant')
      if (provider === null) return
      provider.decide = async () => { /* the user walks away this time */ }
      const again = new Client({ name: 'oauth-browser-test', version: '1.0.0' })
      t.ok(await refusedForAuthorization(again.connect(new StreamableHTTPClientTransport(new URL(a.endpoint), { authProvider: provider }))),
        'the current tokens are dead too: refresh fails and the SDK starts a new authorization')
      t.equal(provider.redirects, 2)
    })
  })

  await t.test('a pasted ib_mcp_ token that is revoked leads the client into a flow that succeeds', async t => {
    const session = await a.session(users.demo)
    const pasted = await mintToken(a.app, session, { name: 'pasted', enabled_projects: { [projects.github]: null } })
    const agent = new BrowserProvider('Revived Agent', context, callback, allow())
    agent.stored = { access_token: pasted.token, token_type: 'Bearer' }
    const first = await connect(a.endpoint, agent)
    t.match(await listProjects(first), 'demo-github')
    t.equal(agent.redirects, 0, 'the pasted token works as it is')
    await first.close()
    const del = await a.app.inject({ method: 'DELETE', url: `${MCP_PATH}/tokens/${pasted.token_id}`, headers: { authorization: `Bearer ${session}` } })
    t.equal(del.statusCode, 200)
    await context.clearCookies()
    const revived = await connect(a.endpoint, agent)
    t.equal(agent.redirects, 1, 'the 401 led to discovery, registration and consent')
    t.not(agent.stored?.access_token, pasted.token)
    t.match(await listProjects(revived), 'demo-github')

    await t.test('revoking the grant in the token list ends it for the client', async t => {
      const tokenId = agent.stored?.access_token.slice(7, 23) ?? ''
      const list = (await a.app.inject({ method: 'GET', url: `${MCP_PATH}/tokens`, headers: { authorization: `Bearer ${session}` } })).json() as Array<{ token_id: string, name: string }>
      t.ok(list.some(e => e.token_id === tokenId && e.name === 'Revived Agent'))
      const revoke = await a.app.inject({ method: 'DELETE', url: `${MCP_PATH}/tokens/${tokenId}`, headers: { authorization: `Bearer ${session}` } })
      t.equal(revoke.statusCode, 200)
      agent.decide = async () => { /* not this time */ }
      t.ok(await refusedForAuthorization(revived.callTool({ name: 'list_projects', arguments: {} })), 'access and refresh are over; only a new consent helps')
      t.equal(agent.redirects, 2)
      const rows = (await accessRows(a.app, a.database.db)).filter(r => r.action === 'oauth_token' && r.token_id === tokenId)
      t.ok(rows.some(r => r.outcome === 'bad_request'), 'the refused refresh is audited')
    })
  })
})
