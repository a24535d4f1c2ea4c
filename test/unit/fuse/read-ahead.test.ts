import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { randomBytes } from 'node:crypto'
import { ReadAhead } from '../../../src/fuse/read-ahead.js'
import { ReadStreamClosedError } from '../../../src/fuse/read-stream.js'
import { fakeSource, lcg, readBytes as read, settled } from './source.js'

const KiB = 1024

describe('read-ahead', () => {
  it('serves a sequential reader from a single stream', async () => {
    const bytes = randomBytes(1024 * KiB + 100)
    const src = fakeSource(bytes)
    const ra = new ReadAhead(src.open, { aheadBytes: 256 * KiB })
    const out: Buffer[] = []
    for (let offset = 0; offset < bytes.length + 128 * KiB; offset += 128 * KiB) out.push(await read(ra, offset, 128 * KiB))
    assert.deepEqual(Buffer.concat(out), bytes)
    assert.deepEqual(src.opens, [0])
  })

  it('serves concurrent sequential reads (FUSE async reads) from a single stream', async () => {
    const bytes = randomBytes(4096 * KiB)
    const src = fakeSource(bytes)
    const ra = new ReadAhead(src.open, { aheadBytes: 1024 * KiB })
    for (let base = 0; base < bytes.length; base += 1024 * KiB) {
      // The batch's first request arrives first, the rest in any order, all before any is answered.
      const offsets = [0, 3, 1, 7, 2, 6, 4, 5].map(i => base + i * 128 * KiB)
      const parts = await Promise.all(offsets.map(async o => ({ o, b: await read(ra, o, 128 * KiB) })))
      for (const { o, b } of parts) assert.deepEqual(b, bytes.subarray(o, o + 128 * KiB), `read at ${o}`)
    }
    assert.deepEqual(src.opens, [0])
  })

  it('returns correct bytes for random and overlapping reads, with at most two streams open', async () => {
    const bytes = randomBytes(600 * KiB)
    const src = fakeSource(bytes, 16 * KiB)
    const ra = new ReadAhead(src.open, { aheadBytes: 64 * KiB, behindBytes: 16 * KiB })
    const rand = lcg(42)
    for (let i = 0; i < 300; i++) {
      const offset = rand(bytes.length + 1000)
      const length = 1 + rand(100 * KiB)
      assert.deepEqual(await read(ra, offset, length), bytes.subarray(offset, offset + length), `read ${offset}+${length}`)
      await settled()
      assert.ok(src.live() <= 2, `${src.live()} streams open`)
    }
  })

  it('keeps two readers at different places of one file on their own streams', async () => {
    const bytes = randomBytes(2048 * KiB)
    const src = fakeSource(bytes)
    const ra = new ReadAhead(src.open, { aheadBytes: 256 * KiB })
    for (let i = 0; i < 8; i++) {
      const [a, b] = await Promise.all([read(ra, i * 128 * KiB, 128 * KiB), read(ra, 1024 * KiB + i * 128 * KiB, 128 * KiB)])
      assert.deepEqual(a, bytes.subarray(i * 128 * KiB, (i + 1) * 128 * KiB))
      assert.deepEqual(b, bytes.subarray(1024 * KiB + i * 128 * KiB, 1024 * KiB + (i + 1) * 128 * KiB))
    }
    assert.deepEqual(src.opens, [0, 1024 * KiB])
  })

  it('invalidate fails the reads waiting with ReadStreamClosedError and drops every stream', async () => {
    const bytes = randomBytes(1024 * KiB)
    const src = fakeSource(bytes, 16 * KiB)
    const ra = new ReadAhead(src.open)
    await read(ra, 0, 10)
    const waiting = read(ra, 512 * KiB, 10)
    ra.invalidate()
    await assert.rejects(waiting, ReadStreamClosedError)
    await settled()
    assert.equal(src.live(), 0)
    assert.deepEqual(await read(ra, 0, 10), bytes.subarray(0, 10))
    assert.deepEqual(src.opens, [0, 0], 'a new stream after invalidate')
  })

  it('reports a failed stream to the reader, and recovers with a new one', async () => {
    const bytes = randomBytes(512 * KiB)
    const src = fakeSource(bytes, 16 * KiB)
    src.failAfter(0)
    const ra = new ReadAhead(src.open)
    await assert.rejects(read(ra, 0, 10), /backend down/)
    src.failAfter(undefined)
    assert.deepEqual(await read(ra, 0, 10), bytes.subarray(0, 10))
    assert.deepEqual(src.opens, [0, 0])
  })
})
