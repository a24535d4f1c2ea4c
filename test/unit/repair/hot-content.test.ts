import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { defaultLogger } from '@libp2p/logger'
import { HotContent } from '../../../src/repair/hot-content.js'
import { Repairer } from '../../../src/repair/repairer.js'
import { Popularity } from '../../../src/placement/popularity.js'
import { FakeNodes, chunk, metadataWith, node } from './fixtures.js'

const HALF_LIFE = 60_000

describe('popularity decay with a controllable clock', () => {
  it('halves a count every half-life and lists a key as hot only while its decayed count reaches the threshold', () => {
    let now = 0
    const pop = new Popularity({ halfLifeMs: HALF_LIFE, hotReads: 8, now: () => now })
    for (let i = 0; i < 16; i++) pop.record('c')
    assert.equal(pop.score('c'), 16)
    assert.deepEqual(pop.hotKeys(), ['c'])
    now = HALF_LIFE
    assert.equal(pop.score('c'), 8)
    assert.deepEqual(pop.hotKeys(), ['c'], 'exactly at the threshold')
    now = HALF_LIFE + 1
    assert.deepEqual(pop.hotKeys(), [], 'a moment later it has cooled')
    pop.record('c', 8)
    assert.ok(Math.abs(pop.score('c') - 16) < 0.01, 'new reads add to the decayed count, not to the old one')
    assert.equal(pop.size, 1)
  })
})

