// Profile checks for the two certificate kinds a peer presents: the member CA (checked against the root) and the
// leaf (checked against that member CA and the peer ID the Noise handshake authenticated). @peculiar/x509's
// chain builder does no verification, so every rule that matters is spelled out here.
import {
  OID, assertNoDuplicateExtensions, emailMatchesConstraint, dnsMatchesConstraint, ed25519PublicKeyRaw, fingerprint,
  normalizeSerial, readNameConstraints, readUtf8Extension, singleEmailSan, singleExtension, subjectAltNames,
  type GeneralNameEntry, type NameConstraints
} from './cert-fields.js'
import { equalBytes } from './der.js'
import {
  CertificateExpiredError, ChainInvalidError, IdentityError, InvalidNameError, NameConstraintError, PeerKeyMismatchError,
  RoleNotAllowedError, UntrustedIssuerError
} from './errors.js'
import { assertMemberDomain, isRole, isWithinDomain, parseFederatedName, type FederatedName, type Role } from './names.js'
import { isSignedBy } from './signature.js'
import { x509, type X509Certificate } from './x509.js'
import type { PeerId } from '@libp2p/interface'

export interface MemberInfo {
  cert: X509Certificate
  /** Local part of the member CA's SAN, e.g. `alice` */
  member: string
  /** Domain the member CA is confined to, e.g. `home.collective.local` */
  domain: string
  constraints: NameConstraints
  fingerprint: string
  serial: string
}

export interface LeafInfo {
  peerId: string
  name: string
  local: string
  domain: string
  role: Role
  serial: string
  notAfter: Date
}

// A critical extension we do not process must make the certificate unusable (RFC 5280 4.2)
const MEMBER_CRITICAL = new Set<string>([OID.BASIC_CONSTRAINTS, OID.KEY_USAGE, OID.NAME_CONSTRAINTS, OID.SUBJECT_ALT_NAME])
const LEAF_CRITICAL = new Set<string>([OID.BASIC_CONSTRAINTS, OID.KEY_USAGE, OID.SUBJECT_ALT_NAME])

/** Runs `fn`, turning structural failures (ours or the library's) into ChainInvalidError with some context. */
export async function structural<T> (what: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof IdentityError && !(err instanceof InvalidNameError)) throw err
    throw new ChainInvalidError(`${what}: ${(err as Error).message}`)
  }
}

export function assertValidAt (cert: X509Certificate, now: Date, what: string): void {
  const t = now.getTime()
  if (t < cert.notBefore.getTime()) {
    throw new CertificateExpiredError(`${what} is not valid before ${cert.notBefore.toISOString()}`)
  }
  if (t > cert.notAfter.getTime()) {
    throw new CertificateExpiredError(`${what} expired at ${cert.notAfter.toISOString()}`)
  }
}

function basicConstraints (cert: X509Certificate): { ca: boolean, pathLength?: number } | undefined {
  const ext = singleExtension(cert, OID.BASIC_CONSTRAINTS)
  if (ext == null) return undefined
  return ext instanceof x509.BasicConstraintsExtension ? ext : new x509.BasicConstraintsExtension(ext.rawData)
}

function keyUsage (cert: X509Certificate): number | undefined {
  const ext = singleExtension(cert, OID.KEY_USAGE)
  if (ext == null) return undefined
  return (ext instanceof x509.KeyUsagesExtension ? ext : new x509.KeyUsagesExtension(ext.rawData)).usages
}

function assertCriticalKnown (cert: X509Certificate, known: Set<string>, what: string): void {
  for (const ext of cert.extensions) {
    if (ext.critical && !known.has(ext.type)) throw new ChainInvalidError(`${what} has unsupported critical extension ${ext.type}`)
  }
}

/** Is a permitted/excluded base confined to `domain`? Only such bases may appear in a member CA. */
function baseWithinDomain (base: GeneralNameEntry, domain: string): boolean {
  if (base.kind === 'email') {
    const host = base.value.slice(base.value.lastIndexOf('@') + 1).replace(/^\./, '')
    return isWithinDomain(host.toLowerCase(), domain)
  }
  if (base.kind === 'dns') return isWithinDomain(base.value.toLowerCase().replace(/^\./, ''), domain)
  return false
}

/**
 * Verifies a member CA against the federation root at `now`: root signature, validity, CA flag, and critical
 * name constraints that confine it to one member domain strictly below the federation.
 */
