import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { handleRequests } from '../net/rpc.js'
import { NodeReport, NodeReportResponse } from '../gen/node.js'
import { NODE_PROTOCOL, NODE_PROTOCOL_LIMITS, MAX_CORRUPT_PER_REPORT, NotANodeError, ForeignNodeError } from './protocol.js'
import type { Host } from '../net/host.js'
import type { PeerIdentities } from '../net/peer-identities.js'
import type { VerifiedIdentity } from '../identity/index.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'

export type NodeState = 'alive' | 'suspect' | 'dead'

export interface NodeRecord {
  peerId: string
  name: string
  /** The member domain the node belongs to (placement spreads replicas across members) */
  domain?: string
  capacityBytes: number
  usedBytes: number
  chunkCount: number
  addrs: string[]
  registeredAt: number
  lastSeen: number
  state: NodeState
  /** An operator is draining it: no new chunks go to it, and repair moves its chunks elsewhere */
  draining?: boolean
}

export interface NodeRegistryInit {
  /** How often nodes are asked to report (default 5 s) */
  heartbeatIntervalMs?: number
  /** A node silent this long is suspect (default 3 heartbeats) */
  suspectAfterMs?: number
  /** A node silent this long is dead (default 6 heartbeats) */
  deadAfterMs?: number
  /** Told about every refused report (a node of another member, a peer that is not a node) */
  onRefused?: (event: { peerId: string, name?: string, reason: string, message: string }) => void
  /** Told about chunks a node's scrubber found corrupt (and deleted) since its last accepted report */
  onCorruptChunks?: (peerId: string, cids: string[]) => void
}

export interface NodeRegistryComponents {
  host: Host
  identities: PeerIdentities
  /** This coordinator's own identity: only nodes of the same member may register */
  identity: VerifiedIdentity
  logger: ComponentLogger
  now?: () => number
  /** Nodes being drained; shown as `draining` in the records */
  drains?: { has: (peerId: string) => boolean }
}

/**
 * The coordinator's registry of its member's storage nodes. Nodes report capacity and addresses on a heartbeat;
 * a node's state is derived from the age of its last report, so there is no timer to keep in step.
 */
export class NodeRegistry {
  private readonly components: NodeRegistryComponents
  private readonly nodes = new Map<string, Omit<NodeRecord, 'state'>>()
  private readonly heartbeatIntervalMs: number
  private readonly suspectAfterMs: number
  private readonly deadAfterMs: number
  private readonly log: Logger
  private readonly onRefused?: NodeRegistryInit['onRefused']
  private readonly onCorruptChunks?: NodeRegistryInit['onCorruptChunks']

  constructor (components: NodeRegistryComponents, init: NodeRegistryInit = {}) {
    this.components = components
    this.onRefused = init.onRefused
    this.onCorruptChunks = init.onCorruptChunks
    this.heartbeatIntervalMs = init.heartbeatIntervalMs ?? 5_000
    this.suspectAfterMs = init.suspectAfterMs ?? this.heartbeatIntervalMs * 3
    this.deadAfterMs = init.deadAfterMs ?? this.heartbeatIntervalMs * 6
    this.log = components.logger.forComponent('collective:node-registry')
  }

  async start (): Promise<void> {
    await handleRequests(this.components.host, NODE_PROTOCOL, NodeReport, NodeReportResponse,
      async (report, { remotePeer }) => await this.onReport(remotePeer.toString(), report), NODE_PROTOCOL_LIMITS, this.log)
  }

  async stop (): Promise<void> {
    await this.components.host.unhandle(NODE_PROTOCOL)
  }

  private now (): number {
    return this.components.now?.() ?? Date.now()
  }

  private async onReport (peerId: string, report: NodeReport): Promise<NodeReportResponse> {
    const identity = this.components.identities.get(peerId)
    const refuse = (err: Error): NodeReportResponse => {
      this.log.error('refused node report from %s - %s', identity?.name ?? peerId, err.message)
      this.onRefused?.({ peerId, name: identity?.name, reason: err.name, message: err.message })
      return { accepted: false, error: err.name, message: err.message, heartbeatIntervalMs: this.heartbeatIntervalMs }
    }
    if (identity == null || identity.role !== 'node') {
      return refuse(new NotANodeError(`${identity?.name ?? peerId} is certified as ${identity?.role ?? 'nothing'}, not as a node`))
    }
    if (identity.domain !== this.components.identity.domain) {
      return refuse(new ForeignNodeError(`${identity.name} belongs to ${identity.domain}; this coordinator only registers nodes of ${this.components.identity.domain}`))
    }
    const addrs: Multiaddr[] = []
    for (const bytes of report.addrs.slice(0, 16)) {
      try { addrs.push(multiaddr(bytes)) } catch {}
    }
    // Chunk transfers dial nodes by peer ID; the peer store must know where to find them after a reconnect.
    await this.components.host.peerStore.merge(peerIdFromString(peerId), { multiaddrs: addrs })
    const now = this.now()
    const previous = this.nodes.get(peerId)
    if (previous == null) this.log('node %s registered', identity.name)
    this.nodes.set(peerId, {
      peerId,
      name: identity.name,
      domain: identity.domain,
      capacityBytes: Number(report.capacityBytes),
      usedBytes: Number(report.usedBytes),
      chunkCount: Number(report.chunkCount),
      addrs: addrs.map(String),
      registeredAt: previous?.registeredAt ?? now,
      lastSeen: now
    })
    const corrupt = report.corruptCids.slice(0, MAX_CORRUPT_PER_REPORT)
    if (corrupt.length > 0) {
      this.log('node %s reports %d corrupt chunks', identity.name, corrupt.length)
      this.onCorruptChunks?.(peerId, corrupt)
    }
    return { accepted: true, error: '', message: '', heartbeatIntervalMs: this.heartbeatIntervalMs }
  }

  private stateOf (lastSeen: number): NodeState {
    const age = this.now() - lastSeen
    if (age >= this.deadAfterMs) return 'dead'
    if (age >= this.suspectAfterMs) return 'suspect'
    return 'alive'
  }

  list (): NodeRecord[] {
    return [...this.nodes.values()]
      .map(n => this.record(n))
      .sort((a, b) => a.name.localeCompare(b.name))
  }

  get (peerId: string): NodeRecord | undefined {
    const n = this.nodes.get(peerId)
    return n == null ? undefined : this.record(n)
  }

  private record (n: Omit<NodeRecord, 'state'>): NodeRecord {
    const record: NodeRecord = { ...n, state: this.stateOf(n.lastSeen) }
    if (this.components.drains?.has(n.peerId) === true) record.draining = true
    return record
  }
}
