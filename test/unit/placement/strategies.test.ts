import '../../../src/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { place, parseStrategy, hybridScore } from '../../../src/placement/strategies.js'
import { PeerPerformance } from '../../../src/placement/performance.js'
import { Popularity } from '../../../src/placement/popularity.js'
import type { NodeRecord } from '../../../src/node-registry/registry.js'

const GB = 1e9

function node (name: string, domain: string, capacityBytes: number, usedBytes = 0, state: NodeRecord['state'] = 'alive'): NodeRecord {
  return { peerId: name, name, domain, capacityBytes, usedBytes, chunkCount: 0, addrs: [], registeredAt: 0, lastSeen: 0, state }
}

function seeded (seed = 7): () => number {
  let s = seed
  return () => { s = (s * 16807) % 2147483647; return s / 2147483647 }
}

/** Places `chunks` chunks of `size` bytes, adding each replica to its node's use as a real write would */
function simulate (strategy: 'media' | 'backup' | 'hybrid', nodes: NodeRecord[], chunks: number, size: number, replicas: number, localDomain: string, performance = new PeerPerformance()): void {
  const random = seeded()
  for (let i = 0; i < chunks; i++) {
    for (const n of place(strategy, { nodes, count: replicas }, { localDomain, performance, random })) n.usedBytes += size
  }
}

describe('placement strategies', () => {
  it('backup: with three members and three replicas, exactly one replica per member', () => {
    const nodes = [node('a1', 'home', 100 * GB), node('a2', 'home', 100 * GB), node('b1', 'garage', 10 * GB), node('c1', 'office', 50 * GB), node('c2', 'office', 50 * GB)]
    const random = seeded()
    for (let i = 0; i < 500; i++) {
      const picked = place('backup', { nodes, count: 3 }, { localDomain: 'home', performance: new PeerPerformance(), random })
      assert.deepEqual(picked.map(n => n.domain).sort(), ['garage', 'home', 'office'])
    }
  })

  it('media: the placing member\'s own nodes first, then the fastest measured node', () => {
    const performance = new PeerPerformance()
    for (let i = 0; i < 10; i++) {
      performance.record('fast', 4 * 1024 * 1024, 20)
      performance.record('slow', 4 * 1024 * 1024, 400)
    }
    const nodes = [node('a1', 'home', 10 * GB), node('fast', 'garage', 10 * GB), node('slow', 'office', 10 * GB)]
    const random = seeded()
    const second: Record<string, number> = { fast: 0, slow: 0 }
    for (let i = 0; i < 400; i++) {
      const picked = place('media', { nodes, count: 2 }, { localDomain: 'home', performance, random })
      assert.equal(picked[0].name, 'a1')
      second[picked[1].name]++
    }
    assert.ok(second.fast > second.slow * 20, `fast node preferred: ${JSON.stringify(second)}`)
  })

  it('media: a local node far fuller than the group gives up its preference', () => {
    const nodes = [node('a1', 'home', 10 * GB, 9 * GB), node('b1', 'garage', 10 * GB), node('c1', 'office', 10 * GB)]
    const random = seeded()
    let local = 0
    for (let i = 0; i < 300; i++) if (place('media', { nodes, count: 1 }, { localDomain: 'home', performance: new PeerPerformance(), random })[0].name === 'a1') local++
    assert.ok(local < 30, `over-full local node picked ${local} of 300 times`)
  })

  it('hybrid: the documented score (free space, performance, health, locality)', () => {
    const performance = new PeerPerformance()
    const components = { localDomain: 'home', performance }
    // Unmeasured performance counts 0.5: 0.4 * 0.5 free + 0.3 * 0.5 + 0.2 alive + 0.1 local
    assert.equal(hybridScore(node('a', 'home', 100, 50), components).toFixed(3), '0.650')
    assert.equal(hybridScore(node('b', 'garage', 100, 0, 'suspect'), components).toFixed(3), '0.550')
  })

  for (const strategy of ['media', 'backup', 'hybrid'] as const) {
    it(`${strategy}: an unequal four-member group fills within 1.5x (largest / smallest fill ratio)`, () => {
      const nodes = [
        node('a1', 'home', 40 * GB), node('a2', 'home', 10 * GB),
        node('b1', 'garage', 20 * GB),
        node('c1', 'office', 80 * GB),
        node('d1', 'lab', 15 * GB), node('d2', 'lab', 15 * GB)
      ]
      const performance = new PeerPerformance()
      for (const n of nodes) performance.record(n.peerId, 4 * 1024 * 1024, n.name === 'c1' ? 10 : 60)
      // 60% of the group's capacity, in 4 MiB chunks, replication 2
      simulate(strategy, nodes, Math.floor(0.6 * 180 * GB / (2 * 4 * 1024 * 1024)), 4 * 1024 * 1024, 2, 'home', performance)
      const fills = nodes.map(n => n.usedBytes / n.capacityBytes)
      const ratio = Math.max(...fills) / Math.min(...fills)
      console.log(`${strategy}: fill ratios ${fills.map(f => f.toFixed(2)).join(' ')}, max/min ${ratio.toFixed(2)}`)
      assert.ok(ratio <= 1.5, `${strategy}: fill ratios ${fills.map(f => f.toFixed(2)).join(' ')} (max/min ${ratio.toFixed(2)})`)
    })
  }

  it('never picks dead or excluded nodes, and names unknown strategies', () => {
    const nodes = [node('a', 'home', GB), node('b', 'home', GB, 0, 'dead'), node('c', 'garage', GB)]
    for (const strategy of ['media', 'backup', 'hybrid'] as const) {
      const picked = place(strategy, { nodes, count: 3, exclude: new Set(['c']) }, { localDomain: 'home', performance: new PeerPerformance() })
      assert.deepEqual(picked.map(n => n.name), ['a'])
    }
    assert.equal(parseStrategy('hybrid'), 'hybrid')
    assert.throws(() => parseStrategy('fastest'), { name: 'UnknownStrategyError' })
  })
})

