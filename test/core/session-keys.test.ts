// SPEC §1: the session key from INFRABOX_RSA_PUBLIC_KEY_PATH / SESSION_JWT_PUBLIC_KEY in every format InfraBox's
// loader reads (SPKI PEM, PKCS#1 PEM, OpenSSH ssh-rsa), made by openssl and ssh-keygen; sessions signed by node:crypto
// (test/helpers/infrabox.ts), not by the product. Anything else: a ConfigError of one line naming the variable.
import t from 'tap'
import { createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { jwtVerify } from 'jose'
import { ConfigError } from '../../config.js'
import { loadSessionKeys } from '../../core/session.js'
import { makeInfraboxKeys, signInfraboxSession } from '../helpers/infrabox.js'

const keys = makeInfraboxKeys()
const other = makeInfraboxKeys()
t.teardown(() => { keys.remove(); other.remove() })
const userId = '0b5e3c1a-6a3f-4d0e-9c55-2f3b8f6e7a10'
const session = signInfraboxSession(keys.privatePath, userId)
const foreign = signInfraboxSession(other.privatePath, userId)

const formats = {
  'SPKI PEM (BEGIN PUBLIC KEY)': keys.spkiPath,
  'PKCS#1 PEM (BEGIN RSA PUBLIC KEY)': keys.pkcs1Path,
  'OpenSSH (ssh-rsa AAAA… comment)': keys.sshPath
}

t.test('the key files are what their names say (made by openssl and ssh-keygen)', async t => {
  t.match(readFileSync(keys.spkiPath, 'utf8'), /^-----BEGIN PUBLIC KEY-----\n/)
  t.match(readFileSync(keys.pkcs1Path, 'utf8'), /^-----BEGIN RSA PUBLIC KEY-----\n/)
  t.match(readFileSync(keys.sshPath, 'utf8'), /^ssh-rsa AAAA[0-9A-Za-z+/=]+ infrabox@test\n$/)
})

for (const [format, path] of Object.entries(formats)) {
  t.test(`INFRABOX_RSA_PUBLIC_KEY_PATH in ${format}`, async t => {
    const loaded = await loadSessionKeys({ publicKeyPath: path })
    if (loaded === null) throw new Error('no key loaded')
    const { payload } = await jwtVerify(session, loaded.publicKey, { algorithms: ['RS256'] })
    t.same(payload, { user: { id: userId }, type: 'user' }, 'a session signed by node:crypto with the private key verifies')
    await t.rejects(jwtVerify(foreign, loaded.publicKey, { algorithms: ['RS256'] }), 'a session signed by another key does not')
    // the same key, whatever the format: its JWK equals the one node:crypto reads from openssl's SPKI file
    const jwk = createPublicKey(keys.spkiPem).export({ format: 'jwk' })
    const got = KeyObject.from(loaded.publicKey).export({ format: 'jwk' })
    t.same({ n: got.n, e: got.e }, { n: jwk.n, e: jwk.e }, 'modulus and exponent as openssl wrote them')
  })

  t.test(`SESSION_JWT_PUBLIC_KEY as text in ${format}`, async t => {
    const text = readFileSync(path, 'utf8')
    const loaded = await loadSessionKeys({ publicKeyPem: text })
    if (loaded === null) throw new Error('no key loaded')
    const { payload } = await jwtVerify(session, loaded.publicKey, { algorithms: ['RS256'] })
    t.equal((payload.user as { id: string }).id, userId)
  })
}

t.test('PEM text with literal \\n (one line in an environment file) is read too', async t => {
  const loaded = await loadSessionKeys({ publicKeyPem: readFileSync(keys.pkcs1Path, 'utf8').trim().replace(/\n/g, '\\n') })
  if (loaded === null) throw new Error('no key loaded')
  await t.resolves(jwtVerify(session, loaded.publicKey, { algorithms: ['RS256'] }))
})

t.test('INFRABOX_RSA_PRIVATE_KEY_PATH as openssl writes it (PKCS#8) and as PKCS#1 (BEGIN RSA PRIVATE KEY)', async t => {
  const pkcs1 = join(keys.dir, 'id_rsa.pkcs1')
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
  writeFileSync(pkcs1, privateKey)
  for (const path of [keys.privatePath, pkcs1]) {
    const loaded = await loadSessionKeys({ publicKeyPath: keys.spkiPath, privateKeyPath: path })
    t.ok(loaded?.privateKey != null, `${path.endsWith('pkcs1') ? 'PKCS#1' : 'PKCS#8'} private key read`)
  }
})

t.test('anything else stops the start with one line naming the variable', async t => {
  const write = (name: string, text: string): string => { const p = join(keys.dir, name); writeFileSync(p, text); return p }
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  const ed = readFileSync(keys.sshPath, 'utf8').replace(/^ssh-rsa /, 'ssh-ed25519 ')
  const cases: Array<[string, { publicKeyPath?: string, publicKeyPem?: string, privateKeyPath?: string }, string]> = [
    ['a file that is not there', { publicKeyPath: join(keys.dir, 'missing.pem') }, 'INFRABOX_RSA_PUBLIC_KEY_PATH'],
    ['an empty file', { publicKeyPath: write('empty', '') }, 'INFRABOX_RSA_PUBLIC_KEY_PATH'],
    ['garbage', { publicKeyPath: write('garbage', 'hello world\n') }, 'INFRABOX_RSA_PUBLIC_KEY_PATH'],
    ['a PEM with a broken body', { publicKeyPath: write('broken', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n') }, 'INFRABOX_RSA_PUBLIC_KEY_PATH'],
    ['an EC public key', { publicKeyPath: write('ec.pem', ec.publicKey) }, 'INFRABOX_RSA_PUBLIC_KEY_PATH'],
    ['an ssh line of another type', { publicKeyPath: write('ed', ed) }, 'INFRABOX_RSA_PUBLIC_KEY_PATH'],
    ['an ssh-rsa line with a truncated body', { publicKeyPath: write('short.pub', 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB test\n') }, 'INFRABOX_RSA_PUBLIC_KEY_PATH'],
    ['the private key where the public one belongs', { publicKeyPath: keys.privatePath }, 'INFRABOX_RSA_PUBLIC_KEY_PATH'],
    ['garbage as SESSION_JWT_PUBLIC_KEY', { publicKeyPem: 'not a key' }, 'SESSION_JWT_PUBLIC_KEY'],
    ['a public key as INFRABOX_RSA_PRIVATE_KEY_PATH', { publicKeyPath: keys.spkiPath, privateKeyPath: keys.spkiPath }, 'INFRABOX_RSA_PRIVATE_KEY_PATH']
  ]
  for (const [what, src, variable] of cases) {
    const err = await loadSessionKeys(src).then(() => null, (e: unknown) => e)
    t.ok(err instanceof ConfigError, `${what}: a ConfigError (got ${String(err)})`)
    const message = err instanceof Error ? err.message : ''
    t.match(message, new RegExp(`^invalid configuration: ${variable} `), `${what}: names ${variable}`)
    t.notMatch(message, /\n/, `${what}: one line`)
    t.notMatch(message, /-----|AAAA|MII/, `${what}: does not echo key material`)
  }
})
