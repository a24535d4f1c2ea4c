import { TopicValidatorResult } from '@libp2p/gossipsub'
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import { AnnouncedState, NodeAnnouncement } from '../gen/announce.js'
import { parseFederatedName } from '../identity/names.js'
import type { Host } from '../net/host.js'
import type { TrustStore, VerifiedIdentity } from '../identity/index.js'
import type { NodeRecord, NodeState } from '../node-registry/registry.js'
import type { Message } from '@libp2p/gossipsub'
import type { ComponentLogger, Logger, PeerId } from '@libp2p/interface'

/** Spec: protocols/announce.md */
export const NODES_TOPIC = '/collective/nodes/1'

export const ANNOUNCEMENT_LIMITS = {
  maxMessageBytes: 256 * 1024,
  maxNodes: 256,
  maxAddrsPerNode: 16
}

export class InvalidAnnouncementError extends Error {
  static name = 'InvalidAnnouncementError'
  name = 'InvalidAnnouncementError'
}

export interface NodeAnnouncementsInit {
  /** How often a coordinator announces its nodes (default 5 s) */
  intervalMs?: number
  /** An announcement not renewed for this long is dropped with its nodes (default 3 intervals) */
  staleAfterMs?: number
}

export interface NodeAnnouncementsComponents {
  host: Host
  trustStore: TrustStore
  /** This daemon's own certificate chain (DER, leaf first), sent with every announcement */
  chain: Uint8Array[]
  identity: VerifiedIdentity
  /** The nodes this daemon speaks for; only a coordinator has them (others only listen) */
  localNodes?: () => NodeRecord[]
  logger: ComponentLogger
  now?: () => number
}

/** A node of another member, as its coordinator last announced it */
export interface RemoteNode extends NodeRecord {
  /** Peer ID of the coordinator that announced it */
  announcedBy: string
  /** When its coordinator's announcement arrived */
  announcedAt: number
}

interface HeldAnnouncement {
  coordinator: VerifiedIdentity
  version: number
  receivedAt: number
  nodes: RemoteNode[]
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
  private readonly intervalMs: number
  private readonly staleAfterMs: number
  private readonly held = new Map<string, HeldAnnouncement>()
  private readonly log: Logger
  private timer?: ReturnType<typeof setInterval>
  private lastVersion = 0

  constructor (components: NodeAnnouncementsComponents, init: NodeAnnouncementsInit = {}) {
    this.components = components
    this.intervalMs = init.intervalMs ?? 5_000
    this.staleAfterMs = init.staleAfterMs ?? this.intervalMs * 3
    this.log = components.logger.forComponent('collective:federation:announcements')
  }

