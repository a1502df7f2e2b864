// Second implementations of what InfraBox defines, so the tests do not check the gateway against itself:
// - token ids, hashes and checksums computed by python3 (`secrets`, `hashlib`, `zlib`), as InfraBox's Python layer
//   computes them (SPEC §2/§3: token_id = the 16 hex after `ib_mcp_`, token_hash = hex SHA-256 of the whole token);
// - RSA key files made by openssl and ssh-keygen in the three formats InfraBox's loader accepts;
// - session JWTs signed by node:crypto from the private key file (RS256 over `{"user": {"id"}, "type": "user"}`, no
//   `exp`, the header PyJWT writes), never by the product's signSession.
import { execFileSync } from 'node:child_process'
import { createPrivateKey, sign } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// ------------------------------------------------------------------ tokens, by python3

/** What InfraBox's Python layer does with a token string. */
const PY_TOKEN = `
import hashlib, json, secrets, sys, zlib
def facts(token):
    body = token[len('ib_mcp_'):]
    return {'token': token, 'token_id': token[7:23], 'token_hash': hashlib.sha256(token.encode('utf-8')).hexdigest(),
            'crc32_ok': len(body) == 48 and format(zlib.crc32(body[:40].encode('ascii')), '08x') == body[40:]}
if sys.argv[1] == 'mint':
    # InfraBox 00047's Python layer: 'ib_mcp_' + secrets.token_hex(24), without a checksum
    while True:
        f = facts('ib_mcp_' + secrets.token_hex(24))
        if not f['crc32_ok']:
            break
    print(json.dumps(f))
else:
    print(json.dumps([facts(t) for t in json.loads(sys.stdin.read())]))
`

export interface PythonTokenFacts {
  token: string
  /** token[7:23] */
  token_id: string
  /** hashlib.sha256(token.encode()).hexdigest() */
  token_hash: string
  /** the last 8 hex are zlib.crc32 of the 40 before them */
  crc32_ok: boolean
}

const python = (args: string[], input = ''): string => execFileSync('python3', ['-c', PY_TOKEN, ...args], { input, encoding: 'utf8', timeout: 30_000 })

/** A token minted as InfraBox's Python layer mints them, with its id and hash as Python computes them. */
export function pythonMint (): PythonTokenFacts {
  return JSON.parse(python(['mint'])) as PythonTokenFacts
}

/** id, hash and checksum of each token as Python computes them (one python3 run for all). */
export function pythonFacts (tokens: readonly string[]): PythonTokenFacts[] {
  return JSON.parse(python(['facts'], JSON.stringify(tokens))) as PythonTokenFacts[]
}

// ------------------------------------------------------------------ keys, by openssl and ssh-keygen

export interface InfraboxKeyFiles {
  dir: string
  /** PKCS#1 `BEGIN RSA PRIVATE KEY` or PKCS#8, as openssl writes it */
  privatePath: string
  /** SPKI `BEGIN PUBLIC KEY` */
  spkiPath: string
  /** PKCS#1 `BEGIN RSA PUBLIC KEY` */
  pkcs1Path: string
  /** OpenSSH `ssh-rsa AAAA… comment` */
  sshPath: string
  spkiPem: string
  /** removes the directory */
  remove: () => void
}

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] })

/** A fresh RSA key pair made by openssl, its public half written in every format InfraBox's loader reads. */
export function makeInfraboxKeys (bits = 2048): InfraboxKeyFiles {
  const dir = mkdtempSync(join(tmpdir(), 'ib-keys-'))
  const privatePath = join(dir, 'id_rsa')
  run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${bits}`, '-out', privatePath])
  execFileSync('chmod', ['600', privatePath])
  const spkiPath = join(dir, 'id_rsa.spki.pem')
  const pkcs1Path = join(dir, 'id_rsa.pkcs1.pem')
  const sshPath = join(dir, 'id_rsa.pub')
  run('openssl', ['pkey', '-in', privatePath, '-pubout', '-out', spkiPath])
  run('openssl', ['rsa', '-in', privatePath, '-RSAPublicKey_out', '-out', pkcs1Path])
  writeFileSync(sshPath, run('ssh-keygen', ['-y', '-f', privatePath]).trim() + ' infrabox@test\n')
  return {
    dir,
    privatePath,
    spkiPath,
    pkcs1Path,
    sshPath,
    spkiPem: readFileSync(spkiPath, 'utf8'),
    remove: () => { rmSync(dir, { recursive: true, force: true }) }
  }
}

let shared: InfraboxKeyFiles | null = null
/** One key pair per test process, its directory removed when the process exits. */
export function sharedInfraboxKeys (): InfraboxKeyFiles {
  if (shared === null) {
    const keys = makeInfraboxKeys()
    process.once('exit', () => { keys.remove() })
    shared = keys
  }
  return shared
}

// ------------------------------------------------------------------ sessions, by node:crypto

const b64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url')

/** An InfraBox user session as PyJWT's jwt.encode(payload, key, algorithm='RS256') writes it, signed by node:crypto. */
export function signInfraboxSession (privateKeyPath: string, userId: string, payload: Record<string, unknown> = { user: { id: userId }, type: 'user' }): string {
  const key = createPrivateKey(readFileSync(privateKeyPath))
  const input = `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}`
  return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`
}
