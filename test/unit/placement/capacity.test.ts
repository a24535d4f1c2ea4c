import '../../../src/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { pickTargets } from '../../../src/placement/capacity.js'
import type { NodeRecord } from '../../../src/node-registry/registry.js'

function node (name: string, capacityBytes: number, usedBytes: number, state: NodeRecord['state'] = 'alive', domain?: string): NodeRecord {
  return { peerId: name, name, domain, capacityBytes, usedBytes, chunkCount: 0, addrs: [], registeredAt: 0, lastSeen: 0, state }
}

describe('capacity-weighted placement', () => {
  it('picks distinct live nodes and never a dead or excluded one', () => {
    const nodes = [node('a', 100, 0), node('b', 100, 0), node('c', 100, 0, 'dead'), node('d', 100, 0)]
    for (let i = 0; i < 200; i++) {
      const picked = pickTargets(nodes, 2, new Set(['d']))
      assert.deepEqual(picked.map(n => n.name).sort(), ['a', 'b'])
    }
    assert.equal(pickTargets(nodes, 5).length, 3)
  })

  it('fills emptier nodes faster, in proportion to free space', () => {
    const nodes = [node('empty', 1000, 0), node('full', 1000, 900)]
    let seed = 1
    const random = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
    const counts = { empty: 0, full: 0 }
    for (let i = 0; i < 5000; i++) counts[pickTargets(nodes, 1, new Set(), random)[0].name as 'empty' | 'full']++
    const ratio = counts.empty / counts.full
    assert.ok(ratio > 7 && ratio < 13, `expected about 10x, got ${ratio}`)
  })

  it('keeps a suspect node as a last resort', () => {
    const nodes = [node('busy', 1000, 0, 'suspect')]
    assert.deepEqual(pickTargets(nodes, 1).map(n => n.name), ['busy'])
  })

  it('puts replicas on distinct members first, whatever their free space', () => {
    // Alice's nodes are far emptier; without the member rule most pairs would be alice + alice.
    const nodes = [node('a1', 10_000, 0, 'alive', 'home'), node('a2', 10_000, 0, 'alive', 'home'), node('b1', 1000, 900, 'alive', 'garage'), node('c1', 1000, 900, 'alive', 'office')]
    for (let i = 0; i < 300; i++) {
      const picked = pickTargets(nodes, 3)
      assert.deepEqual(picked.map(n => n.domain).sort(), ['garage', 'home', 'office'])
    }
    // Only when every member holds one does a member get a second.
    for (let i = 0; i < 100; i++) assert.equal(new Set(pickTargets(nodes, 4).map(n => n.name)).size, 4)
  })

  it('counts members already holding a copy (a retry) as used', () => {
    const nodes = [node('a1', 1000, 0, 'alive', 'home'), node('a2', 1000, 0, 'alive', 'home'), node('b1', 1000, 0, 'alive', 'garage')]
    for (let i = 0; i < 100; i++) assert.deepEqual(pickTargets(nodes, 1, new Set(['a1']), Math.random, ['home']).map(n => n.name), ['b1'])
  })
})
