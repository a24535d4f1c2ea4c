import type { NodeRecord } from '../node-registry/registry.js'

/**
 * Picks `count` distinct live nodes for a new chunk, at random weighted by free space, so that in a small group
 * the emptier nodes fill faster and no node fills up while others stay empty. The smart strategies of DataStores
 * build on the same capacity weighting.
 *
 * Replicas go to distinct members first: once a member's node is picked, that member's other nodes are only
 * taken when no other member has a candidate left, so one household's outage never takes every copy.
 * `holders` are the members already holding a copy of this chunk (a retry after a refused put).
 */
export function pickTargets (nodes: NodeRecord[], count: number, exclude: ReadonlySet<string> = new Set(), random = Math.random, holders: Iterable<string> = []): NodeRecord[] {
  // A suspect node has only missed heartbeats (often because it is busy); it stays a candidate, far less likely.
  const candidates = nodes
    .filter(n => n.state !== 'dead' && !exclude.has(n.peerId))
    .map(n => ({ node: n, weight: Math.max(1, n.capacityBytes - n.usedBytes) * (n.state === 'alive' ? 1 : 0.01) }))
  const usedMembers = new Set(holders)
  const picked: NodeRecord[] = []
  while (picked.length < count && candidates.length > 0) {
    const fresh = candidates.filter(c => !usedMembers.has(c.node.domain ?? ''))
    const pool = fresh.length > 0 ? fresh : candidates
    const total = pool.reduce((s, c) => s + c.weight, 0)
    let r = random() * total
    let i = 0
    for (; i < pool.length - 1; i++) {
      r -= pool[i].weight
      if (r < 0) break
    }
    const chosen = pool[i]
    picked.push(chosen.node)
    usedMembers.add(chosen.node.domain ?? '')
    candidates.splice(candidates.indexOf(chosen), 1)
  }
  return picked
}