export async function verifyMemberCA (cert: X509Certificate, root: X509Certificate, federation: string, now: Date): Promise<MemberInfo> {
  const what = `member CA ${cert.subject}`
  await structural(what, () => assertNoDuplicateExtensions(cert))
  if (!(await structural(what, async () => await isSignedBy(cert, root)))) {
    throw new UntrustedIssuerError(`${what} is not signed by the root of ${federation}`)
  }
  assertValidAt(cert, now, what)
  const bc = await structural(what, () => basicConstraints(cert))
  if (bc?.ca !== true) throw new ChainInvalidError(`${what} is not a CA (basicConstraints CA:true missing)`)
  const ku = await structural(what, () => keyUsage(cert))
  if (ku != null && (ku & x509.KeyUsageFlags.keyCertSign) === 0) throw new ChainInvalidError(`${what} may not sign certificates (keyUsage)`)
  assertCriticalKnown(cert, MEMBER_CRITICAL, what)

  const email = await structural(what, () => singleEmailSan(cert))
  if (email == null) throw new ChainInvalidError(`${what} has no rfc822Name subjectAltName`)
  const { local: member, domain } = await structural(what, () => parseFederatedName(email))
  assertMemberDomain(domain, federation)

  const nc = await structural(what, () => readNameConstraints(cert))
  if (nc == null) throw new NameConstraintError(`${what} carries no name constraints`)
  if (!nc.critical) throw new NameConstraintError(`${what} name constraints are not critical`)
  const { permitted, excluded } = nc.constraints
  if (!permitted.some(p => p.kind === 'email')) throw new NameConstraintError(`${what} does not constrain rfc822 names`)
  for (const base of permitted) {
    if (!baseWithinDomain(base, domain)) {
      throw new NameConstraintError(`${what} permits ${base.kind}:${base.value}, outside its domain ${domain}`)
    }
  }
  for (const base of excluded) {
    if (base.kind === 'other') throw new ChainInvalidError(`${what} has an unsupported excluded name constraint form`)
  }
  return { cert, member, domain, constraints: nc.constraints, fingerprint: fingerprint(cert), serial: normalizeSerial(cert.serialNumber) }
}

function assertNameAllowed (name: FederatedName, email: string, member: MemberInfo): void {
  const { permitted, excluded } = member.constraints
  const emailPermitted = permitted.filter(p => p.kind === 'email')
  const inside = emailPermitted.some(p => emailMatchesConstraint(email, p.value))
  const barred = excluded.some(p => p.kind === 'email' && emailMatchesConstraint(email, p.value))
  // dNSName subtrees also constrain the host part of the identity, as a DNS name would be derived from it
  const dnsPermitted = permitted.filter(p => p.kind === 'dns')
  const dnsOk = dnsPermitted.length === 0 || dnsPermitted.some(p => dnsMatchesConstraint(name.domain, p.value))
  const dnsBarred = excluded.some(p => p.kind === 'dns' && dnsMatchesConstraint(name.domain, p.value))
  if (!inside || barred || !dnsOk || dnsBarred || name.domain !== member.domain) {
    throw new NameConstraintError(`${email} is outside the domain ${member.domain} of member ${member.member}`)
  }
}

/**
 * Verifies a leaf against an already verified member CA and the peer ID whose key Noise has authenticated.
 */
export async function verifyLeaf (cert: X509Certificate, member: MemberInfo, expectedPeerId: PeerId, now: Date): Promise<LeafInfo> {
  const what = `leaf ${cert.subject}`
  await structural(what, () => assertNoDuplicateExtensions(cert))
  if (!(await structural(what, async () => await isSignedBy(cert, member.cert)))) {
    throw new ChainInvalidError(`${what} is not signed by member CA ${member.cert.subject}`)
  }
  assertValidAt(cert, now, what)
  const bc = await structural(what, () => basicConstraints(cert))
  if (bc?.ca === true) throw new ChainInvalidError(`${what} is a CA certificate`)
  const ku = await structural(what, () => keyUsage(cert))
  if (ku != null && (ku & x509.KeyUsageFlags.digitalSignature) === 0) throw new ChainInvalidError(`${what} keyUsage lacks digitalSignature`)
  assertCriticalKnown(cert, LEAF_CRITICAL, what)

  // Identity comes from the SAN alone, so it must be exactly one rfc822Name: nothing for a verifier to choose between
  const sans = await structural(what, () => subjectAltNames(cert))
  if (sans.length !== 1 || sans[0].kind !== 'email') throw new ChainInvalidError(`${what} must carry exactly one rfc822Name subjectAltName`)
  const email = sans[0].value
  const name = await structural(what, () => parseFederatedName(email))
  assertNameAllowed(name, email, member)

  const raw = ed25519PublicKeyRaw(cert)
  const expected = expectedPeerId.type === 'Ed25519' ? expectedPeerId.publicKey : undefined
  if (raw == null || expected == null || !equalBytes(raw, expected.raw)) {
    throw new PeerKeyMismatchError(`${what} does not certify the key of peer ${expectedPeerId.toString()}`)
  }
  const peerId = await structural(what, () => readUtf8Extension(cert, OID.PEER_ID))
  if (peerId !== expectedPeerId.toString()) {
    throw new PeerKeyMismatchError(`${what} names peer ${String(peerId)}, not ${expectedPeerId.toString()}`)
  }
  const role = await structural(what, () => readUtf8Extension(cert, OID.ROLE))
  if (!isRole(role)) throw new RoleNotAllowedError(`${what} has ${role == null ? 'no role' : `unknown role ${JSON.stringify(role)}`}`)

  return { peerId, name: email, local: name.local, domain: name.domain, role, serial: normalizeSerial(cert.serialNumber), notAfter: cert.notAfter }
}

