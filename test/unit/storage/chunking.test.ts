import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { Uint8ArrayList } from 'uint8arraylist'
import {
  BLAKE3, KiB, MiB, MAX_CHUNK_SIZE, SHA2_256, assertChunkCid, chunkDigest, chunkSizeFor, chunkStream, cidOf, verifyChunk
} from '../../../src/storage/chunking.js'

async function collect (gen: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const c of gen) out.push(c)
  return out
}

function pattern (n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff
  return b
}

async function * pieces (bytes: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let offset = 0
  let i = 0
  while (offset < bytes.length) {
    const n = sizes[i++ % sizes.length]
    yield bytes.subarray(offset, offset + n)
    offset += n
  }
}

function concat (parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts))
}

describe('chunkSizeFor', () => {
  it('picks 64 KiB below 1 MiB, 1 MiB up to 100 MiB, 4 MiB above', () => {
    assert.equal(chunkSizeFor(0), 64 * KiB)
    assert.equal(chunkSizeFor(MiB - 1), 64 * KiB)
    assert.equal(chunkSizeFor(MiB), MiB)
    assert.equal(chunkSizeFor(100 * MiB), MiB)
    assert.equal(chunkSizeFor(100 * MiB + 1), 4 * MiB)
    assert.equal(chunkSizeFor(1024 * 1024 * MiB), 4 * MiB)
    assert.equal(MAX_CHUNK_SIZE, 4 * MiB)
  })

  it('rejects meaningless sizes', () => {
    assert.throws(() => chunkSizeFor(-1), { name: 'InvalidSizeError' })
    assert.throws(() => chunkSizeFor(1.5), { name: 'InvalidSizeError' })
    assert.throws(() => chunkSizeFor(Number.NaN), { name: 'InvalidSizeError' })
  })
})

describe('chunkStream', () => {
  it('re-cuts odd-sized input into exact chunks with a short tail', async () => {
    const data = pattern(10_000)
    const chunks = await collect(chunkStream(pieces(data, [1, 333, 4096, 7, 2000]), 1000))
    assert.equal(chunks.length, 10)
    for (const c of chunks) assert.equal(c.length, 1000)
    assert.deepEqual(concat(chunks), data)

    const odd = pattern(2500)
    const oddChunks = await collect(chunkStream(pieces(odd, [999]), 1024))
    assert.deepEqual(oddChunks.map(c => c.length), [1024, 1024, 452])
    assert.deepEqual(concat(oddChunks), odd)
  })

  it('splits a single piece larger than several chunks', async () => {
    const data = pattern(5000)
    const chunks = await collect(chunkStream([data], 1024))
    assert.deepEqual(chunks.map(c => c.length), [1024, 1024, 1024, 1024, 904])
    assert.deepEqual(concat(chunks), data)
  })

  it('yields nothing for an empty source, or for a source of empty pieces', async () => {
    assert.deepEqual(await collect(chunkStream((async function * () {})(), 1024)), [])
    assert.deepEqual(await collect(chunkStream([new Uint8Array(0), new Uint8Array(0)], 1024)), [])
  })

  it('yields chunks that own their memory, so a source reusing its buffer cannot corrupt them', async () => {
    const buf = new Uint8Array(10)
    async function * reusing (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 4; i++) {
        buf.fill(i)
        yield buf
      }
    }
    const chunks = await collect(chunkStream(reusing(), 20))
    assert.deepEqual(chunks.map(c => Array.from(c)), [
      [...Array(10).fill(0), ...Array(10).fill(1)],
      [...Array(10).fill(2), ...Array(10).fill(3)]
    ])
  })

  it('never holds more than one chunk: each chunk is yielded before the next piece is pulled', async () => {
    let pulled = 0
    async function * counting (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 100; i++) {
        pulled += 100
        yield pattern(100, i)
      }
    }
    let yielded = 0
    for await (const c of chunkStream(counting(), 250)) {
      yielded += c.length
      // when a chunk is handed over, what was read but not yet handed over is less than one source piece
      assert.ok(pulled - yielded < 100, `pulled ${pulled}, yielded ${yielded}`)
    }
    assert.equal(yielded, 10_000)
  })

  it('rejects a non-positive chunk size', async () => {
    await assert.rejects(collect(chunkStream([new Uint8Array(1)], 0)), { name: 'InvalidSizeError' })
  })
})

