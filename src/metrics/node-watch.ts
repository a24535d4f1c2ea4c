import { diskComponent } from './health.js'
import type { CollectiveMetrics } from './metrics.js'
import type { NodeRecord, NodeState } from '../node-registry/registry.js'

// The node registry derives a node's state from the age of its last report and has no event hooks, so the daemon
// polls its list and diffs it against the previous poll: that yields registrations, state changes and heartbeats
// (a changed lastSeen is a report received) without touching the registry.

export type NodeChange =
  | { type: 'registered', node: NodeRecord }
  | { type: 'state', node: NodeRecord, from: NodeState, to: NodeState }

export interface NodeObservation {
  changes: NodeChange[]
  /** reports received since the previous poll: at most one per node per poll */
  heartbeats: number
}

export class NodeStateTracker {
  private readonly known = new Map<string, { state: NodeState, lastSeen: number }>()

  update (nodes: NodeRecord[]): NodeObservation {
    const changes: NodeChange[] = []
    let heartbeats = 0
    for (const node of nodes) {
      const previous = this.known.get(node.peerId)
      if (previous == null) {
        changes.push({ type: 'registered', node })
        // The registration itself was a report.
        heartbeats++
      } else {
        if (node.lastSeen !== previous.lastSeen) heartbeats++
        if (node.state !== previous.state) changes.push({ type: 'state', node, from: previous.state, to: node.state })
      }
      this.known.set(node.peerId, { state: node.state, lastSeen: node.lastSeen })
    }
    return { changes, heartbeats }
  }
}

/**
 * A node's health from the coordinator's view: dead scores 0, suspect at most 50, and a live node scores its disk
 * headroom (full disks cannot take writes) — the same disk curve as the daemon's own health.
 */
export function nodeHealthScore (node: Pick<NodeRecord, 'state' | 'usedBytes' | 'capacityBytes'>): number {
  if (node.state === 'dead') return 0
  const disk = diskComponent(node.usedBytes, node.capacityBytes).score
  return Math.round(node.state === 'suspect' ? Math.min(50, disk) : disk)
}

/**
 * Mirrors the registry into the gauges: registered nodes, per-node health and chunks (members by state come from
 * SWIM, which sees the whole federation). Not the
 * storage_* gauges: those are what this process stores, 0 on a coordinator, so summing them over every daemon
 * counts each node once.
 */
export function recordNodes (metrics: CollectiveMetrics, nodes: NodeRecord[]): void {
  metrics.registeredNodes.set(nodes.length)
  for (const n of nodes) {
    metrics.nodeHealthScore.set({ node: n.name }, nodeHealthScore(n))
    metrics.placementNodeChunks.set({ node: n.name }, n.chunkCount)
  }
}
