import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { randomBytes } from 'node:crypto'
import { replicaOrder } from '../../../src/transfer/replicas.js'
import { readFile } from '../../../src/transfer/reader.js'
import { writeFile, Pins } from '../../../src/transfer/writer.js'
import { KeyedMutex } from '../../../src/util/keyed-mutex.js'
import { FakeNodes, OWNER, transferSetup } from '../repair/fixtures.js'
import type { CID } from 'multiformats/cid'
import type { PeerId } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** Nodes that answer after a tick and count, per peer, the gets served and the gets in flight */
class CountingNodes extends FakeNodes {
  readonly served = new Map<string, number>()
  private readonly inflight = new Map<string, number>()

  override async get (peer: PeerId, cid: CID): Promise<Uint8ArrayList> {
    const key = peer.toString()
    this.inflight.set(key, this.load(key) + 1)
    try {
      await new Promise(resolve => setTimeout(resolve, 1))
      const bytes = await super.get(peer, cid)
      this.served.set(key, (this.served.get(key) ?? 0) + 1)
      return bytes
    } finally {
      this.inflight.set(key, this.load(key) - 1)
    }
  }

  load (peer: string): number {
    return this.inflight.get(peer) ?? 0
  }
}

describe('replicaOrder', () => {
  const standing = (rank: Record<string, number>, load: Record<string, number>) => (p: string) => ({ rank: rank[p], load: load[p] })

  it('puts live copies first, then the least busy, then a random pick among equals', () => {
    const rank = { a: 0, b: 0, c: 1, d: 2 }
    assert.deepEqual(replicaOrder(['d', 'c', 'b', 'a'], standing(rank, { a: 3, b: 1, c: 0, d: 0 })), ['b', 'a', 'c', 'd'])
    // equals: the random draw decides, whatever order the copies were listed in
    const draws = [0.9, 0.1]
    assert.deepEqual(replicaOrder(['a', 'b'], standing(rank, { a: 0, b: 0 }), () => draws.shift() as number), ['b', 'a'])
  })
})

describe('readFile over several copies', () => {
  it('spreads the reads of a file over every node holding its chunks', async () => {
    const { metadata, nodes, log } = await transferSetup()
    const fake = new CountingNodes()
    const data = randomBytes(40 * 1024 * 1024 - 1) // 40 chunks of 1 MiB, two copies each on three nodes
    await writeFile({ chunks: fake, nodes: () => nodes, metadata, locks: new KeyedMutex(), pins: new Pins(), log }, {
      path: '/d/f', size: data.byteLength, owner: OWNER, replication: 2, source: (async function * () { yield data })()
    })
    const back: Uint8Array[] = []
    for await (const bytes of readFile({ chunks: fake, nodes: () => nodes, metadata, log }, metadata.getManifest('/d/f'))) back.push(bytes.subarray())
    assert.ok(Buffer.concat(back).equals(data), 'the file reads back byte for byte')
    // Each node holds about 27 of the 40 chunks. Read in the order the metadata lists the copies (by peer ID), one
    // node served every chunk it holds and another served none.
    const served = nodes.map(n => fake.served.get(n.peerId) ?? 0)
    assert.equal(served.reduce((a, b) => a + b), 40)
    for (const [i, n] of served.entries()) assert.ok(n >= 5, `node ${nodes[i].name} served ${n} of 40 chunks: ${served.join(', ')}`)
  })
})
