// Issuing the three certificate kinds. The verifier (verify.ts) must accept exactly what is produced here; any new
// extension marked critical must be added to its list of understood extensions.
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { OID, federationOfRoot, nameConstraintsExtension, randomSerial, singleEmailSan, utf8Extension } from './cert-fields.js'
import { ChainInvalidError, RoleNotAllowedError, UnsupportedKeyTypeError } from './errors.js'
import { generateCaKeyPair } from './keys.js'
import { assertMemberDomain, formatFederatedName, isRole, parseFederatedName, validateDomain, validateDomainLabel, type Role } from './names.js'
import { isSignedBy } from './signature.js'
import { x509, type X509Certificate } from './x509.js'
import type { PublicKey } from '@libp2p/interface'

const DAY_MS = 24 * 60 * 60 * 1000
// Peers' clocks disagree by a little; a certificate minted a second ago must already be valid everywhere
const BACKDATE_MS = 5 * 60 * 1000
const ED25519 = { name: 'Ed25519' }

export const DEFAULT_VALIDITY_DAYS = { root: 3650, member: 1825, leaf: 365 } as const

export interface ValidityOptions {
  validityDays?: number
  /** Overrides, mostly for tests that need expired or not-yet-valid certificates */
  notBefore?: Date
  notAfter?: Date
}

export interface CertificateAuthority {
  cert: X509Certificate
  keys: CryptoKeyPair
}

function validity (options: ValidityOptions, defaultDays: number, issuer?: X509Certificate): { notBefore: Date, notAfter: Date } {
  const days = options.validityDays ?? defaultDays
  if (!Number.isFinite(days) || days <= 0) throw new RangeError(`validityDays must be a positive number, got ${days}`)
  const start = options.notBefore?.getTime() ?? Date.now()
  const notBefore = options.notBefore ?? new Date(start - BACKDATE_MS)
  let notAfter = options.notAfter ?? new Date(start + days * DAY_MS)
  // A certificate outliving its issuer would only fail later with a more confusing error
  if (options.notAfter == null && issuer != null && notAfter > issuer.notAfter) notAfter = issuer.notAfter
  if (notAfter <= notBefore) throw new RangeError('notAfter must be later than notBefore')
  return { notBefore, notAfter }
}

export interface CreateRootOptions extends ValidityOptions {
  /** Federation domain, e.g. `collective.local` */
  federation: string
}

export async function createRootCA (options: CreateRootOptions): Promise<CertificateAuthority> {
  validateDomain(options.federation)
  const keys = await generateCaKeyPair()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ CN: [`${options.federation} root`] }],
    keys,
    serialNumber: randomSerial(),
    ...validity(options, DEFAULT_VALIDITY_DAYS.root),
    signingAlgorithm: ED25519,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
    ]
  })
  return { cert, keys }
}

export interface CreateMemberOptions extends ValidityOptions {
  rootCert: X509Certificate
  rootKey: CryptoKey
  /** Member name, e.g. `alice` */
  member: string
  /** Member domain strictly below the federation, e.g. `home.collective.local` */
  domain: string
}

export async function createMemberCA (options: CreateMemberOptions): Promise<CertificateAuthority> {
  validateDomainLabel(options.member, 'member name')
  assertMemberDomain(options.domain, federationOfRoot(options.rootCert))
  const email = formatFederatedName(options.member, options.domain)
  const keys = await generateCaKeyPair()
  const cert = await x509.X509CertificateGenerator.create({
    subject: [{ CN: [email] }],
    issuer: options.rootCert.subjectName,
    publicKey: keys.publicKey,
    signingKey: options.rootKey,
    serialNumber: randomSerial(),
    ...validity(options, DEFAULT_VALIDITY_DAYS.member, options.rootCert),
    signingAlgorithm: ED25519,
    extensions: [
      // pathLen 0: a member CA issues leaves only, never further CAs
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      nameConstraintsExtension([{ kind: 'email', value: options.domain }, { kind: 'dns', value: options.domain }]),
      new x509.SubjectAlternativeNameExtension([{ type: 'email', value: email }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(options.rootCert.publicKey)
    ]
  })
  await assertIssuedBy(cert, options.rootCert)
  return { cert, keys }
}

export interface IssueLeafOptions extends ValidityOptions {
  /** The member CA certificate; the leaf's domain is always taken from it */
  issuerCert: X509Certificate
  issuerKey: CryptoKey
  /** The peer's libp2p Ed25519 public key */
  publicKey: PublicKey
  /** Local part of the federated name, e.g. `node-01` */
  name: string
  role: Role
}

export async function issueLeafCertificate (options: IssueLeafOptions): Promise<X509Certificate> {
  validateDomainLabel(options.name, 'name')
  if (!isRole(options.role)) throw new RoleNotAllowedError(`unknown role ${JSON.stringify(options.role)}`)
  if (options.publicKey.type !== 'Ed25519') throw new UnsupportedKeyTypeError(`peer keys must be Ed25519, not ${options.publicKey.type}`)
  let issuerEmail: string | undefined
  try {
    issuerEmail = singleEmailSan(options.issuerCert)
  } catch (err) {
    throw new ChainInvalidError(`issuer certificate is malformed: ${(err as Error).message}`)
  }
  if (issuerEmail == null) throw new ChainInvalidError(`issuer ${options.issuerCert.subject} is not a member CA (no rfc822Name SAN)`)
  const { domain } = parseFederatedName(issuerEmail)
  const fullName = formatFederatedName(options.name, domain)

  const publicKey = await globalThis.crypto.subtle.importKey('raw', new Uint8Array(options.publicKey.raw), ED25519, true, ['verify'])
  const cert = await x509.X509CertificateGenerator.create({
    subject: [{ CN: [fullName] }],
    issuer: options.issuerCert.subjectName,
    publicKey,
    signingKey: options.issuerKey,
    serialNumber: randomSerial(),
    ...validity(options, DEFAULT_VALIDITY_DAYS.leaf, options.issuerCert),
    signingAlgorithm: ED25519,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'email', value: fullName }]),
      utf8Extension(OID.ROLE, options.role),
      utf8Extension(OID.PEER_ID, peerIdFromPublicKey(options.publicKey).toString()),
      await x509.AuthorityKeyIdentifierExtension.create(options.issuerCert.publicKey)
    ]
  })
  await assertIssuedBy(cert, options.issuerCert)
  return cert
}

// Catches a CA key file paired with the wrong CA certificate at issuance, not at the first failed handshake
async function assertIssuedBy (cert: X509Certificate, issuer: X509Certificate): Promise<void> {
  if (!(await isSignedBy(cert, issuer))) {
    throw new ChainInvalidError(`the signing key does not belong to issuer ${issuer.subject}`)
  }
}