describe('peer performance', () => {
  it('scores by measured throughput and latency relative to the best; unmeasured peers score 0.5', () => {
    let now = 0
    const p = new PeerPerformance({ now: () => now, forgetAfterMs: 1000 })
    p.record('fast', 1024 * 1024, 10)
    p.record('slow', 1024 * 1024, 40)
    assert.equal(p.score('fast'), 1)
    assert.equal(p.score('slow'), 0.25)
    assert.equal(p.score('never'), 0.5)
    now = 2000
    p.record('fast', 100, 5)
    assert.equal(p.get('slow'), undefined, 'stale samples are forgotten')
  })
})

describe('popularity', () => {
  it('hot content gains replicas up to the cap and gives them back as it cools', () => {
    let now = 0
    const pop = new Popularity({ halfLifeMs: 60_000, hotReads: 10, now: () => now })
    assert.equal(pop.desiredReplicas('/a', 2, 5), 2)
    pop.record('/a', 10)
    assert.equal(pop.desiredReplicas('/a', 2, 5), 3)
    pop.record('/a', 30)
    assert.equal(pop.desiredReplicas('/a', 2, 5), 5, '40 reads: two doublings over 10, capped at 5')
    pop.record('/a', 1000)
    assert.equal(pop.desiredReplicas('/a', 2, 5), 5)
    assert.deepEqual(pop.hot(2, 5).map(h => h.key), ['/a'])
    now = 60_000
    assert.ok(Math.abs(pop.score('/a') - 520) < 1e-6, 'one half-life halves the count')
    now = 60_000 * 8
    assert.equal(pop.desiredReplicas('/a', 2, 5), 2, 'cold again after eight half-lives')
    assert.deepEqual(pop.hot(2, 5), [])
  })

  it('tracks a bounded number of keys, forgetting the coldest', () => {
    const pop = new Popularity({ maxTracked: 100, now: () => 0 })
    for (let i = 0; i < 1000; i++) pop.record(`/f${i}`, i)
    assert.ok(pop.score('/f999') === 999)
    assert.equal(pop.score('/f0'), 0)
  })
})
