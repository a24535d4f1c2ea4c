import { noise } from '@chainsafe/libp2p-noise'
import { serviceCapabilities } from '@libp2p/interface'
import { rolesMayConnect } from './role-policy.js'
import { HANDSHAKE_PROTOCOL, exchangeCertificates, noiseFailed } from './cert-exchange.js'
import { inviteOnlyMuxer } from './invite-only.js'
import type { Direction, RefusalEvent } from './cert-exchange.js'
import type { PeerIdentities } from './peer-identities.js'
import type { NoiseComponents } from '@chainsafe/libp2p-noise'
import type { TrustStore, Role, VerifiedIdentity } from '../identity/index.js'
import type { ConnectionEncrypter, MessageStream, PeerId, SecureConnectionOptions, SecuredConnection, StreamMuxerFactory, Logger } from '@libp2p/interface'

export { HANDSHAKE_PROTOCOL, MAX_CHAIN_MESSAGE_BYTES } from './cert-exchange.js'

export interface CertifiedNoiseInit {
  /** Our own certificate chain as DER, leaf first then the member CA */
  chain: Uint8Array[]
  /** Root, member CAs and revocations that remote chains are checked against */
  trustStore: TrustStore
  /** Our role, used to refuse roles that have no business connecting to us */
  localRole: Role
  /** Receives the verified identity of every accepted peer */
  identities: PeerIdentities
  /** How long the certificate exchange may take after Noise completes (default 10 s) */
  timeoutMs?: number
  /**
   * Inbound only: remotes presenting an empty chain (newcomers redeeming an invite) are admitted, uncertified,
   * while `admit()` says so (a coordinator: while it has unexpired invites), to `protocols` alone. Absent: never.
   */
  uncertified?: { admit: () => boolean, protocols: string[] }
  /** Called for every refusal, with the stable name of the failed check; feeds logs and metrics */
  onRefused?: (event: RefusalEvent) => void
  /** Called for every accepted peer */
  onAccepted?: (event: { direction: Direction, identity: VerifiedIdentity }) => void
}

class RoleMismatchError extends Error {
  static name = 'RoleNotAllowedError'
  name = 'RoleNotAllowedError'
}

/** An empty chain, at a peer that admits none now (it has no open invite, or redeems none at all) */
export class InvitesClosedError extends Error {
  static name = 'InvitesClosedError'
  name = 'InvitesClosedError'
}

/**
 * A connection encrypter that runs Noise (bound to one federation by using the hash of its root certificate as
 * the prologue) and then exchanges and verifies certificate chains inside the encrypted channel. Noise has
 * already proved the remote holds the key of its peer ID, so a chain whose leaf key is that key proves the
 * remote's federated name and role. A peer that fails any check never reaches the muxer, so identify, kad-dht,
 * gossipsub and our own protocols never see it. The one exception, on a coordinator with open invites, is a
 * newcomer without a certificate: its connection gets a muxer that lets it reach INVITE_REDEEM and nothing else.
 */
export class CertifiedNoise implements ConnectionEncrypter {
  readonly protocol = HANDSHAKE_PROTOCOL
  readonly [Symbol.toStringTag] = 'collective:certified-noise'
  readonly [serviceCapabilities] = ['@libp2p/connection-encryption']

  private readonly noise: ConnectionEncrypter
  private readonly init: CertifiedNoiseInit
  private readonly log: Logger

  constructor (components: NoiseComponents, init: CertifiedNoiseInit) {
    this.init = init
    this.noise = noise({ prologueBytes: init.trustStore.rootFingerprintBytes })(components)
    this.log = components.logger.forComponent('collective:net:handshake')
  }

  async secureOutbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    const secured = await this.noise.secureOutbound(connection, options).catch(err => { throw noiseFailed('outbound', err, this.log, this.init.onRefused) })
    return await this.exchange(secured, 'outbound', options)
  }

  async secureInbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    const secured = await this.noise.secureInbound(connection, options).catch(err => { throw noiseFailed('inbound', err, this.log, this.init.onRefused) })
    return await this.exchange(secured, 'inbound', options)
  }

  private async exchange (secured: SecuredConnection, direction: Direction, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    const { connection, admitted: identity } = await exchangeCertificates(secured, {
      chain: this.init.chain,
      judge: async (remote, peer) => await this.judge(remote, peer, direction, secured),
      direction,
      timeoutMs: this.init.timeoutMs,
      log: this.log,
      onRefused: this.init.onRefused
    }, options)

    if (identity == null) {
      this.init.identities.setUncertified(secured.remotePeer)
      this.log('inbound handshake with %p admitted without a certificate, for %s only', secured.remotePeer, this.init.uncertified?.protocols.join(' '))
      return { ...secured, connection, streamMuxer: inviteOnlyMuxer(secured.streamMuxer as StreamMuxerFactory, { protocols: this.init.uncertified?.protocols ?? [], log: this.log }) }
    }
    this.init.identities.set(identity)
    this.init.onAccepted?.({ direction, identity })
    this.log('%s handshake with %s (%s) accepted', direction, identity.name, identity.peerId)
    return { ...secured, connection }
  }

  /** The remote's verified identity, or undefined for a newcomer admitted without one */
  private async judge (remote: Uint8Array[], peer: PeerId, direction: Direction, secured: SecuredConnection): Promise<VerifiedIdentity | undefined> {
    if (remote.length === 0 && direction === 'inbound' && this.init.uncertified != null) {
      if (!this.init.uncertified.admit()) throw new InvitesClosedError('an empty certificate chain is admitted only while invites are open')
      // Only a muxer we wrap can keep the newcomer away from every other protocol
      if (secured.streamMuxer == null) throw new InvitesClosedError('a newcomer must offer its stream muxer in the Noise handshake')
      return undefined
    }
    const identity = await this.init.trustStore.verifyChain(remote, peer)
    if (!rolesMayConnect(this.init.localRole, identity.role)) {
      throw new RoleMismatchError(`a ${identity.role} may not connect to a ${this.init.localRole}`)
    }
    return identity
  }
}

export function certifiedNoise (init: CertifiedNoiseInit): (components: NoiseComponents) => ConnectionEncrypter {
  return (components) => new CertifiedNoise(components, init)
}
