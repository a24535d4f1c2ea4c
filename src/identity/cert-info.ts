// A plain summary of any of our certificates, for `cert show` and logs. It describes; it does not verify.
import { OID, ROOT_CN_SUFFIX, fingerprint, normalizeSerial, readUtf8Extension, singleEmailSan, singleExtension } from './cert-fields.js'
import { isRole, parseFederatedName, type Role } from './names.js'
import { x509, type X509Certificate } from './x509.js'

export type CertificateKind = 'root' | 'member' | 'leaf'

export interface CertificateInfo {
  kind: CertificateKind
  subject: string
  /** `local@domain`, for member CAs and leaves */
  federatedName?: string
  role?: Role
  peerId?: string
  domain?: string
  federation?: string
  issuer: string
  /** Lowercase hex, in the form revocation lists use */
  serial: string
  notBefore: Date
  notAfter: Date
  /** sha256 of the DER, hex */
  fingerprint: string
  /** Whole days until expiry; negative once expired */
  expiresInDays: number
}

const DAY_MS = 24 * 60 * 60 * 1000

function attempt<T> (fn: () => T): T | undefined {
  try { return fn() } catch { return undefined }
}

function federationFromCn (cn: string | undefined): string | undefined {
  return cn != null && cn.endsWith(ROOT_CN_SUFFIX) ? cn.slice(0, -ROOT_CN_SUFFIX.length) : undefined
}

function isCa (cert: X509Certificate): boolean {
  const ext = attempt(() => singleExtension(cert, OID.BASIC_CONSTRAINTS))
  if (ext == null) return false
  return attempt(() => (ext instanceof x509.BasicConstraintsExtension ? ext : new x509.BasicConstraintsExtension(ext.rawData)).ca) ?? false
}

export function describeCertificate (cert: X509Certificate, now = new Date()): CertificateInfo {
  const selfIssued = cert.subject === cert.issuer
  const kind: CertificateKind = isCa(cert) ? (selfIssued ? 'root' : 'member') : 'leaf'
  const info: CertificateInfo = {
    kind,
    subject: cert.subject,
    issuer: cert.issuer,
    serial: normalizeSerial(cert.serialNumber),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    fingerprint: fingerprint(cert),
    expiresInDays: Math.floor((cert.notAfter.getTime() - now.getTime()) / DAY_MS)
  }
  if (kind === 'root') {
    info.federation = federationFromCn(cert.subjectName.getField('CN')[0])
    return info
  }
  const email = attempt(() => singleEmailSan(cert))
  const name = email == null ? undefined : attempt(() => parseFederatedName(email))
  if (name != null) {
    info.federatedName = `${name.local}@${name.domain}`
    info.domain = name.domain
  }
  if (kind === 'member') {
    info.federation = federationFromCn(cert.issuerName.getField('CN')[0])
    return info
  }
  const role = attempt(() => readUtf8Extension(cert, OID.ROLE))
  if (isRole(role)) info.role = role
  const peerId = attempt(() => readUtf8Extension(cert, OID.PEER_ID))
  if (peerId != null) info.peerId = peerId
  return info
}
