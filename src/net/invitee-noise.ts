import { noise } from '@chainsafe/libp2p-noise'
import { serviceCapabilities } from '@libp2p/interface'
import { ChainInvalidError } from '../identity/index.js'
import { HANDSHAKE_PROTOCOL, exchangeCertificates, noiseFailed } from './cert-exchange.js'
import type { NoiseComponents } from '@chainsafe/libp2p-noise'
import type { ConnectionEncrypter, Logger, MessageStream, PeerId, SecureConnectionOptions, SecuredConnection } from '@libp2p/interface'

/** A newcomer dials out only; nothing may connect to it */
export class InviteeInboundError extends Error {
  static name = 'InviteeInboundError'
  name = 'InviteeInboundError'
}

export interface InviteeNoiseInit {
  /** SHA-256 of the federation root certificate (from the join string): the Noise prologue */
  rootFingerprint: Uint8Array
  /**
   * Receives the chain the coordinator presented. The newcomer has no root certificate yet, so it cannot verify
   * the chain here; it does so once the redemption delivered the root and its SHA-256 matched the join string.
   */
  onRemoteChain: (peer: PeerId, chain: Uint8Array[]) => void
  timeoutMs?: number
}

/**
 * The handshake of a newcomer who holds a key but no certificate: the same Noise and certificate exchange as
 * every collective peer (noise-cert.md), presenting an empty chain. Noise proves the remote holds the key of the
 * peer ID the join string names, and the prologue fails against a peer of another federation; the coordinator
 * decides whether to admit us.
 */
export class InviteeNoise implements ConnectionEncrypter {
  readonly protocol = HANDSHAKE_PROTOCOL
  readonly [Symbol.toStringTag] = 'collective:invitee-noise'
  readonly [serviceCapabilities] = ['@libp2p/connection-encryption']

  private readonly noise: ConnectionEncrypter
  private readonly init: InviteeNoiseInit
  private readonly log: Logger

  constructor (components: NoiseComponents, init: InviteeNoiseInit) {
    this.init = init
    this.noise = noise({ prologueBytes: init.rootFingerprint })(components)
    this.log = components.logger.forComponent('collective:net:invitee-handshake')
  }

  async secureOutbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    const secured = await this.noise.secureOutbound(connection, options).catch(err => { throw noiseFailed('outbound', err, this.log) })
    const { connection: stream } = await exchangeCertificates(secured, {
      chain: [],
      judge: async (remote, peer) => {
        if (remote.length === 0) throw new ChainInvalidError('the coordinator presented no certificate')
        this.init.onRemoteChain(peer, remote)
      },
      direction: 'outbound',
      timeoutMs: this.init.timeoutMs,
      log: this.log
    }, options)
    return { ...secured, connection: stream }
  }

  async secureInbound (connection: MessageStream): Promise<SecuredConnection> {
    const err = new InviteeInboundError('a newcomer redeeming an invite accepts no connections')
    connection.abort(err)
    throw err
  }
}

export function inviteeNoise (init: InviteeNoiseInit): (components: NoiseComponents) => ConnectionEncrypter {
  return (components) => new InviteeNoise(components, init)
}