  async start (): Promise<void> {
    const { pubsub } = this.components.host.services
    pubsub.topicValidators.set(NODES_TOPIC, async (_from, message) => await this.validate(message))
    pubsub.subscribe(NODES_TOPIC)
    if (this.components.localNodes != null) {
      this.timer = setInterval(() => { void this.announce() }, this.intervalMs)
      this.timer.unref()
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    const { pubsub } = this.components.host.services
    pubsub.unsubscribe(NODES_TOPIC)
    pubsub.topicValidators.delete(NODES_TOPIC)
  }

  private now (): number {
    return this.components.now?.() ?? Date.now()
  }

  /** Publishes this coordinator's nodes now (also called when one of them changes state) */
  async announce (): Promise<void> {
    const localNodes = this.components.localNodes
    if (localNodes == null) return
    // Wall clock, kept strictly increasing: survives restarts without any stored counter.
    this.lastVersion = Math.max(this.now(), this.lastVersion + 1)
    const message = NodeAnnouncement.encode({
      chain: this.components.chain as Array<Uint8Array<ArrayBuffer>>,
      version: this.lastVersion,
      nodes: localNodes().slice(0, ANNOUNCEMENT_LIMITS.maxNodes).map(n => ({
        peerId: peerIdBytes(n.peerId),
        name: n.name,
        capacityBytes: n.capacityBytes,
        usedBytes: n.usedBytes,
        chunkCount: n.chunkCount,
        addrs: n.addrs.slice(0, ANNOUNCEMENT_LIMITS.maxAddrsPerNode).map(a => multiaddr(a).bytes),
        state: ANNOUNCED_STATE[n.state]
      }))
    })
    try {
      await this.components.host.services.pubsub.publish(NODES_TOPIC, message)
    } catch (err: any) {
      // No subscriber yet (a lone member) is normal; the next interval tries again.
      this.log('announcement not published - %s', err.message)
    }
  }

  private async validate (message: Message): Promise<TopicValidatorResult> {
    try {
      return await this.accept(message)
    } catch (err: any) {
      this.log('rejected node announcement - %s: %s', err.name, err.message)
      return TopicValidatorResult.Reject
    }
  }

  private async accept (message: Message): Promise<TopicValidatorResult> {
    if (message.type !== 'signed') throw new InvalidAnnouncementError('announcement is not signed')
    if (message.data.byteLength > ANNOUNCEMENT_LIMITS.maxMessageBytes) throw new InvalidAnnouncementError(`announcement of ${message.data.byteLength} bytes is over the limit`)
    const announcement = NodeAnnouncement.decode(message.data, {
      limits: { chain: 4, nodes: ANNOUNCEMENT_LIMITS.maxNodes, nodes$: { addrs: ANNOUNCEMENT_LIMITS.maxAddrsPerNode } }
    })
    const coordinator = await this.components.trustStore.verifyChain(announcement.chain, message.from)
    if (coordinator.role !== 'coordinator') throw new InvalidAnnouncementError(`${coordinator.name} is a ${coordinator.role}, not a coordinator`)
    const from = coordinator.peerId
    if (from === this.components.identity.peerId) return TopicValidatorResult.Ignore
    const previous = this.held.get(from)
    if (previous != null && previous.version >= announcement.version) return TopicValidatorResult.Ignore
    const receivedAt = this.now()
    const nodes = announcement.nodes.map(n => {
      const peerId = peerIdFromBytes(n.peerId).toString()
      const { domain } = parseFederatedName(n.name)
      if (domain !== coordinator.domain) throw new InvalidAnnouncementError(`${coordinator.name} announced ${n.name}, a node outside its domain`)
      return {
        peerId,
        name: n.name,
        domain,
        capacityBytes: n.capacityBytes,
        usedBytes: n.usedBytes,
        chunkCount: n.chunkCount,
        addrs: n.addrs.map(a => multiaddr(a).toString()),
        registeredAt: receivedAt,
        lastSeen: receivedAt,
        state: STATE_OF[n.state] ?? 'dead',
        announcedBy: from,
        announcedAt: receivedAt
      }
    })
    this.held.set(from, { coordinator, version: announcement.version, receivedAt, nodes })
    // Chunks are fetched from these nodes by peer ID; the peer store must know where they listen.
    for (const n of nodes) {
      await this.components.host.peerStore.merge(peerIdFromBytes(peerIdBytes(n.peerId)), { multiaddrs: n.addrs.map(a => multiaddr(a)) }).catch(() => {})
    }
    return TopicValidatorResult.Accept
  }

  /** Nodes of other members from announcements still fresh */
  remoteNodes (): RemoteNode[] {
    const now = this.now()
    const out: RemoteNode[] = []
    for (const [from, a] of this.held) {
      if (now - a.receivedAt > this.staleAfterMs) {
        this.held.delete(from)
        continue
      }
      out.push(...a.nodes)
    }
    return out
  }

  /** The coordinators whose announcements are held, with the identity their chain proved */
  coordinators (): VerifiedIdentity[] {
    return [...this.held.values()].map(a => a.coordinator)
  }
}

function peerIdBytes (id: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(peerIdFromString(id).toMultihash().bytes)
}

function peerIdFromBytes (bytes: Uint8Array): PeerId {
  return peerIdFromMultihash(Digest.decode(bytes))
}
