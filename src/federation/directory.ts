import { peerIdFromString } from '@libp2p/peer-id'
import { parseFederatedName } from '../identity/names.js'
import type { Host } from '../net/host.js'
import type { PeerIdentities } from '../net/peer-identities.js'
import type { VerifiedIdentity } from '../identity/index.js'
import type { NodeRecord, NodeState } from '../node-registry/registry.js'
import type { MemberRecord } from '../membership/index.js'
import type { NodeAnnouncements } from './announcements.js'
import type { MemberView, MemberPeerView } from '../cli/commands/members.js'
import type { AbortOptions, PeerId } from '@libp2p/interface'

export class UnknownPeerNameError extends Error {
  static name = 'UnknownPeerNameError'
  name = 'UnknownPeerNameError'
}

export class PeerNotFoundError extends Error {
  static name = 'PeerNotFoundError'
  name = 'PeerNotFoundError'
}

export interface FederationDirectoryComponents {
  host: Host
  /** This daemon's own certified identity */
  identity: VerifiedIdentity
  /** Certificates verified on live connections: the only proof of a peer's name and role */
  identities: PeerIdentities
  /** SWIM's view of every peer of the federation */
  membership: { members: () => MemberRecord[], get: (id: string) => MemberRecord | undefined }
  /** Other members' nodes, as their coordinators announced them */
  announcements?: NodeAnnouncements
  /** This member's own nodes (a coordinator's registry) */
  localNodes?: () => NodeRecord[]
}

export interface Resolved {
  peerId: string
  name?: string
  role?: string
  member?: string
  state?: string
  verified: boolean
  addrs: string[]
  /** Where the addresses came from: a live connection, membership, or a kad-dht lookup */
  source?: 'connection' | 'membership' | 'dht'
}

const WORST: Record<NodeState, number> = { alive: 0, suspect: 1, dead: 2 }

/**
 * One place that answers "who is in the federation and where": storage nodes for placement (this member's and
 * the others'), the member list for `members`, and name / peer-ID resolution. It joins three sources: SWIM for
 * liveness, coordinators' announcements for capacity, and verified certificates for names.
 */
export class FederationDirectory {
  private readonly components: FederationDirectoryComponents

  constructor (components: FederationDirectoryComponents) {
    this.components = components
  }

  /**
   * Storage nodes a write may place chunks on and a read may fetch from. This member's own nodes are as its
   * registry sees them: their heartbeats reach this coordinator directly, which is better evidence than SWIM's
   * second-hand view (a busy node can be falsely suspected by others). Another member's node is in the worse of
   * the states its coordinator announced and SWIM's: either one seeing it gone is reason enough not to send it
   * new chunks.
   */
  nodes (): NodeRecord[] {
    const { localNodes, announcements, membership } = this.components
    const local = localNodes?.() ?? []
    const seen = new Set(local.map(n => n.peerId))
    const out: NodeRecord[] = [...local]
    for (const n of announcements?.remoteNodes() ?? []) {
      if (seen.has(n.peerId)) continue
      seen.add(n.peerId)
      const swimState = toNodeState(membership.get(n.peerId)?.state)
      const state = swimState != null && WORST[swimState] > WORST[n.state] ? swimState : n.state
      out.push({ ...n, state })
    }
    return out
  }

  /** The federation grouped by member, each peer with its SWIM state; names proved by certificates where we hold one */
  members (): MemberView[] {
    const { identity, identities, membership } = this.components
    const byDomain = new Map<string, MemberView>()
    const add = (domain: string, member: string, peer: MemberPeerView): void => {
      let m = byDomain.get(domain)
      if (m == null) { m = { member, domain, peers: [] }; byDomain.set(domain, m) }
      if (m.member === '' && member !== '') m.member = member
      m.peers.push(peer)
    }
    for (const r of membership.members()) {
      const proved = r.id === identity.peerId ? identity : identities.get(r.id) ?? this.announcedIdentity(r.id)
      const name = proved?.name ?? r.meta.name
      const domain = proved?.domain ?? domainOf(name) ?? '(unknown)'
      add(domain, proved?.member ?? r.meta.member ?? '', {
        peerId: r.id,
        name,
        role: proved?.role ?? r.meta.role,
        state: r.state,
        changedAt: r.changedAt,
        incarnation: r.incarnation,
        version: r.version,
        verified: proved != null,
        self: r.id === identity.peerId ? true : undefined
      })
    }
    const roleOrder: Record<string, number> = { coordinator: 0, node: 1, client: 2 }
    return [...byDomain.values()]
      .map(m => ({ ...m, peers: m.peers.sort((a, b) => (roleOrder[a.role ?? ''] ?? 3) - (roleOrder[b.role ?? ''] ?? 3) || (a.name ?? a.peerId).localeCompare(b.name ?? b.peerId)) }))
      .sort((a, b) => a.domain.localeCompare(b.domain))
  }

