import type { DurabilitySummary, MetadataStore } from '../metadata/store.js'
import type { NodeRecord } from '../node-registry/registry.js'

/** Copies of one part of the namespace on one node (contract of the `durability` control method) */
export interface DurabilityNode {
  peerId: string
  /** The node's federated name, or its peer ID when no longer known */
  name: string
  /** 'unknown' for a node no longer registered or announced */
  state: string
  draining?: boolean
  chunks: number
  bytes: number
}

export interface DurabilityMember {
  /** Member domain; '(unknown)' for nodes nobody knows any more */
  domain: string
  chunks: number
  bytes: number
  nodes: DurabilityNode[]
}

/**
 * One DataStore's durability. DataStores do not exist yet: the one group is the namespace, or the PATH subtree
 * asked for, so that per-DataStore groups can take its place without changing the shape.
 */
export interface DurabilityGroup extends Omit<DurabilitySummary, 'locations'> {
  path: string
  replication: number
  members: DurabilityMember[]
}

export interface DurabilityReport {
  dataStores: DurabilityGroup[]
}

/**
 * The durability of the files under `path`: a copy counts toward the replication factor only on a live,
 * non-draining node, as repair counts it; `members` says where every recorded copy is.
 */
export function durabilityReport (metadata: MetadataStore, nodes: NodeRecord[], path: string, replication: number): DurabilityReport {
  const counted = nodes.filter(n => n.state !== 'dead' && n.draining !== true).map(n => n.peerId)
  const summary = metadata.durability(path, counted, replication)
  const byPeer = new Map(nodes.map(n => [n.peerId, n]))
  const members = new Map<string, DurabilityMember>()
  for (const loc of summary.locations) {
    const node = byPeer.get(loc.peerId)
    const domain = node?.domain ?? '(unknown)'
    let member = members.get(domain)
    if (member == null) { member = { domain, chunks: 0, bytes: 0, nodes: [] }; members.set(domain, member) }
    member.chunks += loc.chunks
    member.bytes += loc.bytes
    const view: DurabilityNode = { peerId: loc.peerId, name: node?.name ?? loc.peerId, state: node?.state ?? 'unknown', chunks: loc.chunks, bytes: loc.bytes }
    if (node?.draining === true) view.draining = true
    member.nodes.push(view)
  }
  const { locations: _, ...totals } = summary
  return {
    dataStores: [{
      path,
      replication,
      ...totals,
      members: [...members.values()]
        .map(m => ({ ...m, nodes: m.nodes.sort((a, b) => a.name.localeCompare(b.name)) }))
        .sort((a, b) => a.domain.localeCompare(b.domain))
    }]
  }
}
