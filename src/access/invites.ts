import { describeCertificate } from '../identity/index.js'
import { certificateDer } from '../identity/cert-fields.js'
import { OperationNotAllowedError, UnknownPeerError } from '../chunks/protocol.js'
import { toWireGrant } from './wire.js'
import type { MetaOpHandler } from './meta-server.js'
import type { CertificateIssuer } from './issuer.js'
import type { PeerIdentities } from '../net/peer-identities.js'
import type { InviteStore, Redemption } from '../permissions/index.js'
import type { TrustStore, X509Certificate } from '../identity/index.js'
import type { ComponentLogger, Logger, PeerId } from '@libp2p/interface'

export interface InviteRedemptionsComponents {
  invites: InviteStore
  issuer: CertificateIssuer
  /** Its root certificate goes to the newcomer, who checks it against the join string */
  trustStore: TrustStore
  identities: PeerIdentities
  logger: ComponentLogger
  /** Told about every redemption that admitted someone (not about retries): metrics, DataStore announcements */
  onRedeemed?: (redemption: Redemption) => void
}

/**
 * INVITE_REDEEM at the inviting coordinator (meta.md, "Invite redemption"): the invite store validates the code
 * and the request, grants the invite's access to the guest name and counts the use in one transaction; then the
 * member CA certifies the newcomer's own key (the connection's peer ID, never a request field) under that name.
 * A refused request counts and issues nothing.
 */
export class InviteRedemptions {
  private readonly components: InviteRedemptionsComponents
  private readonly log: Logger

  constructor (components: InviteRedemptionsComponents) {
    this.components = components
    this.log = components.logger.forComponent('collective:access:invites')
  }

  readonly serve: MetaOpHandler = async (req, { remotePeer, caller }) => {
    const { invites, identities, trustStore } = this.components
    if (caller != null) throw new OperationNotAllowedError(`${caller.name} holds a certificate already; invites are redeemed by newcomers`)
    if (!identities.isUncertified(remotePeer)) throw new UnknownPeerError(`${remotePeer.toString()} did not complete the handshake here`)
    const redemption = invites.redeem(req.code, remotePeer.toString(), req.requestedName)
    const chain = await this.certify(redemption, remotePeer)
    if (!redemption.retry) this.components.onRedeemed?.(redemption)
    this.log('%s %s as %s', redemption.retry ? 'answered again' : 'admitted', remotePeer, redemption.name)
    return {
      name: redemption.name,
      certificates: chain.map(c => certificateDer(c) as Uint8Array<ArrayBuffer>),
      rootCertificate: certificateDer(trustStore.root) as Uint8Array<ArrayBuffer>,
      grants: redemption.grants.map(toWireGrant)
    }
  }

  /**
   * A retry gets the certificate the first answer carried (from the CA's register), so the same request has the
   * same answer; a retry after issuing failed gets its first certificate now.
   */
  private async certify (redemption: Redemption, peer: PeerId): Promise<X509Certificate[]> {
    const { issuer } = this.components
    if (redemption.retry) {
      const known = await issuer.registered(redemption.local)
      if (known != null && describeCertificate(known).peerId === redemption.peerId && known.notAfter.getTime() > Date.now()) {
        return [known, issuer.certificate]
      }
    }
    if (peer.publicKey == null) throw new UnknownPeerError(`${peer.toString()} carries no public key`)
    return await issuer.issue({ publicKey: peer.publicKey, name: redemption.local, role: 'client' })
  }
}
