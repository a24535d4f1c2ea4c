import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import { AnnouncedState, NodeList } from '../gen/announce.js'
import { parseFederatedName } from '../identity/names.js'
import { CoordinatorTopic, InvalidAnnouncementError } from './coordinator-topic.js'
import type { CoordinatorTopicComponents } from './coordinator-topic.js'
import type { VerifiedIdentity } from '../identity/index.js'
import type { NodeRecord, NodeState } from '../node-registry/registry.js'

/** Spec: protocols/nodes.md (envelope: announce.md) */
export const NODES_TOPIC = '/collective/nodes/1'

export const NODE_LIST_LIMITS = {
  maxNodes: 256,
  maxAddrsPerNode: 16
}

export interface NodeAnnouncementsInit {
  /** How often a coordinator announces its nodes (default 5 s) */
  intervalMs?: number
  /** An announcement not renewed for this long is dropped with its nodes (default 3 intervals) */
  staleAfterMs?: number
}

export interface NodeAnnouncementsComponents extends CoordinatorTopicComponents {
  /** The nodes this daemon speaks for; only a coordinator has them (others only listen) */
  localNodes?: () => NodeRecord[]
}

/** A node of another member, as its coordinator last announced it */
export interface RemoteNode extends NodeRecord {
  /** Peer ID of the coordinator that announced it */
  announcedBy: string
  /** When its coordinator's announcement arrived */
  announcedAt: number
}

const STATE_OF: Record<AnnouncedState, NodeState> = {
  [AnnouncedState.ALIVE]: 'alive',
  [AnnouncedState.SUSPECT]: 'suspect',
  [AnnouncedState.DEAD]: 'dead'
}
const ANNOUNCED_STATE: Record<NodeState, AnnouncedState> = { alive: AnnouncedState.ALIVE, suspect: AnnouncedState.SUSPECT, dead: AnnouncedState.DEAD }

/**
 * Storage nodes of the whole federation, over gossipsub: a coordinator announces the nodes of its own member,
 * and every daemon keeps the newest verified announcement of every other coordinator. Liveness comes from SWIM;
 * this carries the capacity and addresses that placement needs.
 */
export class NodeAnnouncements {
  private readonly components: NodeAnnouncementsComponents
  private readonly topic: CoordinatorTopic<RemoteNode[]>

  constructor (components: NodeAnnouncementsComponents, init: NodeAnnouncementsInit = {}) {
    this.components = components
    const localNodes = components.localNodes
    this.topic = new CoordinatorTopic(components, {
      topic: NODES_TOPIC,
      ...init,
      payload: localNodes == null ? undefined : () => NodeList.encode({ nodes: localNodes().slice(0, NODE_LIST_LIMITS.maxNodes).map(toAnnounced) }),
      accept: async (payload, coordinator) => await this.accept(payload, coordinator)
    })
  }

  async start (): Promise<void> {
    await this.topic.start()
  }

  async stop (): Promise<void> {
    await this.topic.stop()
  }

  /** Publishes this coordinator's nodes now (also called when one of them changes state) */
  async announce (): Promise<void> {
    await this.topic.announce()
  }

  private async accept (payload: Uint8Array, coordinator: VerifiedIdentity): Promise<RemoteNode[]> {
    const list = NodeList.decode(payload, { limits: { nodes: NODE_LIST_LIMITS.maxNodes, nodes$: { addrs: NODE_LIST_LIMITS.maxAddrsPerNode } } })
    const receivedAt = this.components.now?.() ?? Date.now()
    const nodes = list.nodes.map(n => {
      const { domain } = parseFederatedName(n.name)
      if (domain !== coordinator.domain) throw new InvalidAnnouncementError(`${coordinator.name} announced ${n.name}, a node outside its domain`)
      return {
        peerId: peerIdFromBytes(n.peerId).toString(),
        name: n.name,
        domain,
        capacityBytes: n.capacityBytes,
        usedBytes: n.usedBytes,
        chunkCount: n.chunkCount,
        addrs: n.addrs.map(a => multiaddr(a).toString()),
        registeredAt: receivedAt,
        lastSeen: receivedAt,
        state: STATE_OF[n.state] ?? 'dead',
        ...(n.draining ? { draining: true } : {}),
        announcedBy: coordinator.peerId,
        announcedAt: receivedAt
      }
    })
    // Chunks are fetched from these nodes by peer ID; the peer store must know where they listen.
    for (const n of nodes) {
      await this.components.host.peerStore.merge(peerIdFromString(n.peerId), { multiaddrs: n.addrs.map(a => multiaddr(a)) }).catch(() => {})
    }
    return nodes
  }

  /** Nodes of other members from announcements still fresh */
  remoteNodes (): RemoteNode[] {
    return this.topic.current().flatMap(h => h.value)
  }

  /** The coordinators whose announcements are held, with the identity their chain proved */
  coordinators (): VerifiedIdentity[] {
    return this.topic.current().map(h => h.coordinator)
  }
}

function toAnnounced (n: NodeRecord): NodeList['nodes'][number] {
  return {
    peerId: new Uint8Array(peerIdFromString(n.peerId).toMultihash().bytes),
    name: n.name,
    capacityBytes: n.capacityBytes,
    usedBytes: n.usedBytes,
    chunkCount: n.chunkCount,
    addrs: n.addrs.slice(0, NODE_LIST_LIMITS.maxAddrsPerNode).map(a => multiaddr(a).bytes),
    state: ANNOUNCED_STATE[n.state],
    draining: n.draining === true
  }
}

function peerIdFromBytes (bytes: Uint8Array): ReturnType<typeof peerIdFromMultihash> {
  return peerIdFromMultihash(Digest.decode(bytes))
}
