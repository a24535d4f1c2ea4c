import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Uint8ArrayList } from 'uint8arraylist'
import { PartialFile } from '../../../src/files/local-files.js'
import { AlignedBufferPool, DIRECT_IO_ALIGNMENT, DirectAppender, alignedMemory, isDirectIOReady, openDirect, readDirect, supportsDirectIO } from '../../../src/util/direct-io.js'

let dir: string

/** A pool whose buffers start one byte past a page boundary: every direct write from them is refused */
class MisalignedPool extends AlignedBufferPool {
  async acquire (signal?: AbortSignal): Promise<Uint8Array> {
    const buffer = await super.acquire(signal)
    return buffer.subarray(1)
  }
}

/** Counts the buffers lent: an append that needs none wrote straight from the caller's bytes */
class CountingPool extends AlignedBufferPool {
  lent = 0
  async acquire (signal?: AbortSignal): Promise<Uint8Array> {
    this.lent++
    return await super.acquire(signal)
  }
}

async function appendAll (path: string, pool: AlignedBufferPool, pieces: Array<Uint8Array | Uint8ArrayList>): Promise<void> {
  const handle = await openDirect(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC)
  assert.ok(handle != null, 'the test directory takes O_DIRECT')
  try {
    const appender = new DirectAppender(handle, pool)
    for (const piece of pieces) await appender.append(piece)
    await appender.finish()
  } finally {
    await handle.close()
  }
}

