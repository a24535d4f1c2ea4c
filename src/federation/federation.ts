import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { Libp2pMembership } from '../membership/index.js'
import { sleep } from '../util/backoff.js'
import { NodeAnnouncements } from './announcements.js'
import { FederationDirectory } from './directory.js'
import type { FederationConfig } from '../daemon/config.js'
import type { Host } from '../net/host.js'
import type { PeerIdentities } from '../net/peer-identities.js'
import type { TrustStore, VerifiedIdentity } from '../identity/index.js'
import type { NodeRecord } from '../node-registry/registry.js'
import type { Libp2pMembershipComponents, MemberChangeEvent, Swim } from '../membership/index.js'
import type { ComponentLogger, Logger, PrivateKey } from '@libp2p/interface'

export interface FederationComponents {
  host: Host
  privateKey: PrivateKey
  trustStore: TrustStore
  /** This daemon's certificate chain (DER, leaf first) */
  chain: Uint8Array[]
  identity: VerifiedIdentity
  identities: PeerIdentities
  /** A coordinator's registry of its own nodes: it announces them, and places chunks on them */
  localNodes?: () => NodeRecord[]
  logger: ComponentLogger
  /** Told about every membership change (for operator logs and metrics) */
  onMemberChange?: (event: MemberChangeEvent) => void
  /** Told about every SWIM probe and anti-entropy exchange this daemon started (metrics) */
  onExchange?: Libp2pMembershipComponents['onExchange']
}

export interface FederationInit extends FederationConfig {
  /**
   * Peers to join through, as multiaddrs ending in /p2p/<peer id>: a coordinator's `federation.bootstrap`, a
   * node's own coordinator. Joining is retried in the background until one answers.
   */
  seeds: string[]
}

/** Longest wait between attempts to join through the seeds, while none answers */
const MAX_JOIN_BACKOFF_MS = 30_000

/**
 * This daemon's place in the federation: SWIM membership (liveness of every coordinator and node, over
 * `/collective/swim` and `/collective/sync`), the storage nodes every coordinator announces on gossipsub, and the
 * directory that answers "who is where" from both.
 */
export class Federation {
  readonly swim: Swim
  readonly announcements: NodeAnnouncements
  readonly directory: FederationDirectory
  private readonly components: FederationComponents
  private readonly init: FederationInit
  private readonly membership: Libp2pMembership
  private readonly log: Logger
  private joining?: { controller: AbortController, done: Promise<void> }

  constructor (components: FederationComponents, init: FederationInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('collective:federation')
    const { host, identity, identities, logger } = components
    this.membership = new Libp2pMembership({
      host,
      logger,
      privateKey: components.privateKey,
      onExchange: components.onExchange,
      // Only peers whose certificate we verified may take part: storage and coordination roles, never clients.
      authorize: (peer: string) => {
        const id = identities.get(peer)
        return id != null && (id.role === 'coordinator' || id.role === 'node')
      }
    }, {
      self: { id: identity.peerId, addrs: this.listenAddrs(), meta: { name: identity.name, role: identity.role, member: identity.member } },
      probeIntervalMs: init.probeIntervalMs,
      probeTimeoutMs: init.probeTimeoutMs,
      suspicionTimeoutMs: init.suspicionTimeoutMs,
      syncIntervalMs: init.syncIntervalMs
    })
    this.swim = this.membership.swim
    this.announcements = new NodeAnnouncements({
      host,
      trustStore: components.trustStore,
      chain: components.chain,
      identity,
      localNodes: components.localNodes,
      logger
    }, { intervalMs: init.announceIntervalMs })
    this.directory = new FederationDirectory({
      host,
      identity,
      identities,
      membership: this.swim,
      announcements: this.announcements,
      localNodes: components.localNodes
    })
  }

  async start (): Promise<void> {
    this.swim.addEventListener('member:change', e => { this.onMemberChange(e.detail) })
    await this.membership.start()
    await this.announcements.start()
    const controller = new AbortController()
    this.joining = { controller, done: this.joinLoop(controller.signal) }
  }

  async stop (): Promise<void> {
    this.joining?.controller.abort(new Error('stopping'))
    await this.joining?.done
    await this.announcements.stop()
    // Leaving tells the others at once, instead of letting them suspect us for a suspicion timeout.
    await this.swim.leave({ signal: AbortSignal.timeout(2_000) }).catch(() => {})
    await this.membership.stop()
  }

  private listenAddrs (): string[] {
    return this.components.host.getMultiaddrs().map(a => a.decapsulateCode(421).toString())
  }

  private onMemberChange (event: MemberChangeEvent): void {
    const { member } = event
    // A coordinator's nodes changing state is news for every other member's placement.
    if (this.components.localNodes?.().some(n => n.peerId === member.id) === true) void this.announcements.announce()
    this.components.onMemberChange?.(event)
  }

  /** Joins through the seeds, retrying with backoff while none answers; a lone member with no seeds is done at once */
  private async joinLoop (signal: AbortSignal): Promise<void> {
    const seeds = this.init.seeds.map(s => multiaddr(s))
    if (seeds.length === 0) return
    let delay = 500
    while (!signal.aborted) {
      const ids: string[] = []
      for (const seed of seeds) {
        const id = seed.getComponents().filter(c => c.name === 'p2p').pop()?.value
        if (id == null || id === this.components.identity.peerId) continue
        await this.components.host.peerStore.merge(peerIdFromString(id), { multiaddrs: [seed.decapsulateCode(421)] }).catch(() => {})
        ids.push(id)
      }
      try {
        await this.swim.join(ids, { signal })
        this.log('joined the federation through %s', ids.join(', '))
        return
      } catch (err: any) {
        if (signal.aborted) return
        this.log('joining through %s failed, retrying in %d ms - %s', ids.join(', '), delay, err.message)
      }
      try { await sleep(delay * (0.5 + Math.random() / 2), signal) } catch { return }
      delay = Math.min(delay * 2, MAX_JOIN_BACKOFF_MS)
    }
  }
}
