import { TopicValidatorResult } from '@libp2p/gossipsub'
import { CoordinatorAnnouncement } from '../gen/announce.js'
import type { Host } from '../net/host.js'
import type { TrustStore, VerifiedIdentity } from '../identity/index.js'
import type { Message } from '@libp2p/gossipsub'
import type { ComponentLogger, Logger } from '@libp2p/interface'

export class InvalidAnnouncementError extends Error {
  static name = 'InvalidAnnouncementError'
  name = 'InvalidAnnouncementError'
}

export interface CoordinatorTopicInit<T> {
  /** The gossipsub topic */
  topic: string
  /** How often this coordinator announces (default 5 s) */
  intervalMs?: number
  /** An announcement not renewed for this long is dropped (default 3 intervals) */
  staleAfterMs?: number
  /** Largest message accepted (default 256 KiB) */
  maxMessageBytes?: number
  /** This coordinator's current payload; absent on daemons that only listen */
  payload?: () => Uint8Array<ArrayBuffer>
  /**
   * Decodes and checks another coordinator's payload against the identity its chain proved; throws to reject
   * the whole message (it is then not forwarded, and the sender's gossipsub score drops)
   */
  accept: (payload: Uint8Array, coordinator: VerifiedIdentity) => T | Promise<T>
}

export interface CoordinatorTopicComponents {
  host: Host
  trustStore: TrustStore
  /** This daemon's own certificate chain (DER, leaf first), sent with every announcement */
  chain: Uint8Array[]
  identity: VerifiedIdentity
  logger: ComponentLogger
  now?: () => number
}

export interface Held<T> {
  coordinator: VerifiedIdentity
  version: number
  receivedAt: number
  value: T
}

/**
 * A gossipsub topic on which every coordinator speaks for its own member (spec: protocols/announce.md). Each
 * message carries the publisher's certificate chain, which every receiver verifies for the message's signer, so a
 * relayed message is checked as well as a direct one; only coordinators may publish; the newest message of each
 * coordinator wins, and one not renewed in time is dropped with what it said.
 */
export class CoordinatorTopic<T> {
  private readonly components: CoordinatorTopicComponents
  private readonly init: CoordinatorTopicInit<T>
  private readonly intervalMs: number
  private readonly staleAfterMs: number
  private readonly maxMessageBytes: number
  private readonly held = new Map<string, Held<T>>()
  private readonly log: Logger
  private timer?: ReturnType<typeof setInterval>
  private lastVersion = 0

  constructor (components: CoordinatorTopicComponents, init: CoordinatorTopicInit<T>) {
    this.components = components
    this.init = init
    this.intervalMs = init.intervalMs ?? 5_000
    this.staleAfterMs = init.staleAfterMs ?? this.intervalMs * 3
    this.maxMessageBytes = init.maxMessageBytes ?? 256 * 1024
    this.log = components.logger.forComponent(`collective:federation:topic${init.topic.replace(/\//g, ':')}`)
  }

  async start (): Promise<void> {
    const { pubsub } = this.components.host.services
    pubsub.topicValidators.set(this.init.topic, async (_from, message) => await this.validate(message))
    pubsub.subscribe(this.init.topic)
    if (this.init.payload != null) {
      this.timer = setInterval(() => { void this.announce() }, this.intervalMs)
      this.timer.unref()
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    const { pubsub } = this.components.host.services
    pubsub.unsubscribe(this.init.topic)
    pubsub.topicValidators.delete(this.init.topic)
  }

  private now (): number {
    return this.components.now?.() ?? Date.now()
  }

  /** Publishes this coordinator's payload now (also called when it changed, not to wait for the interval) */
  async announce (): Promise<void> {
    if (this.init.payload == null) return
    // Wall clock, kept strictly increasing: survives restarts without any stored counter.
    this.lastVersion = Math.max(this.now(), this.lastVersion + 1)
    const message = CoordinatorAnnouncement.encode({
      chain: this.components.chain as Array<Uint8Array<ArrayBuffer>>,
      version: this.lastVersion,
      payload: this.init.payload()
    })
    try {
      await this.components.host.services.pubsub.publish(this.init.topic, message)
    } catch (err: any) {
      // No subscriber yet (a lone member) is normal; the next interval tries again.
      this.log('announcement not published - %s', err.message)
    }
  }

  private async validate (message: Message): Promise<TopicValidatorResult> {
    try {
      return await this.take(message)
    } catch (err: any) {
      this.log('rejected announcement - %s: %s', err.name, err.message)
      return TopicValidatorResult.Reject
    }
  }

  private async take (message: Message): Promise<TopicValidatorResult> {
    if (message.type !== 'signed') throw new InvalidAnnouncementError('announcement is not signed')
    if (message.data.byteLength > this.maxMessageBytes) throw new InvalidAnnouncementError(`announcement of ${message.data.byteLength} bytes is over the limit`)
    const announcement = CoordinatorAnnouncement.decode(message.data, { limits: { chain: 4 } })
    const coordinator = await this.components.trustStore.verifyChain(announcement.chain, message.from)
    if (coordinator.role !== 'coordinator') throw new InvalidAnnouncementError(`${coordinator.name} is a ${coordinator.role}, not a coordinator`)
    const from = coordinator.peerId
    if (from === this.components.identity.peerId) return TopicValidatorResult.Ignore
    const previous = this.held.get(from)
    if (previous != null && previous.version >= announcement.version) return TopicValidatorResult.Ignore
    const value = await this.init.accept(announcement.payload, coordinator)
    this.held.set(from, { coordinator, version: announcement.version, receivedAt: this.now(), value })
    return TopicValidatorResult.Accept
  }

  /** The newest announcement of every other coordinator still fresh */
  current (): Array<Held<T>> {
    const now = this.now()
    const out: Array<Held<T>> = []
    for (const [from, h] of this.held) {
      if (now - h.receivedAt > this.staleAfterMs) {
        this.held.delete(from)
        continue
      }
      out.push(h)
    }
    return out
  }
}
