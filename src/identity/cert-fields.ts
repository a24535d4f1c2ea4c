// Reading and writing the certificate fields our trust model depends on. Parsing is done on the DER ourselves
// where the library either does not model the structure (our extensions, NameConstraints) or would hide the exact
// bytes we need (the signed TBS, the raw Ed25519 key).
import { createHash } from 'node:crypto'
import { DerError, TAG, encodeTlv, encodeUtf8String, decodeUtf8String, equalBytes, readChildren, readSingle, type Tlv } from './der.js'
import { InvalidSerialError } from './errors.js'
import { validateDomain } from './names.js'
import { x509, type X509Certificate } from './x509.js'

export const OID = {
  ED25519: '1.3.101.112',
  BASIC_CONSTRAINTS: '2.5.29.19',
  KEY_USAGE: '2.5.29.15',
  SUBJECT_ALT_NAME: '2.5.29.17',
  NAME_CONSTRAINTS: '2.5.29.30',
  SUBJECT_KEY_ID: '2.5.29.14',
  AUTHORITY_KEY_ID: '2.5.29.35',
  /** Our private arc; every arc stays below 2^53 so JS tooling can handle it */
  ARC: '1.3.6.1.4.1.59547.1',
  ROLE: '1.3.6.1.4.1.59547.1.1',
  PEER_ID: '1.3.6.1.4.1.59547.1.2'
} as const

/** AlgorithmIdentifier for Ed25519 (RFC 8410: parameters absent) */
const ED25519_ALG_ID = Uint8Array.from([0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70])
/** Everything of an Ed25519 SubjectPublicKeyInfo before the 32 key bytes */
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00])

export const ROOT_CN_SUFFIX = ' root'

export function certificateDer (cert: X509Certificate): Uint8Array {
  return new Uint8Array(cert.rawData)
}

export function sha256 (data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest())
}

export function toHex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

export function fingerprint (cert: X509Certificate): string {
  return toHex(sha256(certificateDer(cert)))
}

/** Canonical serial form: lowercase hex without separators or leading zero bytes, so user input and certs compare. */
export function normalizeSerial (serial: string): string {
  const hex = serial.trim().toLowerCase().replace(/[:\s]/g, '').replace(/^0x/, '')
  if (!/^[0-9a-f]+$/.test(hex)) throw new InvalidSerialError(`invalid serial number ${JSON.stringify(serial)}: expected hex`)
  const stripped = hex.replace(/^0+/, '')
  return stripped === '' ? '0' : stripped
}

/** 16 random bytes with the top bit clear and the next one set: positive, always 16 bytes, never a leading zero. */
export function randomSerial (): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16))
  bytes[0] = (bytes[0] & 0x7f) | 0x40
  return toHex(bytes)
}

export function spkiFromEd25519Raw (raw: Uint8Array): Uint8Array {
  if (raw.length !== 32) throw new DerError('Ed25519 public key must be 32 bytes')
  const out = new Uint8Array(ED25519_SPKI_PREFIX.length + 32)
  out.set(ED25519_SPKI_PREFIX, 0)
  out.set(raw, ED25519_SPKI_PREFIX.length)
  return out
}

/** The 32 raw key bytes if the certificate's key is Ed25519, otherwise undefined. */
export function ed25519PublicKeyRaw (cert: X509Certificate): Uint8Array | undefined {
  const spki = new Uint8Array(cert.publicKey.rawData)
  if (spki.length !== ED25519_SPKI_PREFIX.length + 32) return undefined
  if (!equalBytes(spki.subarray(0, ED25519_SPKI_PREFIX.length), ED25519_SPKI_PREFIX)) return undefined
  return spki.slice(ED25519_SPKI_PREFIX.length)
}

export interface SignedParts {
  tbs: Uint8Array
  signature: Uint8Array
  issuer: Uint8Array
  subject: Uint8Array
}

/**
 * Splits a certificate into the bytes that were signed and the signature, insisting on Ed25519 both in the outer
 * signatureAlgorithm and in the TBS copy (the library checks neither against the other).
 */
