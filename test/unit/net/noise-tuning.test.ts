import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { coalesceWrites, noiseCrypto } from '../../../src/net/noise-tuning.js'
import type { MessageStream } from '@libp2p/interface'

// noise bundles an older uint8arraylist, whose lists the type checker does not take for ours
const bytesOf = (x: Uint8Array | { subarray: () => Uint8Array }): Buffer => Buffer.from(x instanceof Uint8Array ? x : x.subarray())

describe('noise tuning', () => {
  it('encrypts exactly as noise\'s default crypto does, small and large messages, whole or in pieces', () => {
    const k = randomBytes(32)
    const nonce = randomBytes(12)
    const ad = randomBytes(32)
    for (const size of [0, 100, 1199, 1200, 65519]) {
      const plaintext = randomBytes(size)
      const expected = bytesOf(defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k))
      assert.deepEqual(bytesOf(noiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)), expected, `${size} bytes`)
      const pieces = new Uint8ArrayList(plaintext.subarray(0, size >> 1), plaintext.subarray(size >> 1))
      assert.deepEqual(bytesOf(noiseCrypto.chaCha20Poly1305Encrypt(pieces as any, nonce, ad, k)), expected, `${size} bytes in two pieces`)
      assert.deepEqual(bytesOf(defaultCrypto.chaCha20Poly1305Decrypt(expected, nonce, ad, k)), Buffer.from(plaintext))
    }
  })

  it('corks the socket around each batch a TCP connection writes, and leaves other connections alone', () => {
    const events: string[] = []
    const conn: any = {
      socket: { cork: () => events.push('cork'), uncork: () => events.push('uncork') },
      sendData (data: Uint8ArrayList) {
        events.push(`send ${data.byteLength}`)
        return { sentBytes: data.byteLength, canSendMore: true }
      }
    }
    coalesceWrites(conn as MessageStream)
    assert.deepEqual(conn.sendData(new Uint8ArrayList(new Uint8Array(2), new Uint8Array(10))), { sentBytes: 12, canSendMore: true })
    assert.deepEqual(events, ['cork', 'send 12', 'uncork'])

    const failing: any = { socket: conn.socket, sendData () { throw new Error('reset') } }
    events.length = 0
    coalesceWrites(failing as MessageStream)
    assert.throws(() => failing.sendData(new Uint8ArrayList()), /reset/)
    assert.deepEqual(events, ['cork', 'uncork'], 'a failed send still uncorks')

    const other: any = { sendData: () => 'unchanged' }
    const before = other.sendData
    coalesceWrites(other as MessageStream)
    assert.equal(other.sendData, before)
  })
})
