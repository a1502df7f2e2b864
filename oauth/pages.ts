// The OAuth server's HTML: the consent page, the demo login and the error page; server-rendered, no script, one hashed stylesheet.
import { createHash } from 'node:crypto'
import type { ConsentProject } from '../db/oauth.js'

const STYLE = `
:root{color-scheme:light;--ink:#17202e;--muted:#4a5568;--line:#d5dbe5;--bg:#f3f5f9;--card:#fff;--brand:#1d4ed8;--brand-ink:#fff;--warn-bg:#fff7e6;--warn-line:#b45309;--warn-ink:#7a3a00;--focus:#1d4ed8;--err-bg:#fdecec;--err-ink:#8a1c1c}
*{box-sizing:border-box}
html{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
body{margin:0;min-height:100vh;display:flex;align-items:flex-start;justify-content:center;padding:40px 16px}
main{width:100%;max-width:560px;background:var(--card);border:1px solid var(--line);border-radius:14px;box-shadow:0 8px 30px rgba(23,32,46,.08);padding:32px}
.brand{display:flex;align-items:center;gap:10px;font-weight:700;letter-spacing:.02em;color:var(--muted);font-size:.9rem;text-transform:uppercase}
.brand svg{flex:none}
h1{font-size:1.45rem;line-height:1.3;margin:14px 0 6px}
.lead{margin:0 0 22px;color:var(--muted)}
.lead strong,h1 strong{color:var(--ink)}
.client{display:flex;gap:14px;align-items:center;padding:14px 16px;border:1px solid var(--line);border-radius:10px;margin:0 0 22px;background:#fafbfd}
.client .avatar{flex:none;width:40px;height:40px;border-radius:10px;background:#e6ecfb;color:var(--brand);display:flex;align-items:center;justify-content:center;font-weight:700;font-size:1.1rem}
.client dl{margin:0;display:grid;grid-template-columns:auto 1fr;gap:2px 12px;font-size:.92rem}
.client dt{color:var(--muted)}
.client dd{margin:0;overflow-wrap:anywhere}
fieldset{border:0;padding:0;margin:0 0 22px}
legend{font-weight:650;font-size:1.05rem;padding:0;margin-bottom:4px}
.hint{margin:0 0 10px;color:var(--muted);font-size:.92rem}
.choices{list-style:none;margin:0;padding:0;border:1px solid var(--line);border-radius:10px;overflow:hidden}
.choices li+li{border-top:1px solid var(--line)}
.choice{display:flex;gap:12px;align-items:center;padding:12px 14px;cursor:pointer}
.choice:hover{background:#f6f8fc}
.choice input{width:20px;height:20px;margin:0;flex:none;accent-color:var(--brand)}
.choice .name{font-weight:600}
.choice .meta{margin-left:auto;color:var(--muted);font-size:.85rem;white-space:nowrap}
ul.can{margin:0 0 0 1.1em;padding:0}
ul.can li{margin:2px 0}
.trigger{margin-top:14px;border:2px solid var(--warn-line);background:var(--warn-bg);border-radius:10px;padding:14px 16px}
.trigger .choice{padding:0;align-items:flex-start}
.trigger .choice input{margin-top:2px}
.trigger strong{color:var(--warn-ink)}
.trigger p{margin:6px 0 0 32px;color:var(--warn-ink);font-size:.92rem}
.field label{display:block;font-weight:650;margin-bottom:6px}
select{font:inherit;padding:8px 12px;border:1px solid #8792a5;border-radius:8px;background:#fff;color:var(--ink);min-width:180px}
.actions{display:flex;gap:12px;justify-content:flex-end;margin-top:26px;flex-wrap:wrap}
button{font:inherit;font-weight:650;padding:10px 22px;border-radius:8px;cursor:pointer;border:1px solid transparent}
button.allow{background:var(--brand);color:var(--brand-ink)}
button.allow:hover{background:#1e40af}
button.deny{background:#fff;color:var(--ink);border-color:#8792a5}
button.deny:hover{background:#f1f3f7}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.choice:focus-within{background:#eef3ff}
.error{background:var(--err-bg);color:var(--err-ink);border-radius:10px;padding:12px 16px;margin:0 0 18px}
footer{margin-top:24px;padding-top:16px;border-top:1px solid var(--line);color:var(--muted);font-size:.88rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;background:#f1f3f7;padding:1px 5px;border-radius:4px}
@media (max-width:480px){main{padding:22px}.choice .meta,.client .avatar{display:none}.actions button{flex:1}}
`

/** The stylesheet's hash, for `style-src` (no 'unsafe-inline'). */
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE, 'utf8').digest('base64')}'`

