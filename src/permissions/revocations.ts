// Revocations spread federation-wide as self-verifying records: whoever receives one can check, against the root
// it already trusts, that the signer had the authority to revoke what it names, without asking anyone.
//
// Who signs: a component certificate is revoked by the member CA that issued it (`cert revoke`, run where that
// member keeps its CA key, as for `cert issue`); a member CA is revoked by the federation root (`member revoke`,
// where the root key is kept). Not a coordinator's libp2p key: a coordinator is a component its member can itself
// revoke, and a stolen coordinator key must not be able to revoke its member's other devices. A record carries the
// revoked certificate itself, so the verifier learns the serial, name and peer ID from signed bytes and checks the
// certificate was really issued by the signer: a member cannot revoke another member's devices.
import { createPublicKey, verify as verifySignature } from 'node:crypto'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { Revocation, RevocationClaims, RevocationKind } from '../gen/revocation.js'
import { MAX_CERTIFICATE_BYTES, X509Certificate, fingerprint, normalizeSerial, type CertificateAuthority, type TrustStore } from '../identity/index.js'
import { certificateDer, ed25519PublicKeyRaw, singleEmailSan } from '../identity/cert-fields.js'
import { isSignedBy } from '../identity/signature.js'
import { verifyMemberCA } from '../identity/verify.js'
import { MalformedRevocationError, RevocationSignatureError } from './errors.js'
import type { PermissionsDatabase } from './database.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'

/** Two certificates (the revoked one and the signer) and room for the rest */
export const MAX_REVOCATION_BYTES = 2 * MAX_CERTIFICATE_BYTES + 1024
export const MAX_REASON_BYTES = 256

const SIGNING_CONTEXT = new TextEncoder().encode('collective-p2p/revocation/1\n')

type Bytes = Uint8Array<ArrayBuffer>

export type RevocationKindName = 'certificate' | 'member'

export interface RevocationRecord {
  kind: RevocationKindName
  /** SHA-256 (hex) of the revoked certificate: one record per certificate */
  fingerprint: string
  serial: string
  /** Federated name of the revoked certificate: `laptop@home.collective.local`, or the member `alice@home.collective.local` */
  name: string
  /** certificate: the revoked component's peer ID, to disconnect and refuse */
  peerId?: string
  version: number
  revokedAtMs: number
  reason: string
  /** The encoded, signed record, as gossiped */
  bytes: Uint8Array
}

export interface CreateRevocationOptions {
  kind: RevocationKindName
  /** The certificate to revoke: a component's leaf, or a member CA */
  certificate: X509Certificate
  /** The member CA that issued the leaf (certificate), or the root (member), with its private key */
  signer: CertificateAuthority
  /** Lamport version; RevocationStore.create picks the next one */
  version: number
  reason?: string
  /** Default: Date.now() */
  now?: number
}

function signedBytes (claims: Uint8Array): Bytes {
  const out = new Uint8Array(SIGNING_CONTEXT.length + claims.length)
  out.set(SIGNING_CONTEXT, 0)
  out.set(claims, SIGNING_CONTEXT.length)
  return out
}

function describe (kind: RevocationKindName, cert: X509Certificate, version: number, revokedAtMs: number, reason: string, bytes: Uint8Array): RevocationRecord {
  const record: RevocationRecord = {
    kind,
    fingerprint: fingerprint(cert),
    serial: normalizeSerial(cert.serialNumber),
    name: singleEmailSan(cert) ?? cert.subject,
    version,
    revokedAtMs,
    reason,
    bytes
  }
  if (kind === 'certificate') {
    const raw = ed25519PublicKeyRaw(cert)
    if (raw == null) throw new MalformedRevocationError('the revoked certificate holds no Ed25519 key')
    record.peerId = peerIdFromPublicKey(publicKeyFromRaw(raw)).toString()
  }
  return record
}

