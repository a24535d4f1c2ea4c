import { TopicValidatorResult } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import type { RevocationRecord, RevocationStore } from '../permissions/index.js'
import type { Host } from '../net/host.js'
import type { PeerIdentities } from '../net/peer-identities.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'

/** Spec: protocols/revocations.md */
export const REVOCATIONS_TOPIC = '/collective/revocations/1'

export interface RevocationGossipInit {
  /**
   * How often every known revocation is published again (default 30 s), so a peer that was away when one spread
   * learns it; peers that know a record ignore it without forwarding, so this costs one message per record per
   * period from each peer.
   */
  republishIntervalMs?: number
  /** At most this many records are republished per period, newest first (default 64) */
  maxRepublish?: number
}

export interface RevocationGossipComponents {
  host: Host
  store: RevocationStore
  identities: PeerIdentities
  logger: ComponentLogger
  /** Told about every newly applied revocation, after its peers were disconnected */
  onRevoked?: (record: RevocationRecord, disconnected: number) => void
}

/**
 * Spreads revocations federation-wide and acts on them: each record verifies on its own (signed by the CA that
 * issued what it revokes), so anyone may relay it. A peer that applies one refuses the revoked certificate (or
 * every certificate of a revoked member) in every later handshake, and closes the connections it holds to them.
 */
export class RevocationGossip {
  private readonly components: RevocationGossipComponents
  private readonly republishIntervalMs: number
  private readonly maxRepublish: number
  private readonly log: Logger
  private timer?: ReturnType<typeof setInterval>

  constructor (components: RevocationGossipComponents, init: RevocationGossipInit = {}) {
    this.components = components
    this.republishIntervalMs = init.republishIntervalMs ?? 30_000
    this.maxRepublish = init.maxRepublish ?? 64
    this.log = components.logger.forComponent('collective:access:revocations')
  }

  async start (): Promise<void> {
    const { pubsub } = this.components.host.services
    pubsub.topicValidators.set(REVOCATIONS_TOPIC, async (_from, message) => {
      try {
        const { record, isNew } = await this.components.store.add(message.data)
        if (!isNew) return TopicValidatorResult.Ignore
        await this.enforce(record)
        return TopicValidatorResult.Accept
      } catch (err: any) {
        this.log('rejected revocation - %s: %s', err.name, err.message)
        return TopicValidatorResult.Reject
      }
    })
    pubsub.subscribe(REVOCATIONS_TOPIC)
    this.timer = setInterval(() => { void this.republish() }, this.republishIntervalMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    const { pubsub } = this.components.host.services
    pubsub.unsubscribe(REVOCATIONS_TOPIC)
    pubsub.topicValidators.delete(REVOCATIONS_TOPIC)
  }

  /** Applies a record made by a CA holder (the CLI) here, and tells the federation */
  async publish (bytes: Uint8Array): Promise<{ record: RevocationRecord, disconnected: number }> {
    const { record } = await this.components.store.add(bytes)
    const disconnected = await this.enforce(record)
    await this.send(record.bytes)
    return { record, disconnected }
  }

  list (): RevocationRecord[] {
    return this.components.store.list()
  }

  private async send (bytes: Uint8Array): Promise<void> {
    try {
      await this.components.host.services.pubsub.publish(REVOCATIONS_TOPIC, bytes)
    } catch (err: any) {
      this.log('revocation not published now, the next round tries again - %s', err.message)
    }
  }

  private async republish (): Promise<void> {
    for (const bytes of this.components.store.since(0).slice(-this.maxRepublish)) await this.send(bytes)
  }

  /** Closes every connection to what the record revokes; returns how many peers were cut off */
  private async enforce (record: RevocationRecord): Promise<number> {
    const { host, identities } = this.components
    const peers = new Set<string>()
    if (record.peerId != null) peers.add(record.peerId)
    if (record.kind === 'member') {
      for (const id of identities.all()) if (id.memberCaFingerprint === record.fingerprint) peers.add(id.peerId)
    }
    let disconnected = 0
    for (const peer of peers) {
      if (host.getConnections(peerIdFromString(peer)).length === 0) continue
      await host.hangUp(peerIdFromString(peer)).catch(err => { this.log('could not disconnect %s - %s', peer, err.message) })
      identities.delete(peer)
      disconnected++
    }
    this.log('applied revocation of %s %s; disconnected %d peer(s)', record.kind, record.name, disconnected)
    this.components.onRevoked?.(record, disconnected)
    return disconnected
  }
}
