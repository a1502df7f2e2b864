import { startOAuthApp, registeredClientId, authorizeUrl, pkce } from '../test/helpers/oauth.js'
import { chromium } from 'playwright-core'
import { createServer } from 'node:http'
const teardowns: Array<() => unknown> = []
const t = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }
let sign: ((id: string) => Promise<string>) | null = null
const a = await startOAuthApp(t as never, {
  envFor: origin => ({ INFRABOX_LOGIN_URL: `${origin}/infrabox/login?next={return_to}` }),
  extend: async (fastify) => {
    fastify.get('/infrabox/login', async (request, reply) => {
      const next = (request.query as { next?: string }).next ?? '/'
      return await reply.type('text/html').send(`<!doctype html><title>InfraBox login</title><form method="post" action="/infrabox/login"><input type="hidden" name="next" value="${next.replace(/"/g, '&quot;')}"><button id="login">Log in as demo</button></form>`)
    })
    fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_r, body, done) => { done(null, Object.fromEntries(new URLSearchParams(String(body)))) })
    fastify.post('/infrabox/login', async (request, reply) => {
      const next = (request.body as { next?: string }).next ?? '/'
      return await reply.header('set-cookie', `token=${await sign!('00000000-0000-4000-8000-000100000001')}; Path=/; HttpOnly; SameSite=Lax`).redirect(next, 302)
    })
  }
})
sign = a.session
const cb = createServer((req, res) => { console.log('CALLBACK', req.url); res.end('ok') })
await new Promise<void>(r => cb.listen(45999, '127.0.0.1', r))
const clientId = await registeredClientId(a.origin, 'http://127.0.0.1:45999/callback')
const ctx = await chromium.launchPersistentContext('/tmp/pw-profile-' + Date.now(), { executablePath: '/usr/bin/chromium', headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu'] })
const page = await ctx.newPage()
page.on('framenavigated', f => console.log('NAV', f.url()))
page.on('console', m => console.log('CONSOLE', m.text()))
page.on('requestfailed', r => console.log('FAILED', r.url(), r.failure()?.errorText))
await page.goto(authorizeUrl(a.origin, { clientId, redirectUri: 'http://127.0.0.1:45999/callback', challenge: pkce().challenge, scope: 'mcp mcp:trigger' }))
console.log('URL', page.url())
await page.click('#login')
await page.waitForURL(/\/oauth\/authorize/)
console.log('URL2', page.url())
await page.getByLabel('demo-github').check()
await page.getByLabel('Also allow it to start builds').check()
await page.getByRole('button', { name: 'Allow access' }).click()
await new Promise(r => setTimeout(r, 3000))
console.log('URL3', page.url(), (await page.content()).slice(0, 300))
await ctx.close(); cb.close()
for (const fn of teardowns.reverse()) await fn()
process.exit(0)
