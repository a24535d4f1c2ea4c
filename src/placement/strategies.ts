import { fill, freeBytes, weightedPick } from './capacity.js'
import type { PeerPerformance } from './performance.js'
import type { NodeRecord } from '../node-registry/registry.js'

export const STRATEGIES = ['media', 'backup', 'hybrid'] as const
export type StrategyName = typeof STRATEGIES[number]

export class UnknownStrategyError extends Error {
  static name = 'UnknownStrategyError'
  name = 'UnknownStrategyError'
}

export function parseStrategy (name: string): StrategyName {
  if ((STRATEGIES as readonly string[]).includes(name)) return name as StrategyName
  throw new UnknownStrategyError(`unknown placement strategy "${name}" (one of ${STRATEGIES.join(', ')})`)
}

export interface PlacementRequest {
  /** Every storage node known, any state */
  nodes: NodeRecord[]
  /** Replicas still needed */
  count: number
  /** Nodes already tried or holding the chunk */
  exclude?: ReadonlySet<string>
  /** Members (domains) already holding a copy */
  holders?: Iterable<string>
}

export interface PlacementComponents {
  /** The member domain of the daemon placing the chunk: "local" for the media strategy */
  localDomain: string
  performance: PeerPerformance
  random?: () => number
}

/**
 * A node fuller than the group's average by more than this loses the preferences of media and hybrid, so local
 * or fast nodes cannot fill up while others stay nearly empty.
 */
const FILL_MARGIN = 0.1

/** Hybrid score weights: free space, measured performance, health, locality (they sum to 1) */
export const HYBRID_WEIGHTS = { free: 0.4, performance: 0.3, health: 0.2, locality: 0.1 }

function averageFill (nodes: NodeRecord[]): number {
  const live = nodes.filter(n => n.state !== 'dead')
  const capacity = live.reduce((s, n) => s + n.capacityBytes, 0)
  return capacity > 0 ? live.reduce((s, n) => s + n.usedBytes, 0) / capacity : 0
}

/**
 * Chooses the nodes for a chunk's replicas under a DataStore's strategy. All three weigh free space, so in a small
 * group with unequal disks the nodes fill at similar rates:
 *
 * - **backup** — durability: distinct members first (never all copies in one household while another member has
 *   room), capacity-weighted within that.
 * - **media** — latency for streaming: the placing member's own nodes first, then the fastest nodes as measured
 *   by recent transfers (throughput and latency, not configuration). A node more than 10 points fuller than the
 *   group's average fill loses that preference.
 * - **hybrid** — a score per node of 0.4 × free fraction + 0.3 × measured performance + 0.2 × health (alive 1,
 *   suspect 0) + 0.1 × locality (own member 1), times its free bytes; distinct members are preferred as in backup.
 */
export function place (strategy: StrategyName, req: PlacementRequest, components: PlacementComponents): NodeRecord[] {
  const { nodes, count } = req
  const options = { exclude: req.exclude, holders: req.holders, random: components.random }
  const overFull = (n: NodeRecord): boolean => fill(n) > averageFill(nodes) + FILL_MARGIN
  switch (strategy) {
    case 'backup':
      return weightedPick(nodes, count, freeBytes, { ...options, spread: true })
    case 'media': {
      const local = nodes.filter(n => n.domain === components.localDomain && !overFull(n))
      const picked = weightedPick(local, count, freeBytes, options)
      if (picked.length >= count) return picked
      const exclude = new Set([...(req.exclude ?? []), ...picked.map(n => n.peerId)])
      // The fastest win by a wide margin (fourth power of the score), but free space still counts.
      const rest = weightedPick(nodes, count - picked.length, n => freeBytes(n) * Math.pow(overFull(n) ? 0.1 : components.performance.score(n.peerId), 4), { ...options, exclude })
      return [...picked, ...rest]
    }
    case 'hybrid':
      return weightedPick(nodes, count, n => freeBytes(n) * hybridScore(n, components, overFull(n)), { ...options, spread: true })
    default:
      throw new UnknownStrategyError(`unknown placement strategy "${String(strategy)}"`)
  }
}

/** The hybrid score of one node, 0..1 (see `place`) */
export function hybridScore (n: NodeRecord, components: PlacementComponents, overFull = false): number {
  const free = n.capacityBytes > 0 ? Math.max(0, 1 - fill(n)) : 0
  const w = HYBRID_WEIGHTS
  const score = w.free * free +
    w.performance * components.performance.score(n.peerId) +
    w.health * (n.state === 'alive' ? 1 : 0) +
    w.locality * (n.domain === components.localDomain ? 1 : 0)
  return overFull ? score * 0.1 : score
}
