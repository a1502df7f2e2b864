// SPEC §2/§3 against a second implementation: token_id, token_hash and the CRC-32 tail as python3 computes them
// (hashlib.sha256 over the whole token, token[7:23], zlib.crc32 of the 40 hex as ASCII), compared with the gateway's
// tokenIdOf / hashToken / hasValidChecksum / mintToken, for tokens minted by both sides.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { hashToken, hasValidChecksum, isWellFormedToken, mintToken, mintTokenWithId, tokenIdOf } from '../../core/token.js'
import { pythonFacts, pythonMint } from '../helpers/infrabox.js'

t.test('tokens the gateway mints: Python agrees on id, hash and checksum', async t => {
  const minted = [...Array.from({ length: 200 }, () => mintToken()), mintTokenWithId('0123456789abcdef')]
  const py = pythonFacts(minted.map(m => m.token))
  let agree = 0
  for (const [i, m] of minted.entries()) {
    const p = py[i]
    if (p?.token_id === m.tokenId && p.token_hash === m.tokenHash && p.crc32_ok) agree++
    else t.fail(`token ${i}: gateway ${m.tokenId}/${m.tokenHash}, python ${JSON.stringify(p)}`)
  }
  t.equal(agree, minted.length, `all ${minted.length} agree`)
})

t.test('tokens InfraBox\'s Python layer mints: the gateway computes the same id and hash, and sees no checksum', async t => {
  for (let i = 0; i < 5; i++) {
    const p = pythonMint()
    t.ok(isWellFormedToken(p.token), 'ib_mcp_ + 48 hex')
    t.equal(tokenIdOf(p.token), p.token_id, 'token id')
    t.equal(hashToken(p.token), p.token_hash, 'token hash')
    t.equal(hasValidChecksum(p.token), false, 'no CRC-32 tail')
  }
})

t.test('random 48-hex bodies: hash and checksum verdicts agree either way', async t => {
  const tokens = Array.from({ length: 200 }, () => `ib_mcp_${randomBytes(24).toString('hex')}`)
  const py = pythonFacts(tokens)
  t.same(tokens.map(hashToken), py.map(p => p.token_hash), 'hashes')
  t.same(tokens.map(hasValidChecksum), py.map(p => p.crc32_ok), 'checksum verdicts')
})

t.test('a literal vector, worked out outside the product (coreutils sha256sum, python zlib.crc32)', async t => {
  // python3 -c "import zlib; print(format(zlib.crc32(b'0' * 40), '08x'))"   → 963fbb8e
  // printf %s 'ib_mcp_0000000000000000000000000000000000000000963fbb8e' | sha256sum
  const token = 'ib_mcp_0000000000000000000000000000000000000000963fbb8e'
  t.equal(hasValidChecksum(token), true, 'the gateway accepts the CRC-32 tail')
  t.equal(tokenIdOf(token), '0000000000000000')
  t.equal(hashToken(token), '20a9845ba450436f4ed416bd3a96c7a123d48905f5676019c23f324d475ea210')
  t.equal(hasValidChecksum('ib_mcp_0000000000000000000000000000000000000000963fbb8f'), false, 'one digit off: no checksum')
})
