import '../../../src/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { pickTargets } from '../../../src/placement/capacity.js'
import type { NodeRecord } from '../../../src/node-registry/registry.js'

function node (name: string, capacityBytes: number, usedBytes: number, state: NodeRecord['state'] = 'alive'): NodeRecord {
  return { peerId: name, name, capacityBytes, usedBytes, chunkCount: 0, addrs: [], registeredAt: 0, lastSeen: 0, state }
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
})