export function signedParts (der: Uint8Array): SignedParts {
  const cert = readSingle(der, TAG.SEQUENCE)
  const [tbs, alg, sig, ...rest] = readChildren(cert.value)
  if (tbs == null || alg == null || sig == null || rest.length > 0) throw new DerError('certificate is not a 3-element sequence')
  if (tbs.tag !== TAG.SEQUENCE) throw new DerError('TBSCertificate is not a sequence')
  if (!equalBytes(alg.raw, ED25519_ALG_ID)) throw new DerError('signature algorithm is not Ed25519')
  if (sig.tag !== TAG.BIT_STRING || sig.value.length !== 65 || sig.value[0] !== 0) throw new DerError('malformed Ed25519 signature')
  const fields = readChildren(tbs.value)
  // version [0] EXPLICIT must be present: we only accept v3
  if (fields[0]?.tag !== 0xa0) throw new DerError('not an X.509 v3 certificate')
  const [, serial, tbsAlg, issuer, validity, subject] = fields
  if (serial?.tag !== TAG.INTEGER || tbsAlg == null || issuer?.tag !== TAG.SEQUENCE || validity?.tag !== TAG.SEQUENCE || subject?.tag !== TAG.SEQUENCE) {
    throw new DerError('malformed TBSCertificate')
  }
  if (!equalBytes(tbsAlg.raw, ED25519_ALG_ID)) throw new DerError('TBS signature algorithm is not Ed25519')
  return { tbs: tbs.raw, signature: sig.value.subarray(1), issuer: issuer.raw, subject: subject.raw }
}

/** All extensions of the given type; more than one is a malformed certificate (RFC 5280 4.2). */
export function singleExtension (cert: X509Certificate, oid: string): x509.Extension | undefined {
  const found = cert.extensions.filter(e => e.type === oid)
  if (found.length > 1) throw new DerError(`duplicate extension ${oid}`)
  return found[0]
}

export function assertNoDuplicateExtensions (cert: X509Certificate): void {
  const seen = new Set<string>()
  for (const ext of cert.extensions) {
    if (seen.has(ext.type)) throw new DerError(`duplicate extension ${ext.type}`)
    seen.add(ext.type)
  }
}

export function utf8Extension (oid: string, text: string): x509.Extension {
  return new x509.Extension(oid, false, encodeUtf8String(text))
}

export function readUtf8Extension (cert: X509Certificate, oid: string): string | undefined {
  const ext = singleExtension(cert, oid)
  return ext == null ? undefined : decodeUtf8String(new Uint8Array(ext.value))
}

export type GeneralNameKind = 'email' | 'dns' | 'other'

export interface GeneralNameEntry {
  kind: GeneralNameKind
  /** For email/dns the IA5String text; for other kinds the hex of the element */
  value: string
}

// GeneralName CHOICE tags (context-specific, implicit): rfc822Name [1], dNSName [2]
const TAG_RFC822 = 0x81
const TAG_DNS = 0x82

function decodeIa5 (bytes: Uint8Array): string {
  for (const b of bytes) if (b > 0x7f) throw new DerError('IA5String contains non-ASCII bytes')
  return Buffer.from(bytes).toString('latin1')
}

function decodeGeneralName (tlv: Tlv): GeneralNameEntry {
  if (tlv.tag === TAG_RFC822) return { kind: 'email', value: decodeIa5(tlv.value) }
  if (tlv.tag === TAG_DNS) return { kind: 'dns', value: decodeIa5(tlv.value) }
  return { kind: 'other', value: toHex(tlv.raw) }
}

function encodeGeneralName (entry: { kind: 'email' | 'dns', value: string }): Uint8Array {
  return encodeTlv(entry.kind === 'email' ? TAG_RFC822 : TAG_DNS, Buffer.from(entry.value, 'ascii'))
}

/** Subject alternative names, read from DER so unusual name forms become 'other' instead of a library exception. */
export function subjectAltNames (cert: X509Certificate): GeneralNameEntry[] {
  const ext = singleExtension(cert, OID.SUBJECT_ALT_NAME)
  if (ext == null) return []
  const seq = readSingle(new Uint8Array(ext.value), TAG.SEQUENCE)
  const names = readChildren(seq.value).map(decodeGeneralName)
  if (names.length === 0) throw new DerError('empty subjectAltName')
  return names
}

