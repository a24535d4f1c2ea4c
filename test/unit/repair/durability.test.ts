import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { durabilityReport } from '../../../src/repair/durability.js'
import { chunk, metadataWith, node } from './fixtures.js'

describe('durability report and the metadata queries behind repair', () => {
  it('counts chunks at and below target on live, non-draining nodes, and groups copies by member', async () => {
    const [a1, a2, b1, dead] = await Promise.all([node('a1', 'a'), node('a2', 'a'), node('b1', 'b'), node('d1', 'd', 'dead')])
    const draining = await node('a3', 'a', 'alive', { draining: true })
    const nodes = [a1, a2, b1, dead, draining]
    const [full, one, none, drained] = await Promise.all(['full', 'one', 'none', 'drained'].map(chunk))
    const metadata = metadataWith([
      { path: '/full', chunk: full, on: [a1, b1] },
      { path: '/one', chunk: one, on: [a2, dead] },
      { path: '/none', chunk: none, on: [dead] },
      { path: '/drained', chunk: drained, on: [a1, draining] }
    ])
    metadata.mkdir('/sub', { owner: 'x' })
    const report = durabilityReport(metadata, nodes, '/', 2)
    assert.equal(report.dataStores.length, 1)
    const g = report.dataStores[0]
    assert.deepEqual([g.chunks, g.atTarget, g.belowTarget, g.atOneCopy, g.noCopy], [4, 1, 3, 2, 1])
    assert.equal(g.bytes, full.bytes.length + one.bytes.length + none.bytes.length + drained.bytes.length)
    assert.deepEqual(g.members.map(m => [m.domain, m.chunks]), [['a', 4], ['b', 1], ['d', 2]])
    assert.deepEqual(g.members[0].nodes.map(n => [n.name.split('@')[0], n.chunks, n.draining ?? false]), [['a1', 2, false], ['a2', 1, false], ['a3', 1, true]])

    const sub = durabilityReport(metadata, nodes, '/one', 2).dataStores[0]
    assert.deepEqual([sub.path, sub.chunks, sub.atOneCopy], ['/one', 1, 1])
    assert.equal(durabilityReport(metadata, nodes, '/sub', 2).dataStores[0].chunks, 0)
    assert.throws(() => durabilityReport(metadata, nodes, '/missing', 2), { name: 'NotFoundError' })

    // The repair work list: fewest counted copies first, only what can be read from somewhere.
    const counted = [a1, a2, b1].map(n => n.peerId)
    const work = metadata.underReplicatedChunks(counted, 2, { readableFrom: [...counted, draining.peerId] })
    assert.deepEqual(work.map(c => [c.cid, c.copies]), [[one.cid, 1], [drained.cid, 1]].sort((x, y) => (x[1] as number) - (y[1] as number) || String(x[0]).localeCompare(String(y[0]))))
    assert.deepEqual(metadata.underReplicatedChunks(counted, 2).map(c => c.cid)[0], none.cid, 'without readableFrom, unreadable chunks come first')
    assert.equal(metadata.underReplicatedChunks(counted, 2, { limit: 1 }).length, 1)
    assert.equal(metadata.chunkCountOnPeer(a1.peerId), 2)
    assert.equal(metadata.chunkCountOnPeer('nobody'), 0)
  })
})
