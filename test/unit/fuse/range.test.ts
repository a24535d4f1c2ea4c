import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it, before, after } from 'node:test'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import { MetadataStore } from '../../../src/metadata/store.js'
import { cidOf } from '../../../src/storage/chunking.js'
import { readRange, clampRange } from '../../../src/transfer/range.js'
import type { FileManifest } from '../../../src/metadata/store.js'
import type { ReadComponents } from '../../../src/transfer/reader.js'
import { Uint8ArrayList } from 'uint8arraylist'

describe('ranged reads over a manifest', () => {
  const metadata = new MetadataStore({ path: ':memory:' })
  const stored = new Map<string, Uint8Array>()
  const fetched: string[] = []
  let components: ReadComponents
  let peer: string

  /** A file cut at the given chunk sizes (uneven on purpose: boundaries must come from the sizes) */
  async function file (sizes: number[]): Promise<{ bytes: Buffer, manifest: FileManifest }> {
    const parts = sizes.map(n => randomBytes(n))
    const chunks = []
    for (const part of parts) {
      const cid = (await cidOf(part)).toString()
      stored.set(cid, part)
      metadata.addChunkLocation(cid, peer, { size: part.length })
      chunks.push({ cid, size: part.length })
    }
    const size = sizes.reduce((a, b) => a + b, 0)
    return { bytes: Buffer.concat(parts), manifest: { chunkSize: Math.max(...sizes), chunks, size, version: 1 } }
  }

  async function read (manifest: FileManifest, offset: number, length: number): Promise<Buffer> {
    const out: Uint8Array[] = []
    for await (const b of readRange(components, manifest, offset, length)) out.push(b.subarray())
    return Buffer.concat(out)
  }

  before(async () => {
    metadata.start()
    peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    components = {
      metadata,
      log: logger('test:range'),
      nodes: () => [{ peerId: peer, name: 'n', capacityBytes: 1, usedBytes: 0, chunkCount: 0, addrs: [], registeredAt: 0, lastSeen: 0, state: 'alive' }],
      chunks: {
        get: async (_p, cid) => { fetched.push(cid.toString()); return new Uint8ArrayList(stored.get(cid.toString()) as Uint8Array) },
        put: async () => {},
        delete: async () => {}
      }
    }
  })
  after(() => { metadata.stop() })

  it('returns exactly the bytes of any range, across chunk boundaries', async () => {
    const { bytes, manifest } = await file([1000, 1000, 700, 1000, 3])
    for (const [offset, length] of [[0, 3703], [0, 1], [999, 2], [1000, 1000], [1500, 1300], [2699, 1004], [3702, 1], [10, 0]]) {
      assert.deepEqual(await read(manifest, offset, length), bytes.subarray(offset, offset + length), `range ${offset}+${length}`)
    }
  })

  it('fetches only the chunks covering the range', async () => {
    const { manifest } = await file([500, 500, 500, 500])
    fetched.length = 0
    await read(manifest, 600, 500)
    assert.deepEqual(fetched, [manifest.chunks[1].cid, manifest.chunks[2].cid])
  })

  it('clamps at the end of the file like read(2), and refuses nonsense', async () => {
    const { bytes, manifest } = await file([100, 50])
    assert.deepEqual(await read(manifest, 120, 1000), bytes.subarray(120))
    assert.equal((await read(manifest, 150, 10)).length, 0)
    assert.equal((await read(manifest, 4000, 10)).length, 0)
    assert.deepEqual(clampRange(150, 140, 100), { offset: 140, length: 10 })
    assert.throws(() => clampRange(150, -1, 1), { name: 'InvalidRangeError' })
    assert.throws(() => clampRange(150, 0, 1.5), { name: 'InvalidRangeError' })
  })
})
