import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, open, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { Uint8ArrayList } from 'uint8arraylist'
import { ChunkStore } from '../../../src/storage/chunk-store.js'
import { cidOf } from '../../../src/storage/chunking.js'
import type { ChunkStoreInit } from '../../../src/storage/chunk-store.js'

function randomBytes (n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n)
  let x = seed * 2654435761 >>> 0
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    b[i] = x >>> 24
  }
  return b
}

async function chunk (n: number, seed: number): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = randomBytes(n, seed)
  return { cid: await cidOf(bytes), bytes }
}

async function findFiles (dir: string, suffix: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await findFiles(p, suffix))
    else if (e.name.endsWith(suffix)) out.push(p)
  }
  return out
}

describe('ChunkStore', () => {
  let root: string
  let n = 0
  const stores: ChunkStore[] = []

  before(async () => { root = await mkdtemp(join(tmpdir(), 'chunk-store-test-')) })
  after(async () => {
    for (const s of stores) await s.stop()
    await rm(root, { recursive: true, force: true })
  })

  async function open_ (init: Partial<ChunkStoreInit> = {}): Promise<{ store: ChunkStore, path: string }> {
    const path = init.path ?? join(root, `store-${n++}`)
    const store = new ChunkStore({ reserveBytes: 0, ...init, path })
    stores.push(store)
    await store.start()
    return { store, path }
  }

  it('stores, reads, lists and deletes a chunk', async () => {
    const { store } = await open_()
    const { cid, bytes } = await chunk(100_000, 1)
    assert.equal(await store.has(cid), false)
    await store.put(cid, bytes)
    assert.equal(await store.has(cid), true)
    assert.deepEqual(await store.get(cid), bytes)
    assert.equal(await store.sizeOf(cid), bytes.length)
    const listed = []
    for await (const c of store.cids()) listed.push(c.toString())
    assert.deepEqual(listed, [cid.toString()])
    assert.equal(await store.verify(cid), true)
    assert.equal(await store.delete(cid), true)
    assert.equal(await store.delete(cid), false)
    assert.equal(await store.has(cid), false)
    await assert.rejects(store.get(cid), { name: 'ChunkNotFoundError' })
    await assert.rejects(store.verify(cid), { name: 'ChunkNotFoundError' })
  })

  it('keeps storing, serving and verifying chunks addressed by sha2-256, as collectives stored them before blake3', async () => {
    const { store, path } = await open_()
    const bytes = randomBytes(70_000, 2)
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    await assert.rejects(store.put(cid, bytes.subarray(1)), { name: 'ChunkVerificationError' })
    await store.put(cid, new Uint8ArrayList(bytes.subarray(0, 5), bytes.subarray(5)))
    await store.stop()

    const { store: reopened } = await open_({ path })
    const listed = []
    for await (const c of reopened.cids()) listed.push(c.toString())
    assert.deepEqual(listed, [cid.toString()])
    assert.deepEqual(await reopened.get(cid), bytes)
    assert.equal(await reopened.verify(cid), true)
  })

  it('stores a chunk given in the pieces it arrived in, through a temp file that does not stay', async () => {
    const { store, path } = await open_()
    const { cid, bytes } = await chunk(300_001, 11)
    const pieces = new Uint8ArrayList(bytes.subarray(0, 1), bytes.subarray(1, 65_537), bytes.subarray(65_537))
    await store.put(cid, pieces)
    assert.deepEqual(await store.get(cid), bytes)
    assert.equal(await store.verify(cid), true)
    assert.deepEqual(await findFiles(path, '.tmp'), [])
    // pieces that do not hash to the CID are refused like one buffer that does not
    const other = await chunk(1000, 12)
    await assert.rejects(store.put(other.cid, new Uint8ArrayList(bytes.subarray(0, 500), bytes.subarray(500, 1000))), { name: 'ChunkVerificationError' })
  })

  it('writes and reads chunk files directly, each file exactly its chunk, readable by a store that does not', async () => {
    const { store, path } = await open_({ directIOBuffers: 2 })
    assert.notEqual((store as any).direct, undefined, 'the test directory takes O_DIRECT')
    // more puts at once than buffers, of sizes that are not whole blocks
    const chunks = await Promise.all([1, 4095, 4097, 65_536, 70_001, 1_048_577].map(async (size, i) => await chunk(size, 40 + i)))
    await Promise.all(chunks.map(async c => { await store.put(c.cid, c.bytes) }))
    for (const c of chunks) {
      const file: string = (store as any).fileOf(c.cid)
      assert.equal((await stat(file)).size, c.bytes.byteLength, 'no padding left in the file')
      assert.deepEqual(await store.get(c.cid), c.bytes)
    }
    await store.stop()
    const buffered = (await open_({ path, directIO: false })).store
    assert.equal((buffered as any).direct, undefined)
    for (const c of chunks) assert.deepEqual(await buffered.get(c.cid), c.bytes)
    const later = await chunk(5000, 49)
    await buffered.put(later.cid, later.bytes)
    await buffered.stop()
    const direct = (await open_({ path })).store
    assert.deepEqual(await direct.get(later.cid), later.bytes)
    assert.equal(await direct.verify(later.cid), true)
  })

  it('reports a disk that fills up during the write as StoreFullError, and leaves no partial chunk', async () => {
    const { store, path } = await open_()
    const { cid, bytes } = await chunk(70_000, 13)
    // The chunk's temp file is made a link to /dev/full, where every write fails with ENOSPC, as on a full disk.
    const file: string = (store as any).fileOf(cid)
    await mkdir(dirname(file), { recursive: true })
    await symlink('/dev/full', join(dirname(file), `.${basename(file)}.tmp`))
    await assert.rejects(store.put(cid, bytes), { name: 'StoreFullError' })
    assert.equal(await store.has(cid), false)
    assert.deepEqual(await findFiles(path, '.tmp'), [])
    assert.equal((await store.stats()).usedBytes, 0)
    // the disk has room again: the same put succeeds
    await store.put(cid, bytes)
    assert.deepEqual(await store.get(cid), bytes)
  })

  it('refuses bytes that do not hash to the CID and stores nothing', async () => {
    const { store, path } = await open_()
    const { cid, bytes } = await chunk(1000, 2)
    const tampered = bytes.slice()
    tampered[500] ^= 0xff
    await assert.rejects(store.put(cid, tampered), { name: 'ChunkVerificationError' })
    assert.equal(await store.has(cid), false)
    assert.deepEqual(await findFiles(path, ''), [])
    const stats = await store.stats()
    assert.equal(stats.usedBytes, 0)
    assert.equal(stats.chunkCount, 0)
  })

  it('refuses CIDs it cannot verify and oversized chunks', async () => {
    const { store } = await open_({ maxChunkBytes: 1000 })
    const { cid, bytes } = await chunk(100, 3)
    await assert.rejects(store.put(CID.createV1(0x70, cid.multihash), bytes), { name: 'UnsupportedCidError' })
    const big = await chunk(1001, 4)
    await assert.rejects(store.put(big.cid, big.bytes), { name: 'ChunkTooLargeError' })
  })

  it('writes again a chunk file that a lost write left short, and keeps the counts right', async () => {
    const first = await open_()
    const { cid, bytes } = await chunk(5000, 6)
    await first.store.put(cid, bytes)
    // a power cut: the file kept only part of its bytes, and the node starts again over it
    await first.store.stop()
    const [file] = await findFiles(first.path, '.data')
    await writeFile(file, bytes.subarray(0, 1000))
    const { store } = await open_({ path: first.path })
    assert.equal(await store.verify(cid), false)
    await store.put(cid, bytes)
    assert.equal(await store.verify(cid), true)
    assert.deepEqual(await store.get(cid), bytes)
    const stats = await store.stats()
    assert.equal(stats.usedBytes, 5000)
    assert.equal(stats.chunkCount, 1)
  })

  it('tells the caller once the bytes are verified, and never for bytes that do not match', async () => {
    const { store } = await open_()
    const { cid, bytes } = await chunk(3000, 7)
    let told = 0
    const tampered = bytes.slice()
    tampered[0] ^= 1
    await assert.rejects(store.put(cid, tampered, { onVerified: () => { told++ } }), { name: 'ChunkVerificationError' })
    assert.equal(told, 0)
    await store.put(cid, bytes, { onVerified: () => { told++ } })
    assert.equal(told, 1)
  })

  it('is idempotent for a chunk already stored, even under concurrent puts', async () => {
    const { store } = await open_()
    const { cid, bytes } = await chunk(5000, 5)
    await Promise.all([store.put(cid, bytes), store.put(cid, bytes), store.put(cid, bytes)])
    await store.put(cid, bytes)
    const stats = await store.stats()
    assert.equal(stats.usedBytes, 5000)
    assert.equal(stats.chunkCount, 1)
  })

  it('refuses a chunk that would exceed the capacity, storing nothing', async () => {
    const { store } = await open_({ capacityBytes: 1500 })
    const a = await chunk(1000, 6)
    const b = await chunk(1000, 7)
    await store.put(a.cid, a.bytes)
    await assert.rejects(store.put(b.cid, b.bytes), { name: 'StoreFullError' })
    assert.equal(await store.has(b.cid), false)
    // an existing chunk is still accepted: it costs nothing
    await store.put(a.cid, a.bytes)
    const stats = await store.stats()
    assert.equal(stats.capacityBytes, 1500)
    assert.equal(stats.usedBytes, 1000)
    assert.equal(stats.availableBytes, 500)
  })

  it('counts concurrent puts against the capacity before they land', async () => {
    const { store } = await open_({ capacityBytes: 2500 })
    const chunks = await Promise.all([0, 1, 2, 3].map(async i => chunk(1000, 100 + i)))
    const results = await Promise.allSettled(chunks.map(async c => store.put(c.cid, c.bytes)))
    assert.equal(results.filter(r => r.status === 'fulfilled').length, 2)
    assert.ok(results.filter(r => r.status === 'rejected').every(r => (r as PromiseRejectedResult).reason.name === 'StoreFullError'))
    assert.equal((await store.stats()).usedBytes, 2000)
  })

  it('keeps the disk reserve free, and by default reports capacity from the free disk space', async () => {
    let free = 10_000
    const { store } = await open_({ reserveBytes: 8000, diskFree: async () => free })
    const a = await chunk(1500, 8)
    const b = await chunk(1000, 9)
    await store.put(a.cid, a.bytes)
    free -= 1500
    let stats = await store.stats()
    assert.equal(stats.freeDiskBytes, 8500)
    assert.equal(stats.capacityBytes, 1500 + 500)
    assert.equal(stats.availableBytes, 500)
    await assert.rejects(store.put(b.cid, b.bytes), { name: 'StoreFullError' })
    assert.equal(await store.has(b.cid), false)
    free = 100
    stats = await store.stats()
    assert.equal(stats.capacityBytes, 1500)
    assert.equal(stats.availableBytes, 0)
  })

  it('tracks stats across put, delete and restart, and cleans up interrupted writes', async () => {
    const { store, path } = await open_()
    const chunks = await Promise.all([0, 1, 2].map(async i => chunk(1000 * (i + 1), 20 + i)))
    for (const c of chunks) await store.put(c.cid, c.bytes)
    let stats = await store.stats()
    assert.equal(stats.usedBytes, 6000)
    assert.equal(stats.chunkCount, 3)
    assert.ok(stats.freeDiskBytes > 0)

    await store.delete(chunks[1].cid)
    stats = await store.stats()
    assert.equal(stats.usedBytes, 4000)
    assert.equal(stats.chunkCount, 2)

    await store.stop()
    await assert.rejects(store.stats(), { name: 'NotStartedError' })
    // what a crash during a write leaves behind
    const shard = (await readdir(path))[0]
    const leftover = join(path, shard, '.CIQLEFTOVER.data.tmp')
    await writeFile(leftover, randomBytes(777, 1))

    const again = new ChunkStore({ path, reserveBytes: 0 })
    stores.push(again)
    await again.start()
    stats = await again.stats()
    assert.equal(stats.usedBytes, 4000)
    assert.equal(stats.chunkCount, 2)
    assert.deepEqual(await findFiles(path, '.tmp'), [])
    assert.deepEqual(await again.get(chunks[2].cid), chunks[2].bytes)
    const listed = []
    for await (const c of again.cids()) listed.push(c.toString())
    assert.deepEqual(listed.sort(), [chunks[0].cid.toString(), chunks[2].cid.toString()].sort())
  })

  it('verify() detects a chunk corrupted on disk', async () => {
    const { store, path } = await open_()
    const good = await chunk(3000, 30)
    const victim = await chunk(70_000, 31)
    await store.put(good.cid, good.bytes)
    await store.put(victim.cid, victim.bytes)
    assert.equal(await store.verify(victim.cid), true)

    const files = await findFiles(path, '.data')
    assert.equal(files.length, 2)
    // the file whose size is the victim's
    let target: string | undefined
    for (const f of files) {
      const h = await open(f, 'r')
      const size = (await h.stat()).size
      await h.close()
      if (size === victim.bytes.length) target = f
    }
    assert.ok(target != null)
    const h = await open(target, 'r+')
    const byte = Buffer.alloc(1)
    await h.read(byte, 0, 1, 12345)
    byte[0] ^= 0x01
    await h.write(byte, 0, 1, 12345)
    await h.close()

    assert.equal(await store.verify(victim.cid), false)
    assert.equal(await store.verify(good.cid), true)
  })

  it('honours an aborted signal', async () => {
    const { store } = await open_()
    const { cid, bytes } = await chunk(100, 40)
    const signal = AbortSignal.abort()
    await assert.rejects(store.put(cid, bytes, { signal }), { name: 'AbortError' })
    assert.equal(await store.has(cid), false)
    await store.put(cid, bytes)
    await assert.rejects(store.get(cid, { signal }), { name: 'AbortError' })
  })
})
