import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { randomBytes } from 'node:crypto'
import { ReadStream, ReadStreamClosedError } from '../../../src/fuse/read-stream.js'
import { fakeSource, lcg, readBytes as read, settled } from './source.js'

const KiB = 1024

/** A stream over 1 MiB with a read at 512 KiB waiting for bytes that have not arrived */
function streamWithWaitingRead (): { bytes: Buffer, src: ReturnType<typeof fakeSource>, s: ReadStream, waiting: Promise<Buffer> } {
  const bytes = randomBytes(1024 * KiB)
  const src = fakeSource(bytes, 16 * KiB)
  const s = new ReadStream(src.open, 0)
  return { bytes, src, s, waiting: read(s, 512 * KiB, 128 * KiB) }
}

describe('read stream', () => {
  it('serves a sequential reader from one stream, across piece boundaries, short at the end and empty past it', async () => {
    const bytes = randomBytes(1000 * KiB + 123)
    const src = fakeSource(bytes, 50 * KiB)
    const s = new ReadStream(src.open, 0, { aheadBytes: 256 * KiB })
    const out: Buffer[] = []
    for (let offset = 0; offset < bytes.length; offset += 128 * KiB) out.push(await read(s, offset, 128 * KiB))
    assert.deepEqual(Buffer.concat(out), bytes)
    assert.equal((await read(s, bytes.length, 4096)).length, 0)
    assert.deepEqual(src.opens, [0])
    await settled()
    assert.equal(src.live(), 0, 'the source ran to its end')
  })

  it('starts at its offset', async () => {
    const bytes = randomBytes(300 * KiB)
    const s = new ReadStream(fakeSource(bytes, 10 * KiB).open, 77 * KiB + 5)
    assert.deepEqual(await read(s, 77 * KiB + 5, 100), bytes.subarray(77 * KiB + 5, 77 * KiB + 105))
    assert.ok(!s.serves(0), 'nothing before its start')
    s.close()
  })

  it('answers concurrent reads that arrive out of order, as the kernel sends a read-ahead', async () => {
    const bytes = randomBytes(2048 * KiB)
    const src = fakeSource(bytes, 64 * KiB)
    const s = new ReadStream(src.open, 0, { aheadBytes: 1024 * KiB, behindBytes: 1024 * KiB })
    const rand = lcg(7)
    for (let base = 0; base < bytes.length; base += 1024 * KiB) {
      const offsets = Array.from({ length: 8 }, (_, i) => base + i * 128 * KiB)
      // Shuffled: later requests of the batch can be served first.
      for (let i = offsets.length - 1; i > 0; i--) { const j = rand(i + 1); [offsets[i], offsets[j]] = [offsets[j], offsets[i]] }
      const parts = await Promise.all(offsets.map(async o => { assert.ok(s.serves(o), `serves ${o}`); return { o, b: await read(s, o, 128 * KiB) } }))
      for (const { o, b } of parts) assert.deepEqual(b, bytes.subarray(o, o + 128 * KiB), `read at ${o}`)
    }
    assert.deepEqual(src.opens, [0])
  })

  it('stops pulling when the reader stops: what it holds stays within its bounds', async () => {
    const bytes = randomBytes(4096 * KiB)
    const src = fakeSource(bytes, 32 * KiB)
    const ahead = 256 * KiB
    const behind = 64 * KiB
    const s = new ReadStream(src.open, 0, { aheadBytes: ahead, behindBytes: behind })
    for (let offset = 0; offset < 1024 * KiB; offset += 128 * KiB) {
      await read(s, offset, 128 * KiB)
      await settled()
      const furthest = offset + 128 * KiB
      assert.ok(src.pulled() <= furthest + ahead + 32 * KiB, `pulled ${src.pulled()} with the reader at ${furthest}`)
      assert.ok(s.heldBytes <= behind + ahead + 32 * KiB + 32 * KiB, `holds ${s.heldBytes}`)
    }
    // Paused reader: the source waits, nothing more arrives.
    const before = src.pulled()
    await settled()
    assert.equal(src.pulled(), before)
    assert.ok(!s.serves(0), 'bytes far behind the reader are dropped')
    assert.ok(s.serves(1024 * KiB + ahead) && !s.serves(1024 * KiB + ahead + 1), 'admits reads up to aheadBytes past the reader')
    s.close()
    await settled()
    assert.equal(src.live(), 0, 'close ends the source')
  })

  it('close fails the reads waiting with ReadStreamClosedError and stops the source', async () => {
    const { src, s, waiting } = streamWithWaitingRead()
    s.close()
    await assert.rejects(waiting, ReadStreamClosedError)
    await assert.rejects(read(s, 0, 10), ReadStreamClosedError)
    assert.ok(!s.usable)
    await settled()
    assert.equal(src.live(), 0)
  })

  it('retire lets the reads waiting finish, then closes', async () => {
    const { bytes, src, s, waiting } = streamWithWaitingRead()
    s.retire()
    assert.ok(!s.usable, 'takes no new reads')
    assert.deepEqual(await waiting, bytes.subarray(512 * KiB, 640 * KiB))
    await settled()
    assert.equal(src.live(), 0)
    assert.ok(src.pulled() < bytes.length, 'pulled only what the waiting read needed')
  })

  it('reports a failing source to the reads waiting and takes no more', async () => {
    const bytes = randomBytes(1024 * KiB)
    const src = fakeSource(bytes, 16 * KiB)
    src.failAfter(256 * KiB)
    const s = new ReadStream(src.open, 0)
    assert.deepEqual(await read(s, 0, 100), bytes.subarray(0, 100))
    await assert.rejects(read(s, 300 * KiB, 100), /backend down/)
    assert.ok(!s.usable)
  })
})