describe('HotContent', () => {
  async function setup (maxReplicas = 4): Promise<any> {
    let now = 0
    const nodes = await Promise.all([node('n1', 'a', 'alive', { usedBytes: 5e8 }), node('n2', 'b'), node('n3', 'c'), node('n4', 'd'), node('n5', 'd', 'dead')])
    const fake = new FakeNodes()
    const c = await chunk('hot chunk')
    const cold = await chunk('cold chunk')
    const metadata = metadataWith([{ path: '/hot', chunk: c, on: [nodes[0], nodes[1]] }, { path: '/cold', chunk: cold, on: [nodes[0], nodes[1]] }], fake)
    const hot = new HotContent({ metadata, chunks: fake, logger: defaultLogger() }, { maxReplicas, halfLifeMs: HALF_LIFE, hotReads: 10, now: () => now })
    const repairer = new Repairer({ metadata, chunks: fake, nodes: () => nodes, logger: defaultLogger(), hot }, { replication: 2, bandwidthBytesPerSecond: 1e9, startDelayMs: 0, rebalance: false })
    return { nodes, fake, c, cold, metadata, hot, repairer, clock: { set: (t: number) => { now = t } } }
  }

  it('a chunk read often gains copies up to the maximum, on live nodes of other members, through the repairer', async () => {
    const { nodes, fake, c, cold, metadata, hot, repairer } = await setup()
    for (let i = 0; i < 9; i++) hot.record(c.cid)
    let pass = await repairer.repair()
    assert.equal(pass.hotCopies, 0, 'below the threshold nothing happens')
    assert.equal(metadata.chunkLocations(c.cid).length, 2)

    hot.record(c.cid)
    pass = await repairer.repair()
    assert.equal(pass.hotCopies, 1, '10 reads: one extra copy')
    assert.equal(metadata.getChunk(c.cid)?.hotTarget, 3)
    for (let i = 0; i < 1000; i++) hot.record(c.cid)
    pass = await repairer.repair()
    assert.equal(pass.hotCopies, 1, 'four copies at most: one more')
    const at = metadata.chunkLocations(c.cid)
    assert.equal(at.length, 4)
    assert.ok(!at.includes(nodes[4].peerId), 'never on a dead node')
    for (const p of at) assert.deepEqual(fake.of(p).get(c.cid), c.bytes)
    assert.equal(metadata.chunkLocations(cold.cid).length, 2, 'a chunk nobody reads keeps its two copies')
    assert.equal(repairer.status().repairedChunks, 0, 'extra copies are not counted as repairs')
    assert.equal(repairer.status().popularity?.hotChunks, 1)
  })

  it('never asks for more copies than there are live nodes to hold them', async () => {
    const { c, metadata, hot, repairer } = await setup(16)
    for (let i = 0; i < 100_000; i++) hot.record(c.cid)
    const pass = await repairer.repair()
    assert.equal(pass.failed, 0)
    assert.equal(metadata.getChunk(c.cid)?.hotTarget, 4, 'four live nodes')
    assert.equal(metadata.chunkLocations(c.cid).length, 4)
  })

  it('as it cools, the extra copies are deleted again down to the replication factor, fullest node first, one per member kept', async () => {
    const { nodes, fake, c, metadata, hot, repairer, clock } = await setup()
    for (let i = 0; i < 40; i++) hot.record(c.cid)
    await repairer.repair()
    assert.equal(metadata.chunkLocations(c.cid).length, 4)

    // 40 reads earned copy 4 at 40 (>= 20) and copy 3 at 10: each goes only at half that level
    clock.set(HALF_LIFE * 1.5)
    assert.equal((await repairer.repair()).trimmed, 0, '40 reads decayed to ~14: above 10, half the 20 that earned copy 4')
    clock.set(HALF_LIFE * 2.5)
    let pass = await repairer.repair()
    assert.equal(pass.trimmed, 1, '40 reads decayed to ~7: below 10, one extra copy left')
    assert.equal(metadata.chunkLocations(c.cid).length, 3)
    assert.equal(metadata.getChunk(c.cid)?.hotTarget, 3)

    clock.set(HALF_LIFE * 10)
    pass = await repairer.repair()
    assert.equal(pass.trimmed, 1)
    assert.equal(pass.hotCopies, 0, 'nothing copied back')
    const at = metadata.chunkLocations(c.cid)
    assert.equal(at.length, 2, 'back at the replication factor, never below')
    assert.ok(!at.includes(nodes[0].peerId), 'the fullest node gave its copy up')
    assert.equal(new Set(at.map((p: string) => nodes.find((n: any) => n.peerId === p).domain)).size, 2, 'on two members')
    for (const n of nodes) assert.equal(fake.of(n.peerId).has(c.cid), at.includes(n.peerId), `${n.name} holds the chunk only if recorded`)
    assert.deepEqual(metadata.hotChunks(), [], 'no longer hot')
    assert.equal((await repairer.repair()).trimmed, 0)
  })

  it('does not delete and copy again a chunk whose steady reads hover at a doubling', async () => {
    const { c, metadata, hot, repairer, clock } = await setup()
    // Copy 4 is earned at 20 reads. Two reads every 0.1455 half-lives keep the count between ~18.9 (just before
    // they come, after that decay) and ~20.9 (just after); repair passes run at both points.
    let copies = 0
    let trimmed = 0
    const pass = async (): Promise<void> => {
      const p = await repairer.repair()
      copies += p.hotCopies
      trimmed += p.trimmed
    }
    for (let i = 0; i < 21; i++) hot.record(c.cid)
    await pass()
    for (let step = 1; step <= 30; step++) {
      clock.set(step * HALF_LIFE * 0.1455)
      await pass()
      hot.record(c.cid)
      hot.record(c.cid)
      await pass()
    }
    assert.equal(copies, 2, 'copies 3 and 4, once each')
    assert.equal(trimmed, 0)
    assert.equal(metadata.chunkLocations(c.cid).length, 4)
  })

  it('never trims below the copies the chunk\'s files ask for, and leaves extra copies of chunks that were never hot', async () => {
    const { nodes, fake, c, cold, metadata, hot } = await setup()
    metadata.addChunkLocation(cold.cid, nodes[2].peerId)
    fake.of(nodes[2].peerId).set(cold.cid, cold.bytes)
    metadata.setHotTarget(c.cid, 4)
    metadata.addChunkLocation(c.cid, nodes[2].peerId)
    fake.of(nodes[2].peerId).set(c.cid, c.bytes)
    // The file asks for 3 copies (its DataStore's replica count): cooling trims to 3, not to the default 2.
    metadata.commitFile('/hot3', { manifest: { chunkSize: c.bytes.length, chunks: [{ cid: c.cid, size: c.bytes.length }] }, size: c.bytes.length, owner: 'x', replication: 3 })
    assert.equal(await hot.trim(nodes, 2), 0)
    assert.equal(metadata.chunkLocations(c.cid).length, 3)
    assert.deepEqual(metadata.hotChunks(), [])
    assert.equal(metadata.chunkLocations(cold.cid).length, 3, 'a copy more than asked for, never hot: kept')
  })

  it('keeps the hot mark while an extra copy could not be deleted, and retries', async () => {
    const { nodes, fake, c, metadata, hot, repairer, clock } = await setup()
    for (let i = 0; i < 10; i++) hot.record(c.cid)
    await repairer.repair()
    assert.equal(metadata.chunkLocations(c.cid).length, 3)
    clock.set(HALF_LIFE * 10)
    for (const n of nodes) fake.down.add(n.peerId)
    assert.equal(await hot.trim(nodes, 2), 0)
    assert.equal(metadata.hotChunks().length, 1, 'still marked: its extra copy is still there')
    fake.down.clear()
    assert.equal(await hot.trim(nodes, 2), 1)
    assert.deepEqual(metadata.hotChunks(), [])
  })
})