/** Signs a revocation with the issuer's CA key. @throws MalformedRevocationError, RevocationSignatureError */
export async function createRevocation (options: CreateRevocationOptions): Promise<RevocationRecord> {
  const { kind, certificate, signer } = options
  const reason = options.reason ?? ''
  if (new TextEncoder().encode(reason).byteLength > MAX_REASON_BYTES) throw new MalformedRevocationError(`reason is longer than ${MAX_REASON_BYTES} bytes`)
  if (!Number.isSafeInteger(options.version) || options.version < 1) throw new MalformedRevocationError(`version must be a positive integer, got ${options.version}`)
  if (!(await isSignedBy(certificate, signer.cert))) {
    throw new RevocationSignatureError(`${certificate.subject} was not issued by ${signer.cert.subject}, which therefore cannot revoke it`)
  }
  const now = options.now ?? Date.now()
  const claims = RevocationClaims.encode({
    kind: kind === 'member' ? RevocationKind.MEMBER : RevocationKind.CERTIFICATE,
    certificate: certificateDer(certificate) as Bytes,
    version: options.version,
    revokedAtMs: now,
    reason
  })
  const signature = new Uint8Array(await globalThis.crypto.subtle.sign({ name: 'Ed25519' }, signer.keys.privateKey, signedBytes(claims)))
  const bytes = Revocation.encode({
    claims,
    signer: kind === 'member' ? new Uint8Array(0) : certificateDer(signer.cert) as Bytes,
    signature
  })
  return describe(kind, certificate, options.version, now, reason, bytes)
}

/**
 * Checks a received record against the federation's root: the signer is the root (member) or a member CA signed
 * by it (certificate), the revoked certificate was issued by that signer, and the signature covers the claims.
 *
 * @throws MalformedRevocationError, RevocationSignatureError
 */
export async function verifyRevocation (bytes: Uint8Array, trustStore: TrustStore, now = Date.now()): Promise<RevocationRecord> {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0 || bytes.byteLength > MAX_REVOCATION_BYTES) {
    throw new MalformedRevocationError(`a revocation record is 1 to ${MAX_REVOCATION_BYTES} bytes`)
  }
  let envelope: Revocation
  let claims: RevocationClaims
  let revoked: X509Certificate
  try {
    envelope = Revocation.decode(bytes)
    claims = RevocationClaims.decode(envelope.claims)
    revoked = new X509Certificate(claims.certificate.slice())
  } catch (err) {
    throw new MalformedRevocationError(`revocation record does not decode: ${(err as Error).message}`)
  }
  const kind: RevocationKindName | undefined = claims.kind === RevocationKind.MEMBER ? 'member' : claims.kind === RevocationKind.CERTIFICATE ? 'certificate' : undefined
  if (kind == null) throw new MalformedRevocationError('revocation record names no kind')
  if (!Number.isSafeInteger(claims.version) || claims.version < 1) throw new MalformedRevocationError('revocation record has no version')
  if (new TextEncoder().encode(claims.reason).byteLength > MAX_REASON_BYTES) throw new MalformedRevocationError(`reason is longer than ${MAX_REASON_BYTES} bytes`)

  let signer: X509Certificate
  if (kind === 'member') {
    if (envelope.signer.byteLength !== 0) throw new MalformedRevocationError('a member revocation is signed by the root and names no other signer')
    signer = trustStore.root
  } else {
    try {
      signer = new X509Certificate(envelope.signer.slice())
      await verifyMemberCA(signer, trustStore.root, trustStore.federation, new Date(now))
    } catch (err) {
      throw new RevocationSignatureError(`the signer is not a member CA of ${trustStore.federation}: ${(err as Error).message}`)
    }
  }
  let valid = false
  try {
    if (await isSignedBy(revoked, signer)) {
      const key = createPublicKey({ key: Buffer.from(signer.publicKey.rawData), format: 'der', type: 'spki' })
      valid = verifySignature(null, signedBytes(envelope.claims), key, envelope.signature)
    }
  } catch {
    valid = false
  }
  if (!valid) throw new RevocationSignatureError(`revocation of ${revoked.subject} is not signed by its issuer`)
  return describe(kind, revoked, claims.version, claims.revokedAtMs, claims.reason, bytes)
}

