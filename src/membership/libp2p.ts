import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { SwimRequest, SwimResponse } from '../gen/swim.js'
import type { SwimKind } from '../gen/swim.js'
import { SyncRequest, SyncResponse } from '../gen/sync.js'
import { handleRequests, request } from '../net/rpc.js'
import { UnauthorizedPeerError } from './errors.js'
import { SWIM_PROTOCOL, SWIM_PROTOCOL_LIMITS, SYNC_PROTOCOL, SYNC_PROTOCOL_LIMITS } from './protocol.js'
import { privateKeySigner } from './signing.js'
import { Swim } from './swim.js'
import type { SwimInit } from './swim.js'
import type { MemberChangeEvent, RecordVerifier, SwimHandler, SwimTransport } from './types.js'
import type { AbortOptions, ComponentLogger, Libp2p, Logger, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface Libp2pSwimTransportComponents {
  host: Libp2p
  logger: ComponentLogger
  /**
   * Whether `remotePeer` may take part in membership; the daemon answers from its verified certificates.
   * Refused peers get `UnauthorizedPeerError` and nothing they send is read. Default: everyone the connection
   * handshake let in.
   */
  authorize?: (remotePeer: string) => boolean
  /**
   * Told about every exchange this member started, when it ended (metrics): which protocol, the SWIM request kind
   * for probes, whether it got an answer, and how long it took
   */
  onExchange?: (exchange: { protocol: 'swim' | 'sync', kind?: SwimKind, ok: boolean, seconds: number }) => void
}

/**
 * SwimTransport over libp2p streams: one request/response exchange per stream on `/collective/swim/1.0.0` and
 * `/collective/sync/1.0.0`, bounded in size and time by src/net/rpc.ts. Peers are dialled by peer ID; the peer
 * store must know their addresses (Libp2pMembership keeps it fed from member records).
 */
export class Libp2pSwimTransport implements SwimTransport {
  private readonly components: Libp2pSwimTransportComponents
  private readonly log: Logger
  private handler?: SwimHandler

  constructor (components: Libp2pSwimTransportComponents) {
    this.components = components
    this.log = components.logger.forComponent('collective:membership:libp2p')
  }

  /** Registers both protocols; inbound requests go to `handler` (the Swim instance) */
  async start (handler: SwimHandler): Promise<void> {
    this.handler = handler
    const { host } = this.components
    await handleRequests(host, SWIM_PROTOCOL, SwimRequest, SwimResponse, async (req, { remotePeer, signal }) => {
      const from = remotePeer.toString()
      if (!this.authorized(from)) return { ack: false, lamport: 0, updates: [], error: UnauthorizedPeerError.name, message: `${from} may not take part in membership` }
      return await handler.handle(from, req, { signal })
    }, SWIM_PROTOCOL_LIMITS, this.log)
    await handleRequests(host, SYNC_PROTOCOL, SyncRequest, SyncResponse, async (req, { remotePeer, signal }) => {
      const from = remotePeer.toString()
      if (!this.authorized(from)) return { records: [], want: [], coveredTo: '', lamport: 0, error: UnauthorizedPeerError.name, message: `${from} may not take part in membership` }
      return await handler.handleSync(from, req, { signal })
    }, { ...SYNC_PROTOCOL_LIMITS, maxInboundStreams: 4 }, this.log)
  }

  async stop (): Promise<void> {
    this.handler = undefined
    await this.components.host.unhandle([SWIM_PROTOCOL, SYNC_PROTOCOL])
  }

  private authorized (peer: string): boolean {
    return this.handler != null && (this.components.authorize?.(peer) ?? true)
  }

  async probe (to: string, req: SwimRequest, options: AbortOptions): Promise<SwimResponse> {
    return await this.timed('swim', req.kind, async () => await request(this.components.host, peerIdFromString(to), SWIM_PROTOCOL, req, SwimRequest, SwimResponse, SWIM_PROTOCOL_LIMITS, options))
  }

  async sync (to: string, req: SyncRequest, options: AbortOptions): Promise<SyncResponse> {
    return await this.timed('sync', undefined, async () => await request(this.components.host, peerIdFromString(to), SYNC_PROTOCOL, req, SyncRequest, SyncResponse, SYNC_PROTOCOL_LIMITS, options))
  }

  private async timed<T> (protocol: 'swim' | 'sync', kind: SwimKind | undefined, fn: () => Promise<T>): Promise<T> {
    const started = performance.now()
    let ok = false
    try {
      const result = await fn()
      ok = true
      return result
    } finally {
      this.components.onExchange?.({ protocol, kind, ok, seconds: (performance.now() - started) / 1000 })
    }
  }
}

export interface Libp2pMembershipComponents extends Libp2pSwimTransportComponents {
  /** The host's own key: it signs this member's records */
  privateKey: PrivateKey
  verifier?: RecordVerifier
}

/**
 * Membership on a libp2p host: a Swim instance, its transport, and the peer store kept in step with the
 * addresses members announce, so that every other protocol can dial members by peer ID.
 */
export class Libp2pMembership {
  readonly swim: Swim
  readonly transport: Libp2pSwimTransport
  private readonly components: Libp2pMembershipComponents
  private readonly log: Logger
  private readonly onChange = (evt: CustomEvent<MemberChangeEvent>): void => { void this.learnAddrs(evt.detail) }

  constructor (components: Libp2pMembershipComponents, init: SwimInit) {
    this.components = components
    this.log = components.logger.forComponent('collective:membership:libp2p')
    this.transport = new Libp2pSwimTransport(components)
    this.swim = new Swim({
      transport: this.transport,
      logger: components.logger,
      signer: privateKeySigner(components.privateKey),
      verifier: components.verifier
    }, init)
  }

  async start (): Promise<void> {
    this.swim.addEventListener('member:change', this.onChange)
    await this.transport.start(this.swim)
    await this.swim.start()
  }

  async stop (): Promise<void> {
    await this.swim.stop()
    await this.transport.stop()
    this.swim.removeEventListener('member:change', this.onChange)
  }

  private async learnAddrs ({ member }: MemberChangeEvent): Promise<void> {
    if (member.id === this.swim.id || member.state === 'dead' || member.state === 'left') return
    const addrs: Multiaddr[] = []
    for (const a of member.addrs) {
      try { addrs.push(multiaddr(a)) } catch {}
    }
    if (addrs.length === 0) return
    try {
      await this.components.host.peerStore.merge(peerIdFromString(member.id), { multiaddrs: addrs })
    } catch (err: any) {
      this.log('could not record the addresses of %s - %s', member.id, err.message)
    }
  }
}
