import { join } from 'node:path'
import { issueLeafCertificate, readCaKey, readCertificateChain, X509Certificate } from '../identity/index.js'
import { isSignedBy } from '../identity/signature.js'
import { MEMBER_FILES } from '../local/layout.js'
import { registerIssued } from '../local/provision.js'
import type { Role } from '../identity/index.js'
import type { ComponentLogger, Logger, PublicKey } from '@libp2p/interface'

/** The member CA folder is missing, unreadable, or is not the CA that certified this coordinator */
export class MemberCaUnavailableError extends Error {
  static name = 'MemberCaUnavailableError'
  name = 'MemberCaUnavailableError'
}

export interface CertificateIssuerInit {
  /** The member CA folder: ca.key, ca.crt and the issued/ register (config `memberCa`) */
  dir: string
  /** The coordinator's own certificate: the CA must be the one that issued it, so guests land in its domain */
  owner: X509Certificate
}

export interface CertificateIssuerComponents {
  logger: ComponentLogger
}

export interface IssueOptions {
  /** The peer's libp2p Ed25519 key */
  publicKey: PublicKey
  /** Local part of the name, e.g. `guest-dave` */
  name: string
  role: Role
  /** Default: the leaf default (365 days), never beyond the member CA's own expiry */
  validityDays?: number
}

/**
 * Issues component certificates with this coordinator's member CA, the way `cert issue` does by hand: for
 * newcomers redeeming invites and for renewals. Every certificate it issues is kept in the CA's issued/ register,
 * so `cert revoke NAME --member-dir` finds it later.
 */
export class CertificateIssuer {
  private readonly init: CertificateIssuerInit
  private readonly log: Logger
  private ca?: { cert: X509Certificate, key: CryptoKey }

  constructor (components: CertificateIssuerComponents, init: CertificateIssuerInit) {
    this.init = init
    this.log = components.logger.forComponent('collective:access:issuer')
  }

  /** Loads the CA now, so a wrong folder fails the daemon's start and not a newcomer's redemption */
  async start (): Promise<void> {
    const { dir, owner } = this.init
    let cert: X509Certificate
    let key: CryptoKey
    try {
      [cert] = await readCertificateChain(join(dir, MEMBER_FILES.cert))
      key = await readCaKey(join(dir, MEMBER_FILES.key))
    } catch (err: any) {
      throw new MemberCaUnavailableError(`memberCa ${dir} holds no usable member CA: ${String(err.name)}: ${String(err.message)}`)
    }
    if (!(await isSignedBy(owner, cert))) {
      throw new MemberCaUnavailableError(`memberCa ${dir} holds the CA ${cert.subject}, which did not certify this coordinator (${owner.subject})`)
    }
    this.ca = { cert, key }
    this.log('issuing with member CA %s from %s', cert.subject, dir)
  }

  async stop (): Promise<void> {
    this.ca = undefined
  }

  /** The member CA certificate: the second link of every chain this issues */
  get certificate (): X509Certificate {
    return this.loaded().cert
  }

  /** A new certificate, registered by name; returns the chain a peer presents: leaf, then the member CA */
  async issue (options: IssueOptions): Promise<X509Certificate[]> {
    const ca = this.loaded()
    const leaf = await issueLeafCertificate({ issuerCert: ca.cert, issuerKey: ca.key, ...options })
    await registerIssued(join(this.init.dir, MEMBER_FILES.issued), options.name, leaf)
    this.log('issued %s certificate for %s (serial %s, until %s)', options.role, leaf.subject, leaf.serialNumber, leaf.notAfter.toISOString())
    return [leaf, ca.cert]
  }

  /** The certificate last issued under this local name, if the register has one */
  async registered (name: string): Promise<X509Certificate | undefined> {
    try {
      return (await readCertificateChain(join(this.init.dir, MEMBER_FILES.issued, `${name}.crt`)))[0]
    } catch {
      return undefined
    }
  }

  private loaded (): { cert: X509Certificate, key: CryptoKey } {
    if (this.ca == null) throw new MemberCaUnavailableError('the certificate issuer is not started')
    return this.ca
  }
}
