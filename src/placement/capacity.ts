import type { NodeRecord } from '../node-registry/registry.js'

export interface WeightedPickOptions {
  /** Peer IDs never to pick (already tried or already holding the chunk) */
  exclude?: ReadonlySet<string>
  /** Members (domains) already holding a copy: with `spread`, their nodes come last */
  holders?: Iterable<string>
  /** Distinct members first: a member's second node only when no other member has a candidate left */
  spread?: boolean
  random?: () => number
}

/** Share of a node's capacity in use, 0 to 1; a node that reports no capacity counts as full */
export function fill (n: NodeRecord): number {
  return n.capacityBytes > 0 ? n.usedBytes / n.capacityBytes : 1
}

/** Bytes a node can still take; never below 1 so that a full but only node stays pickable as a last resort */
export function freeBytes (n: NodeRecord): number {
  return Math.max(1, n.capacityBytes - n.usedBytes)
}

/**
 * Picks up to `count` distinct live nodes at random, each with probability proportional to `weight`. A suspect
 * node has only missed heartbeats or answered badly lately (often because it is busy); it stays a candidate, a
 * hundred times less likely. Dead and excluded nodes never are.
 */
export function weightedPick (nodes: NodeRecord[], count: number, weight: (n: NodeRecord) => number, options: WeightedPickOptions = {}): NodeRecord[] {
  const exclude = options.exclude ?? new Set()
  const random = options.random ?? Math.random
  const candidates = nodes
    .filter(n => n.state !== 'dead' && !exclude.has(n.peerId))
    .map(n => ({ node: n, weight: Math.max(Number.MIN_VALUE, weight(n)) * (n.state === 'alive' ? 1 : 0.01) }))
  const usedMembers = new Set(options.holders ?? [])
  const picked: NodeRecord[] = []
  while (picked.length < count && candidates.length > 0) {
    const fresh = options.spread === true ? candidates.filter(c => !usedMembers.has(c.node.domain ?? '')) : []
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

/**
 * Picks `count` distinct live nodes for a new chunk, at random weighted by free space, so that in a small group
 * the emptier nodes fill faster and no node fills up while others stay empty. Replicas go to distinct members
 * first: once a member's node is picked, that member's other nodes are only taken when no other member has a
 * candidate left, so one household's outage never takes every copy. `holders` are the members already holding a
 * copy of this chunk (a retry after a refused put). This is the `backup` strategy, and the default.
 */
export function pickTargets (nodes: NodeRecord[], count: number, exclude: ReadonlySet<string> = new Set(), random = Math.random, holders: Iterable<string> = []): NodeRecord[] {
  return weightedPick(nodes, count, freeBytes, { exclude, holders, spread: true, random })
}
