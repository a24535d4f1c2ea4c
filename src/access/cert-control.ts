import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { MetaOp } from '../gen/meta.js'
import { X509Certificate, writeCertificateChain } from '../identity/index.js'
import { certificateDer } from '../identity/cert-fields.js'
import type { MetaClient } from './meta-client.js'
import type { CertificateRenewal } from './renewal.js'
import type { ControlServer } from '../control/server.js'
import type { PeerIdentities } from '../net/peer-identities.js'
import type { TrustStore, VerifiedIdentity } from '../identity/index.js'
import type { Libp2p } from '@libp2p/interface'

const DAY_MS = 86_400_000

/** No coordinator of this daemon's member could be asked to renew its certificate */
export class NoRenewingCoordinatorError extends Error {
  static name = 'NoRenewingCoordinatorError'
  name = 'NoRenewingCoordinatorError'
}

/** The renewed certificate does not certify this daemon as it is: another name, role or key */
export class RenewalMismatchError extends Error {
  static name = 'RenewalMismatchError'
  name = 'RenewalMismatchError'
}

export interface CertificateMethodsInit {
  /** This daemon's verified identity: what is renewed */
  identity: VerifiedIdentity
  /** Its certificate file (config identity.cert), replaced atomically */
  certFile: string
  trustStore: TrustStore
  host: Libp2p
  identities: PeerIdentities
  meta: MetaClient
  /** A coordinator holding its member CA renews its own certificate itself */
  renewal?: CertificateRenewal
  /** Addresses of coordinators to ask when none of this member's is connected: the config's coordinator and bootstrap */
  coordinators: string[]
}

/**
 * `cert renew`: a new certificate for this daemon's key and name, from its member CA, written over the old one.
 * The running daemon keeps presenting the old one until it restarts.
 */
export function registerCertificateMethods (control: ControlServer, init: CertificateMethodsInit): void {
  const { identity, trustStore } = init

  /** Our member's coordinators: connected ones first, then the configured addresses */
  const ask = async (notAfterMs: number, signal: AbortSignal): Promise<{ chain: Uint8Array[], via: string }> => {
    const ours = (peer: VerifiedIdentity | undefined): peer is VerifiedIdentity => peer?.role === 'coordinator' && peer.memberCaFingerprint === identity.memberCaFingerprint
    const failures: string[] = []
    const tryPeer = async (peer: VerifiedIdentity): Promise<{ chain: Uint8Array[], via: string } | undefined> => {
      try {
        const res = await init.meta.call(peer.peerId, { op: MetaOp.CERT_RENEW, expiresAtMs: notAfterMs }, { signal })
        return { chain: res.certificates, via: peer.name }
      } catch (err: any) {
        failures.push(`${peer.name}: ${String(err.name)}: ${String(err.message)}`)
      }
    }
    for (const peer of init.identities.all().filter(ours)) {
      const answer = await tryPeer(peer)
      if (answer != null) return answer
    }
    for (const addr of init.coordinators) {
      try {
        const connection = await init.host.dial(multiaddr(addr), { signal })
        const peer = init.identities.get(connection.remotePeer)
        if (!ours(peer)) {
          failures.push(`${addr}: not a coordinator of ${identity.member}`)
          continue
        }
        const answer = await tryPeer(peer)
        if (answer != null) return answer
      } catch (err: any) {
        failures.push(`${addr}: ${String(err.name)}: ${String(err.message)}`)
      }
    }
    throw new NoRenewingCoordinatorError(`no coordinator of ${identity.member}@${identity.domain} renewed this certificate${failures.length > 0 ? ` (${failures.join('; ')})` : ' (none is connected or configured)'}`)
  }

  control.register('cert.renew', async (p, ctx) => {
    if (p.days != null && (typeof p.days !== 'number' || !(p.days > 0))) throw new TypeError('parameter "days" must be a positive number')
    const notAfterMs = typeof p.days === 'number' ? Date.now() + p.days * DAY_MS : 0
    const { chain, via } = init.renewal != null
      ? { chain: (await init.renewal.reissue(identity, notAfterMs)).map(c => certificateDer(c)), via: 'this coordinator\'s member CA' }
      : await ask(notAfterMs, ctx.signal)
    // Nothing is written unless it certifies exactly this daemon: same key, name and role, from our federation.
    const renewed = await trustStore.verifyChain(chain, peerIdFromString(identity.peerId))
    if (renewed.name !== identity.name || renewed.role !== identity.role) {
      throw new RenewalMismatchError(`the renewed certificate is for ${renewed.role} ${renewed.name}, not ${identity.role} ${identity.name}`)
    }
    await writeCertificateChain(init.certFile, chain.map(der => new X509Certificate(der.slice())))
    return { name: renewed.name, certFile: init.certFile, via, previousExpiry: identity.notAfter.toISOString(), expires: renewed.notAfter.toISOString(), serial: renewed.serial, restartRequired: true }
  })
}