  /** A node announced by a coordinator whose certificate chain verified: its name is vouched for by its member */
  private announcedIdentity (peerId: string): { name: string, domain: string, member: string, role: string } | undefined {
    const { announcements } = this.components
    const node = announcements?.remoteNodes().find(n => n.peerId === peerId)
    if (node == null) return undefined
    const coordinator = announcements?.coordinators().find(c => c.peerId === node.announcedBy)
    return { name: node.name, domain: node.domain ?? '', member: coordinator?.member ?? '', role: 'node' }
  }

  /**
   * Resolves a federated name or a peer ID to both, with the current addresses: from a live connection, from
   * membership, or — when neither knows the peer — from a kad-dht lookup.
   */
  async resolve (query: string, options: AbortOptions = {}): Promise<Resolved> {
    const peerId = this.findPeerId(query)
    const id = peerId.toString()
    const { host, identity, identities, membership } = this.components
    const proved = id === identity.peerId ? identity : identities.get(id) ?? this.announcedIdentity(id)
    const record = membership.get(id)
    const result: Resolved = {
      peerId: id,
      name: proved?.name ?? record?.meta.name,
      role: proved?.role ?? record?.meta.role,
      member: proved?.member ?? record?.meta.member,
      state: record?.state,
      verified: proved != null,
      addrs: []
    }
    if (id === identity.peerId) {
      return { ...result, addrs: host.getMultiaddrs().map(a => a.decapsulateCode(421).toString()), source: 'connection' }
    }
    // Listen addresses first: a connection the peer dialled shows only its ephemeral source port.
    if (record != null && record.addrs.length > 0) return { ...result, addrs: record.addrs, source: 'membership' }
    const connected = host.getConnections(peerId).filter(c => c.direction === 'outbound').map(c => c.remoteAddr.toString())
    if (connected.length > 0) return { ...result, addrs: connected, source: 'connection' }
    try {
      const info = await host.peerRouting.findPeer(peerId, options)
      return { ...result, addrs: info.multiaddrs.map(String), source: 'dht' }
    } catch (err: any) {
      if (options.signal?.aborted === true) throw err
      if (result.name == null) throw new PeerNotFoundError(`no peer ${id} is known to membership, and kad-dht did not find it (${err.name as string})`)
      return result
    }
  }

  private findPeerId (query: string): PeerId {
    if (query.includes('@')) {
      parseFederatedName(query)
      const { identity, identities, membership, announcements } = this.components
      if (identity.name === query) return peerIdFromString(identity.peerId)
      const found = identities.byName(query)?.peerId ??
        announcements?.remoteNodes().find(n => n.name === query)?.peerId ??
        announcements?.coordinators().find(c => c.name === query)?.peerId ??
        membership.members().find(r => r.meta.name === query)?.id
      if (found == null) throw new UnknownPeerNameError(`no peer named ${query} is known to this daemon's membership`)
      return peerIdFromString(found)
    }
    try {
      return peerIdFromString(query)
    } catch {
      throw new UnknownPeerNameError(`"${query}" is neither a federated name (local@domain) nor a peer ID`)
    }
  }
}

function toNodeState (state: string | undefined): NodeState | undefined {
  if (state === 'alive' || state === 'suspect' || state === 'dead') return state
  if (state === 'left') return 'dead'
  return undefined
}

function domainOf (name: string | undefined): string | undefined {
  if (name == null) return undefined
  const at = name.indexOf('@')
  return at < 0 ? undefined : name.slice(at + 1)
}
