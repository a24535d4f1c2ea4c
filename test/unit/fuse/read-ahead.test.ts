import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { randomBytes } from 'node:crypto'
import { ReadAhead } from '../../../src/fuse/read-ahead.js'

const KiB = 1024

function source (bytes: Buffer): { fetch: (offset: number, length: number) => Promise<Buffer>, calls: Array<[number, number]> } {
  const calls: Array<[number, number]> = []
  return {
    calls,
    fetch: async (offset, length) => {
      calls.push([offset, length])
      await new Promise(resolve => setImmediate(resolve))
      return Buffer.from(bytes.subarray(offset, offset + length))
    }
  }
}

describe('read-ahead', () => {
  it('serves a sequential reader with one fetch per window', async () => {
    const bytes = randomBytes(1024 * KiB + 100)
    const src = source(bytes)
    const ra = new ReadAhead(src.fetch, { windowBytes: 256 * KiB })
    const out: Buffer[] = []
    for (let offset = 0; offset < bytes.length + 128 * KiB; offset += 128 * KiB) {
      out.push(Buffer.from(await ra.read(offset, 128 * KiB)))
    }
    assert.deepEqual(Buffer.concat(out), bytes)
    // 4 full windows, the short tail window, and no fetch past the end once the tail came back short.
    assert.equal(src.calls.length, 5, JSON.stringify(src.calls))
  })

  it('returns correct bytes for random and overlapping reads', async () => {
    const bytes = randomBytes(300 * KiB)
    const src = source(bytes)
    const ra = new ReadAhead(src.fetch, { windowBytes: 64 * KiB })
    let seed = 42
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
    for (let i = 0; i < 300; i++) {
      const offset = rand(bytes.length + 1000)
      const length = 1 + rand(100 * KiB)
      assert.deepEqual(await ra.read(offset, length), bytes.subarray(offset, offset + length), `read ${offset}+${length}`)
    }
  })

  it('serves concurrent reads and refetches after invalidate', async () => {
    const bytes = randomBytes(200 * KiB)
    const src = source(bytes)
    const ra = new ReadAhead(src.fetch, { windowBytes: 64 * KiB })
    const reads = await Promise.all([0, 1, 2, 3, 4].map(async i => await ra.read(i * 40 * KiB, 40 * KiB)))
    assert.deepEqual(Buffer.concat(reads), bytes)
    const before = src.calls.length
    await ra.read(0, 10)
    ra.invalidate()
    await ra.read(0, 10)
    assert.equal(src.calls.length, before + 2)
  })

  it('reports a failed fetch to the reader, and recovers', async () => {
    let fail = true
    const ra = new ReadAhead(async (offset, length) => {
      if (fail) throw new Error('backend down')
      return Buffer.alloc(Math.min(length, 1000 - offset), 7)
    }, { windowBytes: 100 })
    await assert.rejects(ra.read(0, 10), /backend down/)
    fail = false
    assert.deepEqual(await ra.read(0, 10), Buffer.alloc(10, 7))
  })
})
