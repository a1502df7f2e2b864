// Environment names a build trigger may not set (SPEC §13.10): the caller is an agent that reads attacker-influenced
// text, and these names steer InfraBox itself, the dynamic loader, the runtime, git or the network path of the job.
import { GatewayError } from '../lib/errors.js'

const FORBIDDEN: Array<{ test: RegExp, why: string }> = [
  { test: /^INFRABOX_/i, why: 'INFRABOX_* steers InfraBox itself' },
  { test: /^LD_/i, why: 'LD_* steers the dynamic loader' },
  { test: /^DYLD_/i, why: 'DYLD_* steers the dynamic loader' },
  { test: /^PATH$/i, why: 'PATH decides which programs run' },
  { test: /^NODE_OPTIONS$/i, why: 'NODE_OPTIONS injects code into Node.js' },
  { test: /_PROXY$/i, why: '*_PROXY reroutes the job\'s network traffic' },
  { test: /^GIT_/i, why: 'GIT_* steers git (hooks, ssh command, config)' }
]

/** Refuses (422 MCP_ENV_FORBIDDEN) an env map naming any forbidden variable; names every offender. */
export function checkTriggerEnv (env: Record<string, string> | undefined): void {
  if (env === undefined) return
  const refused = Object.keys(env).flatMap(name => {
    const rule = FORBIDDEN.find(r => r.test.test(name))
    return rule === undefined ? [] : [`${name} (${rule.why})`]
  })
  if (refused.length > 0) {
    throw new GatewayError(422, 'MCP_ENV_FORBIDDEN', `these environment names may not be set by a trigger: ${refused.join(', ')}`)
  }
}
