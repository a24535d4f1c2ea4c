import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { Repairer } from '../../../src/repair/repairer.js'
import { FakeNodes, chunk, metadataWith, node } from './fixtures.js'
import type { RepairerComponents } from '../../../src/repair/repairer.js'
import type { NodeRecord } from '../../../src/node-registry/registry.js'

function repairer (components: Omit<RepairerComponents, 'logger'>, replication: number, concurrency = 4): Repairer {
  return new Repairer({ ...components, logger: defaultLogger() }, { replication, concurrency, bandwidthBytesPerSecond: 1e9, startDelayMs: 0 })
}

function on (metadata: { chunkLocations: (cid: string) => string[] }, cid: string, nodes: NodeRecord[]): string[] {
  const at = new Set(metadata.chunkLocations(cid))
  return nodes.filter(n => at.has(n.peerId)).map(n => n.name.split('@')[0])
}

describe('Repairer', () => {
  it('copies the chunks of a dead node from the survivors to live nodes, fewest surviving copies first', async () => {
    const [dead, n2, n3, n4, n5] = await Promise.all([node('n1', 'a', 'dead'), node('n2', 'a'), node('n3', 'b'), node('n4', 'c'), node('n5', 'c')])
    const nodes = [dead, n2, n3, n4, n5]
    const fake = new FakeNodes()
    const x = await chunk('one copy left')
    const y = await chunk('two copies left')
    const metadata = metadataWith([
      { path: '/y', chunk: y, on: [n2, n3] },
      { path: '/x', chunk: x, on: [dead, n2] }
    ], fake)
    const r = repairer({ metadata, chunks: fake, nodes: () => nodes }, 3, 1)
    const pass = await r.repair()
    assert.equal(pass.underReplicated, 2)
    assert.equal(pass.repaired, 2)
    assert.equal(pass.failed, 0)
    assert.equal(fake.puts[0].cid, x.cid, 'the chunk at one live copy is repaired first')
    assert.equal(fake.puts.filter(p => p.cid === x.cid).length, 2)
    assert.equal(fake.puts.filter(p => p.cid === y.cid).length, 1)
    for (const c of [x, y]) {
      const live = metadata.chunkLocations(c.cid).filter(p => p !== dead.peerId)
      assert.equal(live.length, 3, `${c.cid} has 3 live copies: ${on(metadata, c.cid, nodes).join(', ')}`)
      for (const p of live) assert.deepEqual(fake.of(p).get(c.cid), c.bytes)
    }
    assert.ok(metadata.chunkLocations(x.cid).includes(dead.peerId), 'the dead node\'s copy stays recorded: it may come back')
    // The new copies went to members that held none: x was on member a only, so b and c first.
    assert.deepEqual(new Set(fake.puts.filter(p => p.cid === x.cid).map(p => nodes.find(n => n.peerId === p.peer)?.domain)), new Set(['b', 'c']))
    assert.equal(r.status().repairedChunks, 3)
    assert.equal((await r.repair()).underReplicated, 0, 'a second pass finds nothing to do')
  })

  it('drains a node: copies its chunks elsewhere, then deletes them from it', async () => {
    const [n1, n2, n3] = await Promise.all([node('n1', 'a'), node('n2', 'a'), node('n3', 'a')])
    const draining = await node('n4', 'a', 'alive', { draining: true })
    const nodes = [n1, n2, n3, draining]
    const fake = new FakeNodes()
    const z = await chunk('on the draining node')
    const w = await chunk('only on the draining node')
    const metadata = metadataWith([{ path: '/z', chunk: z, on: [n1, draining] }, { path: '/w', chunk: w, on: [draining] }], fake)
    const r = repairer({ metadata, chunks: fake, nodes: () => nodes }, 2)
    assert.deepEqual(r.status().draining.map(d => [d.name, d.chunksLeft, d.done]), [[draining.name, 2, false]])
    const pass = await r.repair()
    assert.equal(pass.repaired, 2)
    assert.equal(pass.drained, 2)
    assert.equal(fake.of(draining.peerId).size, 0, 'the drained node holds nothing')
    assert.equal(metadata.chunkCountOnPeer(draining.peerId), 0)
    for (const c of [z, w]) {
      const at = metadata.chunkLocations(c.cid)
      assert.equal(at.length, 2)
      for (const p of at) assert.deepEqual(fake.of(p).get(c.cid), c.bytes)
    }
    assert.deepEqual(r.status().draining.map(d => [d.chunksLeft, d.done]), [[0, true]])
  })

  it('deletes and forgets a replica that serves wrong bytes, and copies from another', async () => {
    // The healthy replica is on a suspect node, so the corrupt one (alive) is read first.
    const [bad, good, n3, n4] = await Promise.all([node('n1', 'a'), node('n2', 'b', 'suspect'), node('n3', 'c'), node('n4', 'd')])
    const fake = new FakeNodes()
    const c = await chunk('rotting')
    const metadata = metadataWith([{ path: '/c', chunk: c, on: [bad, good] }], fake)
    fake.corrupt.add(`${bad.peerId} ${c.cid}`)
    const r = repairer({ metadata, chunks: fake, nodes: () => [bad, good, n3, n4] }, 3)
    await r.repair()
    assert.equal(fake.corrupt.size, 0, 'the corrupt copy was deleted from its node')
    const at = metadata.chunkLocations(c.cid)
    assert.equal(at.length, 3, 'and the chunk is back at 3 copies in the same pass')
    for (const p of at) assert.deepEqual((await fake.get(peerIdFromString(p), CID.parse(c.cid))).subarray(), c.bytes)
  })

  it('never sends a chunk back to a node whose corrupt copy could not be deleted', async () => {
    const [bad, good, n3] = await Promise.all([node('n1', 'a'), node('n2', 'b', 'suspect'), node('n3', 'c')])
    const fake = new FakeNodes()
    const c = await chunk('stuck')
    const metadata = metadataWith([{ path: '/c', chunk: c, on: [bad, good] }], fake)
    fake.corrupt.add(`${bad.peerId} ${c.cid}`)
    fake.delete = async () => { throw new Error('delete refused') }
    const pass = await repairer({ metadata, chunks: fake, nodes: () => [bad, good, n3] }, 3).repair()
    assert.deepEqual(on(metadata, c.cid, [bad, good, n3]), ['n2', 'n3'])
    assert.equal(pass.failed, 1, 'only two nodes can hold a good copy')
  })

  it('reports a chunk no live node can take as failed, and the pass still ends', async () => {
    const [dead, n2, n3] = await Promise.all([node('n1', 'a', 'dead'), node('n2', 'a'), node('n3', 'a')])
    const fake = new FakeNodes()
    const c = await chunk('too few nodes')
    const metadata = metadataWith([{ path: '/c', chunk: c, on: [dead, n2] }], fake)
    const failures: string[] = []
    const r = new Repairer({ metadata, chunks: fake, nodes: () => [dead, n2, n3], logger: defaultLogger(), onRepairFailed: (_cid, err) => { failures.push(err.name) } }, { replication: 3, startDelayMs: 0 })
    const pass = await r.repair()
    assert.equal(pass.failed, 1)
    assert.deepEqual(failures, ['NoRepairTargetError'])
    assert.deepEqual(on(metadata, c.cid, [dead, n2, n3]), ['n1', 'n2', 'n3'], 'the copy it could make is kept')
  })

  it('leaves alone a chunk with no copy on a live node, and tries another target when a put fails', async () => {
    const [dead, n2, n3, n4] = await Promise.all([node('n1', 'a', 'dead'), node('n2', 'a'), node('n3', 'a'), node('n4', 'a')])
    const fake = new FakeNodes()
    fake.down.add(n3.peerId)
    const lost = await chunk('only on the dead node')
    const c = await chunk('needs one more copy')
    const metadata = metadataWith([{ path: '/lost', chunk: lost, on: [dead] }, { path: '/c', chunk: c, on: [dead, n2] }], fake)
    const pass = await repairer({ metadata, chunks: fake, nodes: () => [dead, n2, n3, n4] }, 2).repair()
    assert.equal(pass.underReplicated, 1, 'nothing can be read for the lost chunk: it waits for its node')
    assert.deepEqual(on(metadata, c.cid, [dead, n2, n3, n4]), ['n1', 'n2', 'n4'])
  })

  it('wakes for a pass when told something changed', async () => {
    const [n1, n2] = await Promise.all([node('n1', 'a'), node('n2', 'a')])
    const fake = new FakeNodes()
    const c = await chunk('woken')
    const metadata = metadataWith([{ path: '/c', chunk: c, on: [n1] }], fake)
    const r = new Repairer({ metadata, chunks: fake, nodes: () => [n1, n2], logger: defaultLogger() }, { replication: 2, startDelayMs: 0, intervalMs: 3_600_000 })
    await r.start()
    try {
      r.wake()
      for (let i = 0; i < 200 && metadata.chunkLocations(c.cid).length < 2; i++) await new Promise(resolve => setTimeout(resolve, 10))
      assert.equal(metadata.chunkLocations(c.cid).length, 2)
    } finally {
      await r.stop()
    }
  })
})
