import '../../../src/polyfill.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createMemberCA, createRootCA, describeCertificate, issueLeafCertificate, OID } from '../../../src/identity/index.js'
import { x509 } from '../../../src/identity/x509.js'
import { ALICE_DOMAIN, der, federation, issueNode, makePeer } from './fixtures.js'

const DAY = 24 * 60 * 60 * 1000
const named = (name: string) => (err: unknown) => (err as Error).name === name
const days = (a: Date, b: Date) => Math.round((b.getTime() - a.getTime()) / DAY)

test('root CA is self-signed, a critical CA, valid 10 years', async () => {
  const { root } = await federation()
  const cert = root.cert
  assert.equal(cert.subject, 'CN=collective.local root')
  assert.ok(await cert.isSelfSigned())
  const bc = cert.getExtension(x509.BasicConstraintsExtension)
  assert.ok(bc?.ca && bc.critical)
  assert.equal(days(cert.notBefore, cert.notAfter), 3650)
  assert.match(cert.serialNumber, /^[4-7][0-9a-f]{31}$/)
  const info = describeCertificate(cert)
  assert.equal(info.kind, 'root')
  assert.equal(info.federation, 'collective.local')
  assert.equal(info.fingerprint, createHash('sha256').update(der(cert)).digest('hex'))
  assert.ok(info.expiresInDays >= 3649 && info.expiresInDays <= 3650)
})

test('member CA is signed by the root, pathLen 0, with critical name constraints and SAN', async () => {
  const { root, alice } = await federation()
  const cert = alice.cert
  assert.equal(cert.subject, 'CN=alice@home.collective.local')
  assert.equal(cert.issuer, root.cert.subject)
  assert.ok(await cert.verify({ publicKey: root.cert.publicKey, signatureOnly: true }))
  const bc = cert.getExtension(x509.BasicConstraintsExtension)
  assert.ok(bc?.ca === true && bc.pathLength === 0 && bc.critical)
  const nc = cert.getExtension(OID.NAME_CONSTRAINTS)
  assert.ok(nc?.critical)
  // NameConstraints { permittedSubtrees [0] { {rfc822Name home.collective.local} {dNSName home.collective.local} } }
  const host = Buffer.from(ALICE_DOMAIN)
  const subtree = (tag: number) => Buffer.concat([Buffer.from([0x30, host.length + 2, tag, host.length]), host])
  const permitted = Buffer.concat([subtree(0x81), subtree(0x82)])
  assert.deepEqual(Buffer.from(nc.value), Buffer.concat([Buffer.from([0x30, permitted.length + 2, 0xa0, permitted.length]), permitted]))
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension)
  assert.deepEqual(san?.names.toJSON(), [{ type: 'email', value: 'alice@home.collective.local' }])
  assert.equal(days(cert.notBefore, cert.notAfter), 1825)
  assert.deepEqual(
    { ...describeCertificate(cert), fingerprint: undefined, serial: undefined, expiresInDays: undefined, notBefore: undefined, notAfter: undefined },
    { kind: 'member', subject: cert.subject, issuer: root.cert.subject, federatedName: 'alice@home.collective.local', domain: ALICE_DOMAIN, federation: 'collective.local', fingerprint: undefined, serial: undefined, expiresInDays: undefined, notBefore: undefined, notAfter: undefined }
  )
})

test('leaf certifies the peer key with name, role and peer id', async () => {
  const { alice } = await federation()
  const peer = await makePeer()
  const cert = await issueNode(alice, peer, 'node-01', 'coordinator')
  assert.equal(cert.subject, 'CN=node-01@home.collective.local')
  assert.ok(await cert.verify({ publicKey: alice.cert.publicKey, signatureOnly: true }))
  assert.deepEqual(new Uint8Array(cert.publicKey.rawData).slice(-32), peer.key.publicKey.raw)
  assert.equal(cert.getExtension(x509.BasicConstraintsExtension)?.ca, false)
  assert.equal(cert.getExtension(x509.KeyUsagesExtension)?.usages, x509.KeyUsageFlags.digitalSignature)
  const role = cert.getExtension(OID.ROLE)
  const pid = cert.getExtension(OID.PEER_ID)
  assert.equal(role?.critical, false)
  assert.equal(pid?.critical, false)
  assert.deepEqual(Buffer.from(role!.value), Buffer.concat([Buffer.from([0x0c, 11]), Buffer.from('coordinator')]))
  assert.equal(Buffer.from(pid!.value).subarray(2).toString(), peer.peerId.toString())
  assert.equal(days(cert.notBefore, cert.notAfter), 365)

  const info = describeCertificate(cert)
  assert.equal(info.kind, 'leaf')
  assert.equal(info.federatedName, 'node-01@home.collective.local')
  assert.equal(info.domain, ALICE_DOMAIN)
  assert.equal(info.role, 'coordinator')
  assert.equal(info.peerId, peer.peerId.toString())
  assert.equal(info.issuer, alice.cert.subject)
  assert.equal(info.serial, cert.serialNumber)
  assert.deepEqual(info.notAfter, cert.notAfter)
})

test('validity is configurable in days and overridable', async () => {
  const { alice } = await federation()
  const peer = await makePeer()
  const short = await issueNode(alice, peer, 'short', 'node')
  const thirty = await issueLeafCertificate({ issuerCert: alice.cert, issuerKey: alice.keys.privateKey, publicKey: peer.key.publicKey, name: 'n', role: 'client', validityDays: 30 })
  assert.equal(days(thirty.notBefore, thirty.notAfter), 30)
  assert.ok(describeCertificate(thirty).expiresInDays >= 29)
  const past = await issueNode(alice, peer, 'old', 'node', { notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) })
  assert.ok(describeCertificate(past).expiresInDays < 0)
  assert.notEqual(short.serialNumber, thirty.serialNumber)
  await assert.rejects(issueLeafCertificate({ issuerCert: alice.cert, issuerKey: alice.keys.privateKey, publicKey: peer.key.publicKey, name: 'n', role: 'node', validityDays: 0 }), RangeError)
})

test('issuance refuses bad domains, names, roles and mismatched keys', async () => {
  const { root, alice, bob } = await federation()
  const peer = await makePeer()
  const rootKey = root.keys.privateKey
  await assert.rejects(createMemberCA({ rootCert: root.cert, rootKey, member: 'eve', domain: 'home.other.local' }), named('NameConstraintError'))
  await assert.rejects(createMemberCA({ rootCert: root.cert, rootKey, member: 'eve', domain: 'collective.local' }), named('NameConstraintError'))
  await assert.rejects(createMemberCA({ rootCert: root.cert, rootKey, member: 'Eve', domain: 'eve.collective.local' }), named('InvalidNameError'))
  await assert.rejects(createRootCA({ federation: 'Bad Federation' }), named('InvalidNameError'))
  const base = { issuerCert: alice.cert, issuerKey: alice.keys.privateKey, publicKey: peer.key.publicKey, role: 'node' as const }
  await assert.rejects(issueLeafCertificate({ ...base, name: 'node@evil.local' }), named('InvalidNameError'))
  await assert.rejects(issueLeafCertificate({ ...base, name: 'Node_01' }), named('InvalidNameError'))
  await assert.rejects(issueLeafCertificate({ ...base, name: 'n', role: 'admin' as never }), named('RoleNotAllowedError'))
  await assert.rejects(issueLeafCertificate({ ...base, name: 'n', issuerKey: bob.keys.privateKey }), named('ChainInvalidError'))
  await assert.rejects(issueLeafCertificate({ ...base, name: 'n', issuerCert: root.cert, issuerKey: rootKey }), named('ChainInvalidError'))
})