/** The single rfc822Name SAN, or undefined; more than one is refused because identity must be unambiguous. */
export function singleEmailSan (cert: X509Certificate): string | undefined {
  const emails = subjectAltNames(cert).filter(n => n.kind === 'email')
  if (emails.length > 1) throw new DerError('more than one rfc822Name in subjectAltName')
  return emails[0]?.value
}

export interface NameConstraints {
  permitted: GeneralNameEntry[]
  excluded: GeneralNameEntry[]
}

/** NameConstraints with only permitted subtrees of the given bases (minimum 0, maximum absent, per RFC 5280). */
export function nameConstraintsExtension (permitted: Array<{ kind: 'email' | 'dns', value: string }>): x509.Extension {
  const subtrees = permitted.map(p => encodeTlv(TAG.SEQUENCE, encodeGeneralName(p)))
  const value = encodeTlv(TAG.SEQUENCE, encodeTlv(0xa0, ...subtrees))
  return new x509.Extension(OID.NAME_CONSTRAINTS, true, value)
}

function decodeSubtrees (value: Uint8Array): GeneralNameEntry[] {
  const out: GeneralNameEntry[] = []
  for (const subtree of readChildren(value)) {
    if (subtree.tag !== TAG.SEQUENCE) throw new DerError('GeneralSubtree is not a sequence')
    const [base, ...limits] = readChildren(subtree.value)
    if (base == null) throw new DerError('GeneralSubtree without base')
    // RFC 5280 4.2.1.10: minimum MUST be zero (so absent in DER) and maximum MUST be absent
    if (limits.length > 0) throw new DerError('GeneralSubtree minimum/maximum are not supported')
    out.push(decodeGeneralName(base))
  }
  return out
}

export function readNameConstraints (cert: X509Certificate): { critical: boolean, constraints: NameConstraints } | undefined {
  const ext = singleExtension(cert, OID.NAME_CONSTRAINTS)
  if (ext == null) return undefined
  const seq = readSingle(new Uint8Array(ext.value), TAG.SEQUENCE)
  const constraints: NameConstraints = { permitted: [], excluded: [] }
  let last = -1
  for (const part of readChildren(seq.value)) {
    const index = part.tag === 0xa0 ? 0 : part.tag === 0xa1 ? 1 : -1
    if (index <= last) throw new DerError('malformed NameConstraints')
    last = index
    const subtrees = decodeSubtrees(part.value)
    if (subtrees.length === 0) throw new DerError('empty GeneralSubtrees')
    if (index === 0) constraints.permitted = subtrees
    else constraints.excluded = subtrees
  }
  if (last < 0) throw new DerError('empty NameConstraints')
  return { critical: ext.critical, constraints }
}

/**
 * RFC 5280 4.2.1.10 rfc822Name matching: a constraint with '@' names one mailbox, one starting with '.' any host
 * below that domain, anything else exactly that host. Comparison is case-insensitive.
 */
export function emailMatchesConstraint (email: string, constraint: string): boolean {
  const e = email.toLowerCase()
  const c = constraint.toLowerCase()
  if (c.includes('@')) return e === c
  const host = e.slice(e.lastIndexOf('@') + 1)
  if (c.startsWith('.')) return host.endsWith(c)
  return host === c
}

/** RFC 5280 dNSName matching: the name itself or any name formed by adding labels on the left. */
export function dnsMatchesConstraint (name: string, constraint: string): boolean {
  const n = name.toLowerCase()
  const c = constraint.toLowerCase().replace(/^\./, '')
  return c === '' || n === c || n.endsWith(`.${c}`)
}

/** The federation domain a root certificate stands for, from its subject CN `<federation> root`. */
export function federationOfRoot (root: X509Certificate): string {
  const cns = root.subjectName.getField('CN')
  const cn = cns.length === 1 ? cns[0] : undefined
  if (cn == null || !cn.endsWith(ROOT_CN_SUFFIX)) {
    throw new DerError(`root subject ${JSON.stringify(root.subject)} is not "CN=<federation>${ROOT_CN_SUFFIX}"`)
  }
  const federation = cn.slice(0, -ROOT_CN_SUFFIX.length)
  validateDomain(federation)
  return federation
}
