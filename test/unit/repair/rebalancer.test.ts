import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { defaultLogger } from '@libp2p/logger'
import { Repairer } from '../../../src/repair/repairer.js'
import { FakeNodes, chunk, metadataWith, node } from './fixtures.js'
import type { NodeRecord } from '../../../src/node-registry/registry.js'

/** Every test chunk is 1000 bytes; capacities are in these units */
const MB = 1000

/** `count` chunks of 1 MB-ish on `on`; each node's usedBytes follows what it holds */
async function group (count: number, on: NodeRecord[], extra: NodeRecord[] = []): Promise<any> {
  const fake = new FakeNodes()
  const files = []
  for (let i = 0; i < count; i++) files.push({ path: `/f${i}`, chunk: await chunk(`chunk ${i} `.padEnd(1000, 'x')), on })
  const metadata = metadataWith(files, fake)
  const nodes = [...on, ...extra]
  // What a node reports: the bytes it holds, as of now.
  const refresh = (at = Date.now() + 2000): void => { for (const n of nodes) { n.usedBytes = fake.of(n.peerId).size * MB; n.lastSeen = at } }
  refresh(Date.now() - 10_000)
  return { fake, metadata, nodes, refresh, cids: files.map(f => f.chunk.cid) }
}

function repairer (g: any, init: any = {}): Repairer {
  return new Repairer({ metadata: g.metadata, chunks: g.fake, nodes: () => g.nodes, logger: defaultLogger() }, { replication: 2, bandwidthBytesPerSecond: 1e12, startDelayMs: 0, rebalance: { minGap: 0, ...init } })
}

