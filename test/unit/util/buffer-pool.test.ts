import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { Uint8ArrayList } from 'uint8arraylist'
import { BufferPool } from '../../../src/util/buffer-pool.js'
import { alignedMemory, isDirectIOReady } from '../../../src/util/direct-io.js'
import { LentBytes, releaseBytes } from '../../../src/util/lent-bytes.js'

describe('BufferPool', () => {
  it('lends buffers from its allocator, page-aligned ones too, and reuses those given back', () => {
    const pool = new BufferPool(100_000, { allocate: alignedMemory })
    const a = pool.borrow()
    const b = pool.borrow()
    assert.notEqual(a, b)
    assert.equal(a.byteLength, 128 * 1024, 'aligned memory is rounded up to whole 64 KiB pages')
    assert.ok(isDirectIOReady(a))
    pool.giveBack(a)
    pool.giveBack(a)
    assert.equal(pool.kept, 1, 'a buffer given back twice is kept once')
    assert.equal(pool.borrow(), a)
    assert.equal(pool.kept, 0)
    pool.giveBack(new Uint8Array(a.byteLength))
    pool.giveBack(b.subarray(1))
    assert.equal(pool.kept, 0, 'only buffers it lent are taken back')
    assert.equal(pool.borrow(10).byteLength, 64 * 1024, 'another size is allocated, not taken from the kept ones')
    pool.clear()
  })

  it('keeps at most maxFree buffers, and none once it has been idle', async () => {
    const pool = new BufferPool(64 * 1024, { maxFree: 2, idleMs: 50 })
    const lent = [pool.borrow(), pool.borrow(), pool.borrow()]
    for (const buffer of lent) pool.giveBack(buffer)
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
