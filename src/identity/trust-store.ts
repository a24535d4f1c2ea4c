import { peerIdFromString } from '@libp2p/peer-id'
import { OID, certificateDer, federationOfRoot, fingerprint, normalizeSerial, sha256, singleExtension } from './cert-fields.js'
import { TAG, equalBytes, readSingle } from './der.js'
import { CertificateRevokedError, ChainInvalidError, IdentityError, UntrustedIssuerError } from './errors.js'
import { isSignedBy } from './signature.js'
import { assertValidAt, structural, verifyLeaf, verifyMemberCA, type MemberInfo } from './verify.js'
import { x509, X509Certificate } from './x509.js'
import type { Role } from './names.js'
import type { PeerId } from '@libp2p/interface'

/** Bounds applied before any certificate is decoded, so a hostile peer cannot make us parse megabytes */
export const MAX_CHAIN_CERTIFICATES = 4
export const MAX_CERTIFICATE_BYTES = 16 * 1024

export interface VerifiedIdentity {
  peerId: string
  /** Federated name, e.g. `node-01@home.collective.local` */
  name: string
  local: string
  domain: string
  /** Member that issued the certificate, from the member CA's SAN local part, e.g. `alice` */
  member: string
  role: Role
  serial: string
  notAfter: Date
  memberCaFingerprint: string
}

export interface TrustStoreInit {
  root: X509Certificate
  /** Known member CAs; each is verified against the root whenever it is used, so a bad entry can never be trusted */
  members?: X509Certificate[]
  revokedSerials?: Iterable<string>
  revokedPeerIds?: Iterable<string>
}

export interface MemberSummary {
  member: string
  domain: string
  fingerprint: string
  serial: string
}

/** sha256 of the root certificate DER; used as the Noise prologue so handshakes only complete within one federation. */
export function parseRootFingerprintPrologue (rootCert: X509Certificate): Uint8Array {
  return sha256(certificateDer(rootCert))
}

function peerIdString (id: string | PeerId): string {
  // Parsing canonicalises the string form and refuses typos rather than silently revoking nothing
  return typeof id === 'string' ? peerIdFromString(id).toString() : id.toString()
}

/**
 * The federation root, the member CAs we know and the revocations we have heard of; verifies the certificate
 * chains peers present during the handshake.
 */
export class TrustStore {
  readonly root: X509Certificate
  readonly federation: string
  /** sha256 of the root DER, hex */
  readonly rootFingerprint: string
  /** The same fingerprint as bytes: the Noise prologue */
  readonly rootFingerprintBytes: Uint8Array
  readonly #rootDer: Uint8Array
  readonly #members = new Map<string, X509Certificate>()
  readonly #revokedSerials = new Set<string>()
  readonly #revokedPeerIds = new Set<string>()

