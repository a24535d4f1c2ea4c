import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createHash, randomBytes } from 'node:crypto'
import { writeFile, Pins } from '../../../src/transfer/writer.js'
import { readFile } from '../../../src/transfer/reader.js'
import { KeyedMutex } from '../../../src/util/keyed-mutex.js'
import { FakeNodes, OWNER, transferSetup } from '../repair/fixtures.js'
import type { CID } from 'multiformats/cid'
import type { PeerId } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

const MiB = 1024 * 1024

/** Nodes whose puts take a while, and which check that the bytes do not change under a put in flight */
class SlowNodes extends FakeNodes {
  changedUnderPut = 0
  override async put (peer: PeerId, cid: CID, bytes: Uint8Array | Uint8ArrayList): Promise<void> {
    const flat = bytes.subarray()
    const before = createHash('sha256').update(flat).digest('hex')
    await new Promise(resolve => setTimeout(resolve, 5))
    if (createHash('sha256').update(flat).digest('hex') !== before) this.changedUnderPut++
    // keep a copy: the writer's buffer is lent again once this answers, as a real node's copy is on its disk
    await super.put(peer, cid, Uint8Array.from(flat))
  }
}

describe('writeFile', () => {
  it('reads a self-cutting source into a few lent buffers, each lent again only once its chunk is stored', async () => {
    const { metadata, nodes, log } = await transferSetup()
    const fake = new SlowNodes()
    const size = 150 * MiB + 12345 // 4 MiB chunks, the last one short
    const data = randomBytes(size)
    const lent = new Set<ArrayBufferLike>()
    const entry = await writeFile({ chunks: fake, nodes: () => nodes, metadata, locks: new KeyedMutex(), pins: new Pins(), log }, {
      path: '/d/f',
      size,
      owner: OWNER,
      replication: 2,
      source: async function * (chunkSize, buffer) {
        for (let at = 0; at < size; at += chunkSize) {
          const chunk = buffer(Math.min(chunkSize, size - at))
          if (chunk.byteLength === chunkSize) lent.add(chunk.buffer)
          chunk.set(data.subarray(at, at + chunk.byteLength))
          yield chunk
        }
      }
    })
    assert.equal(entry.size, size)
    assert.equal(fake.changedUnderPut, 0, 'no buffer was lent again while a put of it was in flight')
    // two 4 MiB chunks in flight (8 MiB) and one being read ahead
    assert.ok(lent.size <= 3, `${lent.size} distinct buffers for ${Math.ceil(size / (4 * MiB))} chunks`)
    const back: Uint8Array[] = []
    for await (const bytes of readFile({ chunks: fake, nodes: () => nodes, metadata, log }, metadata.getManifest('/d/f'))) back.push(bytes.subarray())
    assert.ok(Buffer.concat(back).equals(data), 'the file reads back byte for byte')
    metadata.stop()
  })
})
