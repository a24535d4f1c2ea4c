import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { Uint8ArrayList } from 'uint8arraylist'
import { isDirectIOReady } from '../../../src/util/direct-io.js'
import { LentBytes, releaseBytes } from '../../../src/util/lent-bytes.js'
import { ReceiveBufferPool } from '../../../src/util/receive-buffers.js'

describe('ReceiveBufferPool', () => {
  it('lends page-aligned buffers of at least the size asked for, and reuses those given back', () => {
    const pool = new ReceiveBufferPool({ bufferBytes: 100_000 })
    assert.equal(pool.bufferBytes, 128 * 1024, 'rounded up to whole 64 KiB pages')
    const a = pool.take()
    const b = pool.take()
    assert.notEqual(a, b)
    assert.equal(a.byteLength, pool.bufferBytes)
    assert.ok(isDirectIOReady(a))
    pool.give(a)
    pool.give(a)
    assert.equal(pool.kept, 1, 'a buffer given back twice is kept once')
    assert.equal(pool.take(), a)
    assert.equal(pool.kept, 0)
    pool.give(new Uint8Array(pool.bufferBytes))
    pool.give(a.subarray(1))
    assert.equal(pool.kept, 0, 'only whole buffers of its own size are taken back')
    pool.clear()
  })

  it('keeps at most maxFree buffers, and none once it has been idle', async () => {
    const pool = new ReceiveBufferPool({ bufferBytes: 64 * 1024, maxFree: 2, idleMs: 50 })
    const lent = [pool.take(), pool.take(), pool.take()]
    for (const buffer of lent) pool.give(buffer)
    assert.equal(pool.kept, 2)
    await sleep(150)
    assert.equal(pool.kept, 0, 'an idle pool gives its memory back')
    pool.clear()
  })
})

describe('LentBytes', () => {
  it('gives its buffer back once, whoever releases it how often', () => {
    let given = 0
    const bytes = new LentBytes(() => { given++ }, Uint8Array.from([1, 2]), Uint8Array.from([3]))
    assert.ok(bytes instanceof Uint8ArrayList)
    assert.deepEqual(bytes.subarray(), Uint8Array.from([1, 2, 3]))
    releaseBytes(bytes)
    bytes.release()
    assert.equal(given, 1)
    // other bytes are left alone
    releaseBytes(new Uint8ArrayList(Uint8Array.from([1])))
    releaseBytes(Uint8Array.from([1]))
    assert.equal(given, 1)
  })
})