describe('direct I/O', () => {
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'direct-io-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('is supported where the daemons keep their data, and the probe leaves nothing behind', async () => {
    // The machines we run on pay most of a transfer's CPU for page cache copies without it: a CI machine that
    // lost it must say so here rather than only run slower.
    assert.equal(await supportsDirectIO(dir, new AlignedBufferPool({ bufferBytes: 1 })), true)
    assert.deepEqual(await readdir(dir), [])
  })

  it('appends pieces of any size and leaves the file exactly as long as what was appended', async () => {
    // 64 KiB buffers, so the larger pieces also cross buffer boundaries
    const pool = new AlignedBufferPool({ bufferBytes: 1000 })
    assert.equal(pool.bufferBytes, 64 * 1024, 'rounded up to a WebAssembly page')
    const cases: Array<{ name: string, sizes: number[] }> = [
      { name: 'nothing', sizes: [] },
      { name: 'one byte', sizes: [1] },
      { name: 'a block less one', sizes: [DIRECT_IO_ALIGNMENT - 1] },
      { name: 'a block', sizes: [DIRECT_IO_ALIGNMENT] },
      { name: 'a block and one', sizes: [DIRECT_IO_ALIGNMENT + 1] },
      { name: 'odd pieces', sizes: [3, 5000, 1, 0, 4093, 70_001, 12] },
      { name: 'larger than the buffer', sizes: [200_003, 131_072, 7] }
    ]
    for (const { name, sizes } of cases) {
      const pieces = sizes.map(n => randomBytes(n))
      const path = join(dir, name)
      await appendAll(path, pool, pieces)
      assert.deepEqual(await readFile(path), Buffer.concat(pieces), name)
    }
  })

  it('takes a chunk in the pieces it arrived in', async () => {
    const pool = new AlignedBufferPool({ bufferBytes: 64 * 1024 })
    const list = new Uint8ArrayList(randomBytes(10), randomBytes(65_536), randomBytes(4086), randomBytes(1))
    const path = join(dir, 'list')
    await appendAll(path, pool, [list, randomBytes(5)])
    const written = await readFile(path)
    assert.equal(written.byteLength, list.byteLength + 5)
    assert.deepEqual(written.subarray(0, list.byteLength), Buffer.from(list.subarray()))
  })

  it('knows which views O_DIRECT takes as they are: aligned ones of aligned memory', () => {
    const memory = alignedMemory(3 * DIRECT_IO_ALIGNMENT)
    assert.equal(memory.byteLength, 64 * 1024, 'rounded up to a WebAssembly page')
    assert.equal(isDirectIOReady(memory), true)
    assert.equal(isDirectIOReady(memory.subarray(DIRECT_IO_ALIGNMENT)), true)
    assert.equal(isDirectIOReady(memory.subarray(1)), false)
    assert.equal(isDirectIOReady(new Uint8Array(2 * DIRECT_IO_ALIGNMENT)), false, 'ordinary memory is not known to be aligned')
  })

  it('writes bytes that sit in aligned memory from where they are, and still ends the file exactly', async () => {
    const path = join(dir, 'from-place.bin')
    const pool = new CountingPool({ bufferBytes: 64 * 1024 })
    const memory = alignedMemory(64 * 1024)
    const first = randomBytes(5 * DIRECT_IO_ALIGNMENT)
    memory.set(first)
    const tailed = randomBytes(2 * DIRECT_IO_ALIGNMENT + 100)
    const other = alignedMemory(64 * 1024)
    other.set(tailed, DIRECT_IO_ALIGNMENT)
    const plain = randomBytes(3000)
    const handle = await openDirect(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC)
    assert.ok(handle != null)
    try {
      const appender = new DirectAppender(handle, pool)
      // whole blocks in place, then whole blocks and a rest in place, in a list of one piece
      await appender.append(memory.subarray(0, first.byteLength))
      await appender.append(new Uint8ArrayList(other.subarray(DIRECT_IO_ALIGNMENT, DIRECT_IO_ALIGNMENT + tailed.byteLength)))
      assert.equal(pool.lent, 0, 'no staging buffer for bytes already aligned')
      assert.equal(appender.pending.byteLength, 100)
      // with a rest pending, the next bytes go through a staging buffer
      await appender.append(plain)
      assert.equal(pool.lent, 1)
      await appender.finish()
    } finally {
      await handle.close()
    }
    assert.deepEqual(await readFile(path), Buffer.concat([first, tailed, plain]))
  })

  it('reads a file back whole, also when it is longer than one buffer or not a whole number of blocks', async () => {
    const pool = new AlignedBufferPool({ bufferBytes: 64 * 1024 })
    for (const size of [0, 1, DIRECT_IO_ALIGNMENT, 100_000, 3 * 65_536]) {
      const bytes = randomBytes(size)
      const path = join(dir, `read-${size}`)
      await writeFile(path, bytes)
      const handle = await openDirect(path, constants.O_RDONLY)
      assert.ok(handle != null)
      try {
        assert.deepEqual(Buffer.from(await readDirect(handle, size, pool)), bytes, `${size} bytes`)
      } finally {
        await handle.close()
      }
    }
  })

  it('lends at most maxBuffers at once, reuses them, and lets a waiter go when its signal aborts', async () => {
    const pool = new AlignedBufferPool({ bufferBytes: 64 * 1024, maxBuffers: 2 })
    const a = await pool.acquire()
    const b = await pool.acquire()
    let third: Uint8Array | undefined
    const waiting = pool.acquire().then(buf => { third = buf })
    await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(third, undefined, 'a third borrower waits')
    pool.release(a)
    await waiting
    assert.equal(third, a, 'and gets the buffer given back')

    const controller = new AbortController()
    const aborted = pool.acquire(controller.signal)
    controller.abort(new Error('no longer wanted'))
    await assert.rejects(aborted, /no longer wanted/)
    pool.release(b)
    assert.equal(await pool.acquire(), b, 'the aborted waiter took nothing')
  })

  it('a download falls back to buffered writes when the direct ones are refused, and still ends whole', async () => {
    // Pieces of a chunk, and pieces so small that the first direct write comes only at commit.
    for (const [size, piece] of [[300_001, 65_536], [100, 30]]) {
      const bytes = randomBytes(size)
      const dest = join(dir, `fallback-${size}`)
      const partial = await PartialFile.create(dest, { buffers: new MisalignedPool({ bufferBytes: 64 * 1024 }) })
      for (let at = 0; at < bytes.byteLength; at += piece) await partial.write(bytes.subarray(at, at + piece))
      await partial.commit()
      assert.deepEqual(await readFile(dest), bytes, `${size} bytes in pieces of ${piece}`)
    }
  })

  it('a download written directly is exact, and an aborted one leaves nothing', async () => {
    const pool = new AlignedBufferPool({ bufferBytes: 64 * 1024 })
    const bytes = randomBytes(1_000_003)
    const dest = join(dir, 'download')
    const partial = await PartialFile.create(dest, { buffers: pool })
    for (let at = 0; at < bytes.byteLength; at += 262_144) await partial.write(bytes.subarray(at, at + 262_144))
    await partial.commit()
    assert.deepEqual(await readFile(dest), bytes)
    assert.equal((await stat(dest)).size, bytes.byteLength)

    const before = (await readdir(dir)).sort()
    const aborted = await PartialFile.create(join(dir, 'aborted'), { buffers: pool })
    await aborted.write(randomBytes(10_000))
    await aborted.abort()
    assert.deepEqual((await readdir(dir)).sort(), before)
  })
})
