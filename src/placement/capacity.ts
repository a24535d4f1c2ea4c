import type { NodeRecord } from '../node-registry/registry.js'

/**
 * Picks `count` distinct live nodes for a new chunk, at random weighted by free space, so that in a small group
 * the emptier nodes fill faster and no node fills up while others stay empty. The smart strategies of DataStores
 * build on the same capacity weighting.
 */
export function pickTargets (nodes: NodeRecord[], count: number, exclude: ReadonlySet<string> = new Set(), random = Math.random): NodeRecord[] {
  // A suspect node has only missed heartbeats (often because it is busy); it stays a candidate, far less likely.
  const candidates = nodes
    .filter(n => n.state !== 'dead' && !exclude.has(n.peerId))
    .map(n => ({ node: n, weight: Math.max(1, n.capacityBytes - n.usedBytes) * (n.state === 'alive' ? 1 : 0.01) }))
  const picked: NodeRecord[] = []
  while (picked.length < count && candidates.length > 0) {
    const total = candidates.reduce((s, c) => s + c.weight, 0)
    let r = random() * total
    let i = 0
    for (; i < candidates.length - 1; i++) {
      r -= candidates[i].weight
      if (r < 0) break
    }
    picked.push(candidates[i].node)
    candidates.splice(i, 1)
  }
  return picked
}