/** The page's Content-Security-Policy: nothing but this stylesheet, forms posted here (and redirected to the client), never framed. */
export function pageSecurityPolicy (formTargets: string[] = []): string {
  return [
    "default-src 'none'",
    `style-src ${STYLE_HASH}`,
    "img-src 'self' data:",
    `form-action 'self'${formTargets.map(t => ` ${t}`).join('')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'"
  ].join('; ')
}

export const escapeHtml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')

const LOGO = '<svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="2" y="2" width="20" height="20" rx="5" fill="#1d4ed8"/><path d="M7 8h10M7 12h10M7 16h6" stroke="#fff" stroke-width="2" stroke-linecap="round"/></svg>'

function page (title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<div class="brand">${LOGO}<span>InfraBox</span></div>
${body}
</main>
</body>
</html>
`
}

export interface ConsentView {
  clientName: string
  clientId: string
  /** registered (self-declared) or a metadata document URL (whose host vouches for it) */
  clientKind: 'registered' | 'metadata_document'
  redirectHost: string
  userName: string | null
  projects: ConsentProject[]
  triggerAsked: boolean
  /** choices of `expires_days` and the preselected one */
  expiryChoices: number[]
  defaultExpiryDays: number
  /** the authorization request and the anti-forgery value, carried back in hidden fields */
  hidden: Record<string, string>
  action: string
  /** a problem with the previous post of this form (e.g. no project chosen) */
  problem?: string
  /** projects ticked in the previous post */
  checked?: Set<string>
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

export function consentPage (v: ConsentView): string {
  const hidden = Object.entries(v.hidden).map(([name, value]) =>
    `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`).join('\n')
  const who = v.clientKind === 'metadata_document'
    ? `<dt>Published at</dt><dd>${escapeHtml(new URL(v.clientId).host)}</dd>`
    : '<dt>Identity</dt><dd>registered itself; InfraBox has not verified who runs it</dd>'
  const projects = v.projects.length === 0
    ? '<p class="hint">You are not a collaborator of any project, so there is nothing to grant.</p>'
    : `<p class="hint" id="projects-hint">Choose at least one. Nothing is selected for you; the agent sees only what you tick.</p>
<ul class="choices">
${v.projects.map((p, i) => `<li><label class="choice" for="project-${i}"><input type="checkbox" id="project-${i}" name="project" value="${escapeHtml(p.id)}" aria-describedby="projects-hint"${v.checked?.has(p.id) === true ? ' checked' : ''}><span class="name">${escapeHtml(p.name)}</span><span class="meta">${escapeHtml(p.type)} · ${escapeHtml(p.role)}</span></label></li>`).join('\n')}
</ul>`
  const trigger = v.triggerAsked
    ? `<div class="trigger">
<label class="choice" for="allow_trigger"><input type="checkbox" id="allow_trigger" name="allow_trigger" value="true" aria-describedby="trigger-note"><span><strong>Also allow it to start builds</strong></span></label>
<p id="trigger-note">The client asked to trigger builds. If you tick this, it can start CI runs, restart or retry failed jobs and abort running builds in the chosen projects on your behalf, which uses build capacity and can deploy. Leave it unticked to give read access only.</p>
</div>`
    : ''
  const options = v.expiryChoices.map(d =>
    `<option value="${d}"${d === v.defaultExpiryDays ? ' selected' : ''}>${plural(d, 'day')}</option>`).join('')
  const body = `<h1>Allow <strong>${escapeHtml(v.clientName)}</strong> to use InfraBox for you?</h1>
<p class="lead">After you decide, you go back to <strong>${escapeHtml(v.redirectHost)}</strong>.</p>
<div class="client"><div class="avatar" aria-hidden="true">${escapeHtml((v.clientName.trim()[0] ?? '?').toUpperCase())}</div>
<dl><dt>Client</dt><dd>${escapeHtml(v.clientName)}</dd>${who}<dt>Returns to</dt><dd>${escapeHtml(v.redirectHost)}</dd></dl></div>
${v.problem !== undefined ? `<p class="error" role="alert">${escapeHtml(v.problem)}</p>` : ''}
<form method="post" action="${escapeHtml(v.action)}">
${hidden}
<fieldset>
<legend>Projects it may read</legend>
${projects}
</fieldset>
<fieldset>
<legend>What it can do there</legend>
<ul class="can">
<li>read builds, jobs, test results, logs and artifacts</li>
<li>nothing else: it cannot change settings, secrets or collaborators</li>
</ul>
${trigger}
</fieldset>
<div class="field">
<label for="expires_days">Access lasts</label>
<select id="expires_days" name="expires_days" aria-describedby="expiry-hint">${options}</select>
<p class="hint" id="expiry-hint">You can end it sooner at any time: it is listed with your MCP tokens in InfraBox.</p>
</div>
<div class="actions">
<button type="submit" name="decision" value="deny" class="deny">Deny</button>
${v.projects.length > 0 ? '<button type="submit" name="decision" value="allow" class="allow">Allow access</button>' : ''}
</div>
</form>
<footer>${v.userName !== null ? `Signed in to InfraBox as <strong>${escapeHtml(v.userName)}</strong>. ` : ''}Only allow clients you started yourself.</footer>`
  return page(`Allow ${v.clientName} to use InfraBox? · InfraBox`, body)
}

export function errorPage (title: string, message: string): string {
  return page(`${title} · InfraBox`, `<h1>${escapeHtml(title)}</h1>
<p class="error" role="alert">${escapeHtml(message)}</p>
<p class="lead">Nothing was granted. Go back to the application you came from and try connecting again; if this keeps happening, its authors need to fix how it connects to InfraBox.</p>`)
}

export function demoLoginPage (action: string, returnTo: string): string {
  return page('Demo login · InfraBox', `<h1>Log in to the InfraBox demo</h1>
<p class="lead">This gateway runs in embedded demo mode, without an InfraBox installation to log in to. Continue as the demo user to see the consent page an agent's users see.</p>
<form method="post" action="${escapeHtml(action)}">
<input type="hidden" name="return_to" value="${escapeHtml(returnTo)}">
<div class="actions"><button type="submit" class="allow">Continue as the demo user</button></div>
</form>
<footer>In production the gateway sends people to InfraBox's own login (<code>INFRABOX_LOGIN_URL</code>).</footer>`)
}
