import { peerIdFromString } from '@libp2p/peer-id'
import { CertificateRevokedError, DEFAULT_VALIDITY_DAYS, fingerprint } from '../identity/index.js'
import { certificateDer } from '../identity/cert-fields.js'
import { OperationNotAllowedError, UnknownPeerError } from '../chunks/protocol.js'
import { InvalidMetaRequestError } from '../permissions/index.js'
import type { MetaOpHandler } from './meta-server.js'
import type { CertificateIssuer } from './issuer.js'
import type { TrustStore, VerifiedIdentity, X509Certificate } from '../identity/index.js'
import type { ComponentLogger, Logger, PublicKey } from '@libp2p/interface'

const DAY_MS = 86_400_000

export interface CertificateRenewalComponents {
  issuer: CertificateIssuer
  /** Kept current by the revocation store: a revoked certificate is never renewed */
  trustStore: TrustStore
  logger: ComponentLogger
  /** Default: Date.now */
  now?: () => number
}

/**
 * Renews the certificates of this coordinator's member: a new certificate for the same key, name and role, from
 * the member CA that issued the current one. What is renewed is always the caller's verified identity (from its
 * connection, or the coordinator's own), never anything a request names.
 */
export class CertificateRenewal {
  private readonly components: CertificateRenewalComponents
  private readonly log: Logger

  constructor (components: CertificateRenewalComponents) {
    this.components = components
    this.log = components.logger.forComponent('collective:access:renewal')
  }

  /**
   * The renewed chain (leaf, member CA) for `identity`.
   *
   * @param notAfterMs the expiry asked for; 0 or undefined: the default validity. Capped at 365 days from now
   *   (and at the member CA's own expiry)
   * @throws OperationNotAllowedError (another member CA issued it), CertificateRevokedError, InvalidMetaRequestError
   */
  async reissue (identity: VerifiedIdentity, notAfterMs = 0): Promise<X509Certificate[]> {
    const { issuer, trustStore } = this.components
    if (identity.memberCaFingerprint !== fingerprint(issuer.certificate)) {
      throw new OperationNotAllowedError(`${identity.name} was certified by another member CA; only that one renews it`)
    }
    if (trustStore.isRevoked({ serial: identity.serial, peerId: identity.peerId })) {
      throw new CertificateRevokedError(`certificate ${identity.serial} of ${identity.name} is revoked; it is not renewed`)
    }
    const now = (this.components.now ?? Date.now)()
    if (notAfterMs !== 0 && notAfterMs <= now) throw new InvalidMetaRequestError(`the expiry asked for, ${new Date(notAfterMs).toISOString()}, has passed`)
    const validityDays = notAfterMs === 0 ? undefined : Math.min((notAfterMs - now) / DAY_MS, DEFAULT_VALIDITY_DAYS.leaf)
    // A verified identity's peer ID is always Ed25519: the handshake checked it against the certificate's key
    const publicKey = peerIdFromString(identity.peerId).publicKey as PublicKey
    const chain = await issuer.issue({ publicKey, name: identity.local, role: identity.role, validityDays })
    this.log('renewed %s (%s) until %s', identity.name, identity.peerId, chain[0].notAfter.toISOString())
    return chain
  }

  /** CERT_RENEW: the caller's own certificate, renewed */
  readonly serve: MetaOpHandler = async (req, { remotePeer, caller }) => {
    if (caller == null) throw new UnknownPeerError(`${remotePeer.toString()} has no verified certificate here`)
    const chain = await this.reissue(caller, req.expiresAtMs)
    return {
      name: caller.name,
      certificates: chain.map(c => certificateDer(c) as Uint8Array<ArrayBuffer>),
      expiresAtMs: chain[0].notAfter.getTime()
    }
  }
}