describe('cidOf', () => {
  it('is CIDv1 raw blake3 and stable', async () => {
    const empty = await cidOf(new Uint8Array(0))
    assert.equal(empty.version, 1)
    assert.equal(empty.code, raw.code)
    assert.equal(empty.multihash.code, BLAKE3)
    // the BLAKE3 reference vector for empty input
    assert.equal(Buffer.from(empty.multihash.digest).toString('hex'), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262')
    assert.equal(empty.toString(), 'bafkr4ifpcne3t5pzugtkaqcn5i3nzskjtpfslsnnyejlpte2spfoihzsmi')
    const bytes = new TextEncoder().encode('hello collective')
    const a = await cidOf(bytes)
    assert.ok(a.equals(await cidOf(bytes.slice())))
    assert.ok(!a.equals(await cidOf(new TextEncoder().encode('hello collectivE'))))
  })

  it('hashes a view, not its whole backing buffer', async () => {
    const big = pattern(1000)
    const view = big.subarray(100, 200)
    assert.ok((await cidOf(view)).equals(await cidOf(big.slice(100, 200))))
  })
})

describe('chunk hashes', () => {
  it('digest the pieces a stream delivered as they would the whole', () => {
    const bytes = pattern(200_000)
    const pieces = new Uint8ArrayList(bytes.subarray(0, 1), bytes.subarray(1, 65_537), bytes.subarray(65_537))
    for (const code of [BLAKE3, SHA2_256]) {
      assert.deepEqual(chunkDigest(code, pieces), chunkDigest(code, bytes))
    }
    assert.deepEqual(chunkDigest(SHA2_256, bytes), createHash('sha256').update(bytes).digest())
    assert.throws(() => chunkDigest(0x13, bytes), { name: 'UnsupportedCidError' })
  })

  it('verifyChunk checks bytes against a blake3 CID', async () => {
    const bytes = pattern(300)
    const cid = await cidOf(bytes)
    assert.equal(verifyChunk(cid, bytes), true)
    const bad = bytes.slice()
    bad[7] ^= 1
    assert.equal(verifyChunk(cid, bad), false)
  })

  it('verifyChunk still checks chunks addressed by sha2-256, as collectives stored them before blake3', async () => {
    const bytes = pattern(300)
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    assert.equal(verifyChunk(cid, bytes), true)
    assert.equal(verifyChunk(cid, new Uint8ArrayList(bytes.subarray(0, 10), bytes.subarray(10))), true)
    const bad = bytes.slice()
    bad[299] ^= 0x80
    assert.equal(verifyChunk(cid, bad), false)
  })

  it('refuses CIDs it cannot verify', async () => {
    const bytes = pattern(300)
    const cid = await cidOf(bytes)
    const refused = [
      CID.createV1(0x70, cid.multihash), // dag-pb
      CID.createV1(raw.code, await sha512.digest(bytes)), // a hash we do not verify
      CID.createV1(raw.code, createDigest(BLAKE3, new Uint8Array(64))), // blake3, but not the 32-byte output
      CID.createV1(raw.code, createDigest(SHA2_256, cid.multihash.digest.subarray(0, 16))) // truncated
    ]
    for (const c of refused) {
      assert.throws(() => assertChunkCid(c), { name: 'UnsupportedCidError' }, c.toString())
      assert.throws(() => verifyChunk(c, bytes), { name: 'UnsupportedCidError' }, c.toString())
    }
  })
})
