import type { NodeState } from '../node-registry/registry.js'

/** How a node stands in the reader's view: its liveness, and how many requests this daemon has on it now */
export interface ReplicaStanding {
  /** livenessRank of its state */
  rank: number
  /** Requests in flight to or waiting for the node */
  load: number
}

/** 0 for a live node, 1 for a suspect one, 2 for a dead or unknown one: the order copies are read and repaired from */
export function livenessRank (state: NodeState | undefined): number {
  return state === 'alive' ? 0 : state === 'suspect' ? 1 : 2
}

/**
 * The order to try a chunk's copies in: live nodes before suspect ones before dead ones; among equals the least
 * busy first, and between equally busy ones a random pick. A fixed order (by peer ID, as the metadata lists them)
 * sent every read of a chunk to the same copy, so one node served most of a file while its peers idled; the
 * requests in flight are the load signal a reader has at hand, and a slow node holds them longer, so it is asked
 * less.
 */
export function replicaOrder<T> (replicas: readonly T[], standing: (replica: T) => ReplicaStanding, random: () => number = Math.random): T[] {
  return replicas
    .map(replica => ({ replica, ...standing(replica), tie: random() }))
    .sort((a, b) => a.rank - b.rank || a.load - b.load || a.tie - b.tie)
    .map(r => r.replica)
}