  constructor (init: TrustStoreInit) {
    const root = init.root
    this.federation = (() => {
      try {
        const bc = singleExtension(root, OID.BASIC_CONSTRAINTS)
        const ca = bc != null && (bc instanceof x509.BasicConstraintsExtension ? bc : new x509.BasicConstraintsExtension(bc.rawData)).ca
        if (!ca) throw new Error('root certificate is not a CA')
        return federationOfRoot(root)
      } catch (err) {
        throw new ChainInvalidError(`unusable root certificate: ${(err as Error).message}`)
      }
    })()
    this.root = root
    this.#rootDer = certificateDer(root)
    this.rootFingerprintBytes = sha256(this.#rootDer)
    this.rootFingerprint = fingerprint(root)
    for (const cert of init.members ?? []) this.#members.set(fingerprint(cert), cert)
    for (const serial of init.revokedSerials ?? []) this.revokeSerial(serial)
    for (const id of init.revokedPeerIds ?? []) this.revokePeerId(id)
  }

  /** Verifies a member CA against the root (signature, validity, CA flag, name constraints) and remembers it. */
  async addMemberCA (cert: X509Certificate, now = new Date()): Promise<MemberSummary> {
    const info = await this.#verifyMember(cert, now)
    this.#members.set(info.fingerprint, cert)
    return { member: info.member, domain: info.domain, fingerprint: info.fingerprint, serial: info.serial }
  }

  removeMemberCA (fingerprintHex: string): boolean {
    return this.#members.delete(fingerprintHex.toLowerCase())
  }

  memberCAs (): X509Certificate[] {
    return [...this.#members.values()]
  }

  revokeSerial (serial: string): void {
    this.#revokedSerials.add(normalizeSerial(serial))
  }

  revokePeerId (id: string | PeerId): void {
    this.#revokedPeerIds.add(peerIdString(id))
  }

  isRevoked (query: { serial?: string, peerId?: string | PeerId }): boolean {
    if (query.serial != null && this.#revokedSerials.has(normalizeSerial(query.serial))) return true
    if (query.peerId != null && this.#revokedPeerIds.has(query.peerId.toString())) return true
    return false
  }

  /**
   * Verifies a peer's chain (DER, leaf first, then optionally its member CA and our root) against this store and
   * the peer ID Noise authenticated. Throws one of the identity error classes on any failure.
   */
  async verifyChain (chain: Uint8Array[], expectedPeerId: PeerId, now = new Date()): Promise<VerifiedIdentity> {
    try {
      return await this.#verifyChain(chain, expectedPeerId, now)
    } catch (err) {
      if (err instanceof IdentityError) throw err
      // Anything else is a library surprise on hostile input; never let it through as a non-refusal
      throw new ChainInvalidError(`chain could not be verified: ${(err as Error).message}`)
    }
  }

  async #verifyChain (chain: Uint8Array[], expectedPeerId: PeerId, now: Date): Promise<VerifiedIdentity> {
    if (!Array.isArray(chain) || chain.length === 0) throw new ChainInvalidError('empty certificate chain')
    if (chain.length > MAX_CHAIN_CERTIFICATES) {
      throw new ChainInvalidError(`chain has ${chain.length} certificates; at most ${MAX_CHAIN_CERTIFICATES} are accepted`)
    }
    for (const [i, der] of chain.entries()) {
      if (!(der instanceof Uint8Array)) throw new ChainInvalidError(`certificate ${i} is not bytes`)
      if (der.length > MAX_CERTIFICATE_BYTES) {
        throw new ChainInvalidError(`certificate ${i} is ${der.length} bytes; at most ${MAX_CERTIFICATE_BYTES} are accepted`)
      }
    }
    const certs: X509Certificate[] = []
    for (const [i, der] of chain.entries()) {
      certs.push(await structural(`certificate ${i}`, () => {
        readSingle(der, TAG.SEQUENCE)
        return new X509Certificate(der.slice())
      }))
    }

    assertValidAt(this.root, now, `root of ${this.federation}`)
    const [leaf, ...issuers] = certs
    // Senders may append our root; anything else after the member CA cannot lead to our root
    if (issuers.length >= 2) {
      if (issuers.length > 2 || !equalBytes(certificateDer(issuers[1]), this.#rootDer)) {
        throw new UntrustedIssuerError(`chain does not end at the root of ${this.federation}`)
      }
      issuers.pop()
    }
    const member = issuers.length === 1
      ? await this.#verifyMember(issuers[0], now)
      : await this.#knownIssuerOf(leaf, now)

    const info = await verifyLeaf(leaf, member, expectedPeerId, now)
    if (this.#revokedSerials.has(info.serial)) throw new CertificateRevokedError(`certificate ${info.serial} of ${info.name} is revoked`)
    if (this.#revokedPeerIds.has(info.peerId)) throw new CertificateRevokedError(`peer ${info.peerId} (${info.name}) is revoked`)
    return { ...info, member: member.member, memberCaFingerprint: member.fingerprint }
  }

  async #verifyMember (cert: X509Certificate, now: Date): Promise<MemberInfo> {
    const info = await verifyMemberCA(cert, this.root, this.federation, now)
    if (this.#revokedSerials.has(info.serial)) {
      throw new CertificateRevokedError(`member CA ${info.serial} of ${info.member} is revoked`)
    }
    return info
  }

  async #knownIssuerOf (leaf: X509Certificate, now: Date): Promise<MemberInfo> {
    for (const candidate of this.#members.values()) {
      if (await structural(`leaf ${leaf.subject}`, async () => await isSignedBy(leaf, candidate))) {
        return await this.#verifyMember(candidate, now)
      }
    }
    throw new UntrustedIssuerError(`issuer ${leaf.issuer} of ${leaf.subject} is not a member CA known to ${this.federation}`)
  }
}