describe('Rebalancer', () => {
  it('moves chunks toward a node that joined until fills even out, every chunk at its two copies throughout', async () => {
    const [a1, b1] = await Promise.all([node('a1', 'a', 'alive', { capacityBytes: 100 * MB }), node('b1', 'b', 'alive', { capacityBytes: 100 * MB })])
    const newcomer = await node('c1', 'c', 'alive', { capacityBytes: 100 * MB })
    const g = await group(30, [a1, b1], [newcomer])
    const r = repairer(g, { maxMovesPerPass: 4 })
    let pass = await r.repair()
    assert.equal(pass.moved, 4, 'gradually: a bounded number of moves per pass')
    for (let i = 0; i < 20; i++) {
      g.refresh()
      for (const cid of g.cids) {
        const at: string[] = g.metadata.chunkLocations(cid)
        assert.equal(at.length, 2, `${cid as string} has two copies`)
        assert.equal(new Set(at.map(p => g.nodes.find((n: NodeRecord) => n.peerId === p).domain)).size, 2, 'on two members')
        for (const p of at) assert.ok(g.fake.of(p).has(cid))
      }
      pass = await r.repair()
      if (pass.moved === 0) break
    }
    assert.equal(pass.moved, 0, 'it stops')
    const fills = g.nodes.map((n: NodeRecord) => n.usedBytes / n.capacityBytes)
    assert.ok(fills[2] >= 0.1, `the newcomer took a share: ${fills.join(', ')}`)
    const avg = 60 / 300
    for (const f of fills) assert.ok(f <= avg * 1.1 + 0.011, `no node far above the average ${avg}: ${fills.join(', ')}`)
    assert.equal(r.status().rebalance?.movedChunks, fills[2] * 100)
  })

  it('never reduces the members holding a chunk: a member\'s only copy does not go to a member that has one', async () => {
    const [a1, b1] = await Promise.all([node('a1', 'a', 'alive', { capacityBytes: 100 * MB }), node('b1', 'b', 'alive', { capacityBytes: 100 * MB })])
    const b2 = await node('b2', 'b', 'alive', { capacityBytes: 100 * MB })
    const g = await group(20, [a1, b1], [b2])
    const r = repairer(g)
    for (let i = 0; i < 10; i++) { g.refresh(); if ((await r.repair()).moved === 0) break }
    g.refresh()
    assert.equal(g.fake.of(a1.peerId).size, 20, 'a1 keeps member a\'s copies: b2 is of member b, which holds them already')
    // The average is 40 / 300: b1 gives to b2 until it is within 10 % of it.
    assert.equal(g.fake.of(b1.peerId).size, 14, 'b1 shares with b2, of its own member')
    assert.equal(g.fake.of(b2.peerId).size, 6)
  })

  it('counts its own moves until the nodes report them, so stale reports do not make it move too much', async () => {
    const [a1, b1, c1] = await Promise.all(['a', 'b', 'c'].map(async d => await node(`${d}1`, d, 'alive', { capacityBytes: 100 * MB })))
    const g = await group(30, [a1, b1], [c1])
    const r = repairer(g)
    await r.repair()
    // No report since: the second pass sees the first one's moves and has nothing left to do.
    assert.equal((await r.repair()).moved, 0)
    g.refresh()
    assert.equal((await r.repair()).moved, 0)
    const fills = g.nodes.map((n: NodeRecord) => n.usedBytes / MB)
    assert.deepEqual(fills, [22, 22, 16], `as even as a 10 % tolerance over the average of 20 asks: ${fills.join(', ')}`)
  })

  it('goes on across passes from where the last scan of a node stopped, instead of re-reading what could not move', async () => {
    const [a1, b1, c1] = await Promise.all(['a', 'b', 'c'].map(async d => await node(`${d}1`, d, 'alive', { capacityBytes: 100 * MB })))
    const g = await group(40, [a1, b1], [c1])
    // The 20 chunks that sort first on each node become garbage in its grace period: never moved, always skipped
    const sorted = g.cids.map((cid: string, i: number) => ({ cid, i })).sort((x: any, y: any) => x.cid < y.cid ? -1 : 1)
    for (const { i } of sorted.slice(0, 20)) await g.metadata.remove(`/f${i as number}`)
    const garbage = new Set(sorted.slice(0, 20).map((x: any) => x.cid))
    let rows = 0
    const list = g.metadata.chunksOnPeer.bind(g.metadata)
    g.metadata.chunksOnPeer = (peerId: string, options: any) => { const cids = list(peerId, options); rows += cids.length; return cids }
    const r = repairer(g, { maxMovesPerPass: 1, batchSize: 4 })
    const moved: number[] = []
    for (let i = 0; i < 10; i++) { g.refresh(); moved.push((await r.repair()).moved) }
    assert.deepEqual(moved, Array(10).fill(1), 'one move per pass')
    for (const cid of garbage) assert.ok(!g.metadata.chunkLocations(cid).includes(c1.peerId), 'garbage stays where it is')
    // Each node's first scan reads past its 20 garbage chunks (in batches of 4); later passes go on from there,
    // a batch or two per move. Starting every pass from the first chunk read 200 and more.
    assert.ok(rows <= 2 * 24 + 8 * 8, `${rows} chunk rows read over 10 passes`)
  })

  it('leaves unreferenced chunks, chunks below target and dead or draining nodes alone; off when disabled', async () => {
    const [a1, b1] = await Promise.all([node('a1', 'a', 'alive', { capacityBytes: 100 * MB }), node('b1', 'b', 'alive', { capacityBytes: 100 * MB })])
    const dead = await node('c1', 'c', 'dead', { capacityBytes: 100 * MB })
    const draining = await node('d1', 'd', 'alive', { capacityBytes: 100 * MB, draining: true })
    const g = await group(10, [a1, b1], [dead, draining])
    assert.equal((await repairer(g).repair()).moved, 0, 'no live receiver')
    const off = new Repairer({ metadata: g.metadata, chunks: g.fake, nodes: () => g.nodes, logger: defaultLogger() }, { replication: 2, startDelayMs: 0, rebalance: false })
    g.nodes.push(await node('e1', 'e', 'alive', { capacityBytes: 100 * MB }))
    assert.equal((await off.repair()).moved, 0)
    assert.equal(off.status().rebalance, undefined)
    await g.metadata.remove('/f0')
    const r = repairer(g)
    await r.repair()
    assert.equal(g.metadata.chunkLocations(g.cids[0]).length, 2, 'garbage is not moved')
    assert.ok(!g.metadata.chunkLocations(g.cids[0]).includes(g.nodes[4].peerId))
  })
})
