import '../../../src/polyfill.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createMemberCA, createRootCA, issueLeafCertificate, type CertificateAuthority, type Role } from '../../../src/identity/index.js'
import { OID, nameConstraintsExtension, randomSerial, utf8Extension } from '../../../src/identity/cert-fields.js'
import { x509, type X509Certificate } from '../../../src/identity/x509.js'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'

export const FEDERATION = 'collective.local'
export const ALICE_DOMAIN = 'home.collective.local'
export const BOB_DOMAIN = 'bob.collective.local'
const DAY = 24 * 60 * 60 * 1000

export interface Peer {
  key: Ed25519PrivateKey
  peerId: PeerId
}

export async function makePeer (): Promise<Peer> {
  const key = await generateKeyPair('Ed25519')
  return { key, peerId: peerIdFromPrivateKey(key) }
}

export interface Federation {
  root: CertificateAuthority
  alice: CertificateAuthority
  bob: CertificateAuthority
}

let cached: Promise<Federation> | undefined

/** One federation per test process: CA generation is cheap but there is no reason to repeat it per test. */
export async function federation (): Promise<Federation> {
  cached ??= (async () => {
    const root = await createRootCA({ federation: FEDERATION })
    const alice = await createMemberCA({ rootCert: root.cert, rootKey: root.keys.privateKey, member: 'alice', domain: ALICE_DOMAIN })
    const bob = await createMemberCA({ rootCert: root.cert, rootKey: root.keys.privateKey, member: 'bob', domain: BOB_DOMAIN })
    return { root, alice, bob }
  })()
  return await cached
}

export function der (cert: X509Certificate): Uint8Array {
  return new Uint8Array(cert.rawData)
}

export async function issueNode (ca: CertificateAuthority, peer: Peer, name = 'node-01', role: Role = 'node', extra: { notBefore?: Date, notAfter?: Date } = {}): Promise<X509Certificate> {
  return await issueLeafCertificate({ issuerCert: ca.cert, issuerKey: ca.keys.privateKey, publicKey: peer.key.publicKey, name, role, ...extra })
}

export interface CraftLeafOptions {
  issuer: CertificateAuthority
  /** Raw 32-byte Ed25519 key to certify */
  publicKeyRaw: Uint8Array
  email: string
  role?: string
  peerId?: string
  notBefore?: Date
  notAfter?: Date
  ca?: boolean
}

/** Builds a leaf by hand, bypassing issueLeafCertificate's refusals, to prove the verifier refuses it on its own. */
export async function craftLeaf (o: CraftLeafOptions): Promise<X509Certificate> {
  const publicKey = await crypto.subtle.importKey('raw', new Uint8Array(o.publicKeyRaw), { name: 'Ed25519' }, true, ['verify'])
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(o.ca ?? false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.SubjectAlternativeNameExtension([{ type: 'email', value: o.email }])
  ]
  if (o.role != null) extensions.push(utf8Extension(OID.ROLE, o.role))
  if (o.peerId != null) extensions.push(utf8Extension(OID.PEER_ID, o.peerId))
  return await x509.X509CertificateGenerator.create({
    subject: [{ CN: [o.email] }],
    issuer: o.issuer.cert.subjectName,
    publicKey,
    signingKey: o.issuer.keys.privateKey,
    serialNumber: randomSerial(),
    notBefore: o.notBefore ?? new Date(Date.now() - DAY),
    notAfter: o.notAfter ?? new Date(Date.now() + DAY),
    signingAlgorithm: { name: 'Ed25519' },
    extensions
  })
}

/** A member CA signed by the real root but for a domain outside the federation (createMemberCA refuses this). */
export async function craftMemberCA (root: CertificateAuthority, member: string, domain: string): Promise<CertificateAuthority> {
  const keys = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']) as CryptoKeyPair
  const email = `${member}@${domain}`
  const cert = await x509.X509CertificateGenerator.create({
    subject: [{ CN: [email] }],
    issuer: root.cert.subjectName,
    publicKey: keys.publicKey,
    signingKey: root.keys.privateKey,
    serialNumber: randomSerial(),
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + DAY),
    signingAlgorithm: { name: 'Ed25519' },
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      nameConstraintsExtension([{ kind: 'email', value: domain }, { kind: 'dns', value: domain }]),
      new x509.SubjectAlternativeNameExtension([{ type: 'email', value: email }])
    ]
  })
  return { cert, keys }
}
