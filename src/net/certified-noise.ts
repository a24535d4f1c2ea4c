import { noise } from '@chainsafe/libp2p-noise'
import { serviceCapabilities } from '@libp2p/interface'
import { pbStream } from '@libp2p/utils'
import { CertificateChain, Verdict } from '../gen/noise-cert.js'
import { rolesMayConnect } from './role-policy.js'
import { CertificateRefusedError, HandshakeTimeoutError } from './errors.js'
import type { PeerIdentities } from './peer-identities.js'
import type { NoiseComponents } from '@chainsafe/libp2p-noise'
import type { TrustStore, Role, VerifiedIdentity } from '../identity/index.js'
import type { ConnectionEncrypter, MessageStream, SecureConnectionOptions, SecuredConnection, Logger } from '@libp2p/interface'

export const HANDSHAKE_PROTOCOL = '/collective/noise-cert/1.0.0'

/** A chain is at most 4 certificates of 16 KiB each; anything larger is refused before it is decoded */
export const MAX_CHAIN_MESSAGE_BYTES = 70 * 1024

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
  /** Called for every refusal, with the stable name of the failed check; feeds logs and metrics */
  onRefused?: (event: { direction: 'inbound' | 'outbound', remotePeer?: string, reason: string, error: Error }) => void
  /** Called for every accepted peer */
  onAccepted?: (event: { direction: 'inbound' | 'outbound', identity: VerifiedIdentity }) => void
}

class RoleMismatchError extends Error {
  static name = 'RoleNotAllowedError'
  name = 'RoleNotAllowedError'
}

/**
 * A connection encrypter that runs Noise (bound to one federation by using the hash of its root certificate as
 * the prologue) and then exchanges and verifies certificate chains inside the encrypted channel. Noise has
 * already proved the remote holds the key of its peer ID, so a chain whose leaf key is that key proves the
 * remote's federated name and role. A peer that fails any check never reaches the muxer, so identify, kad-dht,
 * gossipsub and our own protocols never see it.
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
    const secured = await this.noise.secureOutbound(connection, options).catch(err => { throw this.noiseFailed('outbound', err) })
    return this.exchange(secured, 'outbound', options)
  }

  async secureInbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    const secured = await this.noise.secureInbound(connection, options).catch(err => { throw this.noiseFailed('inbound', err) })
    return this.exchange(secured, 'inbound', options)
  }

  /** A Noise failure is what a peer of another federation (different prologue) or a non-collective peer causes */
  private noiseFailed (direction: 'inbound' | 'outbound', err: Error): Error {
    this.log('%s noise handshake failed - %s', direction, err.message)
    this.init.onRefused?.({ direction, reason: 'NoiseHandshakeError', error: err })
    return err
  }

  private async exchange (secured: SecuredConnection, direction: 'inbound' | 'outbound', options?: SecureConnectionOptions): Promise<SecuredConnection> {
    const timeout = AbortSignal.timeout(this.init.timeoutMs ?? 10_000)
    const signal = options?.signal != null ? AbortSignal.any([options.signal, timeout]) : timeout
    const pb = pbStream(secured.connection, { maxDataLength: MAX_CHAIN_MESSAGE_BYTES })

    try {
      // Both sides write first and read second, so neither waits for the other.
      await pb.write({ certificates: this.init.chain as Array<Uint8Array<ArrayBuffer>> }, CertificateChain, { signal })
      const remote = await pb.read(CertificateChain, { signal, limits: { certificates: 4 } })

      let identity: VerifiedIdentity | undefined
      let refusal: Error | undefined
      try {
        identity = await this.init.trustStore.verifyChain(remote.certificates, secured.remotePeer)
        if (!rolesMayConnect(this.init.localRole, identity.role)) {
          throw new RoleMismatchError(`a ${identity.role} may not connect to a ${this.init.localRole}`)
        }
      } catch (err: any) {
        refusal = err
      }

      // Both sides send their verdict and read the other's before anyone closes, so each learns why it was
      // refused. A side that refuses waits only briefly: a hostile peer gets no time to hold the connection.
      const wrote = await pb.write({ accepted: refusal == null, reason: refusal?.name ?? '' }, Verdict, { signal }).then(() => undefined, (err: unknown) => asError(err))
      const readSignal = refusal == null ? signal : AbortSignal.any([signal, AbortSignal.timeout(2_000)])
      const verdict = await pb.read(Verdict, { signal: readSignal }).catch((err: unknown) => asError(err))
      if (refusal != null) throw refusal
      if (verdict instanceof Error) throw wrote ?? verdict
      if (!verdict.accepted) throw new CertificateRefusedError(verdict.reason.slice(0, 64))

      if (identity == null) throw new Error('unreachable: accepted without identity')
      this.init.identities.set(identity)
      this.init.onAccepted?.({ direction, identity })
      this.log('%s handshake with %s (%s) accepted', direction, identity.name, identity.peerId)
      return { ...secured, connection: pb.unwrap() }
    } catch (thrown: unknown) {
      const err = asError(thrown)
      const error: Error = timeout.aborted && options?.signal?.aborted !== true
        ? new HandshakeTimeoutError(`certificate exchange timed out after ${this.init.timeoutMs ?? 10_000} ms`)
        : err
      this.log.error('%s handshake with %p refused - %s: %s', direction, secured.remotePeer, error.name, error.message)
      this.init.onRefused?.({ direction, remotePeer: secured.remotePeer.toString(), reason: error instanceof CertificateRefusedError ? `remote:${error.reason}` : (error.name ?? 'Error'), error })
      secured.connection.abort(error)
      // The upgrader keeps only the message, so the stable name travels in it.
      error.message = `${String(error.name)}: ${String(error.message)}`
      throw error
    }
  }
}

/** Streams sometimes reject with events or strings; everything we rethrow must be an Error with a name */
function asError (err: unknown): Error {
  if (err instanceof Error) return err
  const e = new Error(typeof err === 'string' ? err : `connection closed during the certificate exchange (${String((err as any)?.type ?? err)})`)
  e.name = 'HandshakeClosedError'
  return e
}

export function certifiedNoise (init: CertifiedNoiseInit): (components: NoiseComponents) => ConnectionEncrypter {
  return (components) => new CertifiedNoise(components, init)
}