/** Makes the trust store refuse what the record revokes, from the next handshake on */
export function applyRevocation (record: RevocationRecord, trustStore: TrustStore): void {
  trustStore.revokeSerial(record.serial)
  if (record.peerId != null) trustStore.revokePeerId(record.peerId)
  if (record.kind === 'member') trustStore.removeMemberCA(record.fingerprint)
}

export interface RevocationStoreComponents {
  database: PermissionsDatabase
  trustStore: TrustStore
  logger: ComponentLogger
  /** Default: Date.now */
  now?: () => number
}

export interface AddResult {
  record: RevocationRecord
  /** False when this record (or a newer one for the same certificate) was already known: do not gossip it on */
  isNew: boolean
}

/**
 * The revocations this peer knows, persistent, applied to its trust store on start and as they arrive. Versions
 * are a Lamport clock: a record created here takes one more than the highest version seen, so anti-entropy can ask
 * a peer for everything `since` the highest version it holds.
 */
export class RevocationStore {
  private readonly components: RevocationStoreComponents
  private readonly log: Logger
  private clock = 0

  constructor (components: RevocationStoreComponents) {
    this.components = components
    this.log = components.logger.forComponent('collective:permissions:revocations')
  }

  /** Applies every stored record to the trust store. Run after the database started and before the host does */
  start (): void {
    for (const record of this.list()) {
      applyRevocation(record, this.components.trustStore)
      this.clock = Math.max(this.clock, record.version)
    }
  }

  /** Highest version known: the digest anti-entropy compares */
  get version (): number {
    return this.clock
  }

  /** Signs, stores and applies a new revocation. The caller gossips `record.bytes` */
  async create (options: Omit<CreateRevocationOptions, 'version' | 'now'>): Promise<RevocationRecord> {
    const record = await createRevocation({ ...options, version: this.clock + 1, now: this.now() })
    this.store(record)
    return record
  }

  /**
   * Verifies, stores and applies a received record.
   *
   * @throws MalformedRevocationError, RevocationSignatureError (nothing is stored or applied)
   */
  async add (bytes: Uint8Array): Promise<AddResult> {
    const record = await verifyRevocation(bytes, this.components.trustStore, this.now())
    this.clock = Math.max(this.clock, record.version)
    const known = this.components.database.stmt<{ version: number }>('SELECT version FROM perm_revocation WHERE key = ?').get(record.fingerprint) as { version: number } | undefined
    if (known != null && known.version >= record.version) return { record, isNew: false }
    this.store(record)
    return { record, isNew: true }
  }

  /** Encoded records newer than `version`, oldest first: what a peer whose digest is `version` is missing */
  since (version: number): Uint8Array[] {
    const rows = this.components.database.stmt<{ record: Buffer }>('SELECT record FROM perm_revocation WHERE version > ? ORDER BY version, key').all(version) as Array<{ record: Buffer }>
    return rows.map(row => new Uint8Array(row.record))
  }

  /** Every stored revocation, decoded without re-verifying (each was verified before it was stored) */
  list (): RevocationRecord[] {
    return this.since(0).map(bytes => {
      const envelope = Revocation.decode(bytes)
      const claims = RevocationClaims.decode(envelope.claims)
      const kind = claims.kind === RevocationKind.MEMBER ? 'member' : 'certificate'
      return describe(kind, new X509Certificate(claims.certificate.slice()), claims.version, claims.revokedAtMs, claims.reason, bytes)
    })
  }

  private store (record: RevocationRecord): void {
    this.components.database.stmt('INSERT OR REPLACE INTO perm_revocation (key, version, record) VALUES (?, ?, ?)')
      .run(record.fingerprint, record.version, Buffer.from(record.bytes))
    this.clock = Math.max(this.clock, record.version)
    applyRevocation(record, this.components.trustStore)
    this.log('revoked %s %s (%s) at version %d', record.kind, record.name, record.serial, record.version)
  }

  private now (): number {
    return (this.components.now ?? Date.now)()
  }
}
