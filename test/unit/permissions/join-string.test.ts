import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { formatJoinString, generateInviteCode, parseInviteCode, parseJoinString } from '../../../src/permissions/join-string.js'

const ROOT = 'ab'.repeat(32)

describe('join strings', () => {
  let peer: string
  let code: string
  before(async () => {
    peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    code = generateInviteCode()
  })

  it('round-trips one line with everything a new machine needs', () => {
    const addrs = [`/ip4/192.0.2.7/tcp/4001/p2p/${peer}`, `/dns4/office.example/tcp/4001/p2p/${peer}`]
    const text = formatJoinString({ federation: 'collective.local', rootFingerprint: ROOT.toUpperCase(), addrs, code })
    assert.match(text, /^collective-p2p:\/\/join\?fed=collective\.local&root=[0-9a-f]{64}&addr=.*&code=[a-z2-7]{26}$/)
    assert.equal(text.includes('\n'), false)
    const info = parseJoinString(`  ${text}\n`)
    assert.equal(info.federation, 'collective.local')
    assert.equal(info.rootFingerprint, ROOT)
    assert.deepEqual(info.addrs.map(String), addrs)
    assert.equal(info.peerId, peer)
    assert.equal(info.code, code)
  })

  it('generates distinct 128-bit codes and accepts them typed loosely', () => {
    assert.notEqual(generateInviteCode(), generateInviteCode())
    const grouped = code.toUpperCase().match(/.{1,5}/g)?.join('-') ?? ''
    assert.equal(parseInviteCode(grouped), code)
  })

  it('refuses malformed join strings naming the problem', () => {
    const good = formatJoinString({ federation: 'collective.local', rootFingerprint: ROOT, addrs: [`/ip4/192.0.2.7/tcp/4001/p2p/${peer}`], code })
    const cases: Array<[string, RegExp]> = [
      ['', /not a join string/],
      ['https://join?x=1', /not a join string/],
      ['collective-p2p://other?x=1', /not a join string/],
      [good.replace(/&code=[^&]+/, ''), /exactly one code=/],
      [good + '&code=' + code, /exactly one code=/],
      [good.replace(/root=[0-9a-f]+/, 'root=abc'), /64 hex digits/],
      [good.replace('fed=collective.local', 'fed=Bad_Domain'), /invalid federation/],
      [good.replace(/&addr=[^&]+/, ''), /1 to 8 coordinator addresses/],
      [good.replace(/&addr=[^&]+/, '&addr=%2Fip4%2F192.0.2.7%2Ftcp%2F4001'), /\/p2p\//],
      [good.replace(/&addr=[^&]+/, '&addr=nonsense'), /invalid coordinator address/],
      [good.replace(/code=[a-z2-7]+/, 'code=123'), /invalid invite code/],
      [good + '&x=' + 'a'.repeat(5000), /longer than/]
    ]
    for (const [text, message] of cases) assert.throws(() => parseJoinString(text), (err: any) => err.name === 'InvalidJoinStringError' && message.test(err.message), text.slice(0, 80))
  })
})
