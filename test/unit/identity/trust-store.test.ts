import '../../../src/polyfill.js'
import { test, describe, before } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import {
  TrustStore, createMemberCA, createRootCA, describeCertificate, fingerprint, parseRootFingerprintPrologue,
  MAX_CERTIFICATE_BYTES
} from '../../../src/identity/index.js'
import { ALICE_DOMAIN, craftLeaf, craftMemberCA, der, federation, issueNode, makePeer, type Federation, type Peer } from './fixtures.js'

const DAY = 24 * 60 * 60 * 1000

function rejectsWith (name: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.equal((err as Error).name, name, `expected ${name}, got ${(err as Error).name}: ${(err as Error).message}`)
    return true
  }
}

describe('TrustStore.verifyChain', () => {
  let fed: Federation
  let peer: Peer
  let other: Peer
  let store: TrustStore

  before(async () => {
    fed = await federation()
    peer = await makePeer()
    other = await makePeer()
    store = new TrustStore({ root: fed.root.cert })
  })

  test('accepts leaf + member CA and returns the identity', async () => {
    const leaf = await issueNode(fed.alice, peer)
    const id = await store.verifyChain([der(leaf), der(fed.alice.cert)], peer.peerId)
    assert.deepEqual(id, {
      peerId: peer.peerId.toString(),
      name: 'node-01@home.collective.local',
      local: 'node-01',
      domain: ALICE_DOMAIN,
      member: 'alice',
      role: 'node',
      serial: describeCertificate(leaf).serial,
      notAfter: leaf.notAfter,
      memberCaFingerprint: fingerprint(fed.alice.cert)
    })
  })

  test('accepts a leaf alone when its member CA is in the store, and a chain that appends our root', async () => {
    const leaf = await issueNode(fed.alice, peer, 'laptop', 'client')
    const withMembers = new TrustStore({ root: fed.root.cert, members: [fed.alice.cert] })
    assert.equal((await withMembers.verifyChain([der(leaf)], peer.peerId)).role, 'client')
    const added = new TrustStore({ root: fed.root.cert })
    assert.deepEqual(await added.addMemberCA(fed.bob.cert), { member: 'bob', domain: 'bob.collective.local', fingerprint: fingerprint(fed.bob.cert), serial: describeCertificate(fed.bob.cert).serial })
    await assert.rejects(added.verifyChain([der(leaf)], peer.peerId), rejectsWith('UntrustedIssuerError'))
    await added.addMemberCA(fed.alice.cert)
    assert.equal((await added.verifyChain([der(leaf)], peer.peerId)).member, 'alice')
    const id = await store.verifyChain([der(leaf), der(fed.alice.cert), der(fed.root.cert)], peer.peerId)
    assert.equal(id.name, 'laptop@home.collective.local')
  })

  test('exposes the federation and the root fingerprint used as Noise prologue', () => {
    const digest = createHash('sha256').update(der(fed.root.cert)).digest()
    assert.equal(store.federation, 'collective.local')
    assert.equal(store.rootFingerprint, digest.toString('hex'))
    assert.deepEqual(Buffer.from(parseRootFingerprintPrologue(fed.root.cert)), digest)
    assert.deepEqual(Buffer.from(store.rootFingerprintBytes), digest)
  })

  test('refuses a chain from another federation root', async () => {
    const foreignRoot = await createRootCA({ federation: 'other.local' })
    const foreignMember = await createMemberCA({ rootCert: foreignRoot.cert, rootKey: foreignRoot.keys.privateKey, member: 'eve', domain: 'home.other.local' })
    const leaf = await issueNode(foreignMember, peer)
    await assert.rejects(store.verifyChain([der(leaf), der(foreignMember.cert)], peer.peerId), rejectsWith('UntrustedIssuerError'))
    await assert.rejects(store.verifyChain([der(leaf), der(foreignMember.cert), der(foreignRoot.cert)], peer.peerId), rejectsWith('UntrustedIssuerError'))
    await assert.rejects(store.verifyChain([der(leaf)], peer.peerId), rejectsWith('UntrustedIssuerError'))
    await assert.rejects(store.addMemberCA(foreignMember.cert), rejectsWith('UntrustedIssuerError'))
  })

  test('refuses a root with our federation name but another key', async () => {
    const impostor = await createRootCA({ federation: 'collective.local' })
    const member = await createMemberCA({ rootCert: impostor.cert, rootKey: impostor.keys.privateKey, member: 'alice', domain: ALICE_DOMAIN })
    const leaf = await issueNode(member, peer)
    await assert.rejects(store.verifyChain([der(leaf), der(member.cert)], peer.peerId), rejectsWith('UntrustedIssuerError'))
  })

  test('refuses a leaf whose key is not the peer key', async () => {
    const leaf = await issueNode(fed.alice, peer)
    await assert.rejects(store.verifyChain([der(leaf), der(fed.alice.cert)], other.peerId), rejectsWith('PeerKeyMismatchError'))
  })

  test('refuses a leaf whose peer-id extension names another peer', async () => {
    const leaf = await craftLeaf({ issuer: fed.alice, publicKeyRaw: peer.key.publicKey.raw, email: 'node-01@home.collective.local', role: 'node', peerId: other.peerId.toString() })
    await assert.rejects(store.verifyChain([der(leaf), der(fed.alice.cert)], peer.peerId), rejectsWith('PeerKeyMismatchError'))
  })

  test('refuses an expired leaf', async () => {
    const leaf = await issueNode(fed.alice, peer, 'node-01', 'node', { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) })
    await assert.rejects(store.verifyChain([der(leaf), der(fed.alice.cert)], peer.peerId), rejectsWith('CertificateExpiredError'))
  })

  test('refuses a leaf that is not valid yet', async () => {
    const leaf = await issueNode(fed.alice, peer, 'node-01', 'node', { notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 10 * DAY) })
    await assert.rejects(store.verifyChain([der(leaf), der(fed.alice.cert)], peer.peerId), rejectsWith('CertificateExpiredError'))
  })

  test('refuses a chain whose member CA has expired at the given time', async () => {
    const leaf = await issueNode(fed.alice, peer)
    const later = new Date(fed.alice.cert.notAfter.getTime() + DAY)
    await assert.rejects(store.verifyChain([der(leaf), der(fed.alice.cert)], peer.peerId, later), rejectsWith('CertificateExpiredError'))
  })

  test('refuses a leaf named outside the member domain (crafted with alice\'s key)', async () => {
    for (const email of ['node-01@evil.collective.local', 'node-01@sub.home.collective.local', 'node-01@collective.local']) {
      const leaf = await craftLeaf({ issuer: fed.alice, publicKeyRaw: peer.key.publicKey.raw, email, role: 'node', peerId: peer.peerId.toString() })
      await assert.rejects(store.verifyChain([der(leaf), der(fed.alice.cert)], peer.peerId), rejectsWith('NameConstraintError'), email)
    }
  })

  test('refuses bob\'s member CA signing a leaf in alice\'s domain', async () => {
    const leaf = await craftLeaf({ issuer: fed.bob, publicKeyRaw: peer.key.publicKey.raw, email: 'node-01@home.collective.local', role: 'node', peerId: peer.peerId.toString() })
    await assert.rejects(store.verifyChain([der(leaf), der(fed.bob.cert)], peer.peerId), rejectsWith('NameConstraintError'))
  })

  test('refuses a member CA whose domain is outside the federation (crafted)', async () => {
    const rogue = await craftMemberCA(fed.root, 'mallory', 'evil.example')
    const leaf = await craftLeaf({ issuer: rogue, publicKeyRaw: peer.key.publicKey.raw, email: 'node-01@evil.example', role: 'node', peerId: peer.peerId.toString() })
    await assert.rejects(store.verifyChain([der(leaf), der(rogue.cert)], peer.peerId), rejectsWith('NameConstraintError'))
    await assert.rejects(new TrustStore({ root: fed.root.cert }).addMemberCA(rogue.cert), rejectsWith('NameConstraintError'))
    // the federation domain itself is not a member domain either
    const greedy = await craftMemberCA(fed.root, 'mallory', 'collective.local')
    await assert.rejects(new TrustStore({ root: fed.root.cert }).addMemberCA(greedy.cert), rejectsWith('NameConstraintError'))
  })

  test('refuses an unknown or missing role (crafted)', async () => {
    const common = { issuer: fed.alice, publicKeyRaw: peer.key.publicKey.raw, email: 'node-01@home.collective.local', peerId: peer.peerId.toString() }
    const admin = await craftLeaf({ ...common, role: 'admin' })
    await assert.rejects(store.verifyChain([der(admin), der(fed.alice.cert)], peer.peerId), rejectsWith('RoleNotAllowedError'))
    const none = await craftLeaf(common)
    await assert.rejects(store.verifyChain([der(none), der(fed.alice.cert)], peer.peerId), rejectsWith('RoleNotAllowedError'))
  })

  test('refuses revoked serials and peer ids', async () => {
    const leaf = await issueNode(fed.alice, peer)
    const chain = [der(leaf), der(fed.alice.cert)]
    const serial = describeCertificate(leaf).serial

    const bySerial = new TrustStore({ root: fed.root.cert })
    bySerial.revokeSerial(serial.toUpperCase())
    assert.equal(bySerial.isRevoked({ serial }), true)
    await assert.rejects(bySerial.verifyChain(chain, peer.peerId), rejectsWith('CertificateRevokedError'))

    const byPeer = new TrustStore({ root: fed.root.cert })
    byPeer.revokePeerId(peer.peerId)
    assert.equal(byPeer.isRevoked({ peerId: peer.peerId }), true)
    assert.equal(byPeer.isRevoked({ peerId: other.peerId.toString() }), false)
    await assert.rejects(byPeer.verifyChain(chain, peer.peerId), rejectsWith('CertificateRevokedError'))

    const fromInit = new TrustStore({ root: fed.root.cert, revokedPeerIds: [peer.peerId.toString()] })
    await assert.rejects(fromInit.verifyChain(chain, peer.peerId), rejectsWith('CertificateRevokedError'))

    // revoking the member CA revokes everything it issued
    const byMember = new TrustStore({ root: fed.root.cert, revokedSerials: [describeCertificate(fed.alice.cert).serial] })
    await assert.rejects(byMember.verifyChain(chain, peer.peerId), rejectsWith('CertificateRevokedError'))
  })

  test('refuses garbage DER', async () => {
    const leaf = der(await issueNode(fed.alice, peer))
    const cases = [
      new Uint8Array([1, 2, 3, 4]),
      new Uint8Array(0),
      leaf.subarray(0, leaf.length - 5),
      Uint8Array.from([...leaf, 0]),
      (() => { const bad = leaf.slice(); bad[bad.length - 10] ^= 0xff; return bad })()
    ]
    for (const bad of cases) {
      await assert.rejects(store.verifyChain([bad, der(fed.alice.cert)], peer.peerId), rejectsWith('ChainInvalidError'))
    }
    await assert.rejects(store.verifyChain([], peer.peerId), rejectsWith('ChainInvalidError'))
  })

  test('refuses a leaf not signed by the member CA presented with it', async () => {
    const leaf = await issueNode(fed.alice, peer)
    await assert.rejects(store.verifyChain([der(leaf), der(fed.bob.cert)], peer.peerId), rejectsWith('ChainInvalidError'))
  })

  test('refuses oversized chains before decoding them', async () => {
    const leaf = der(await issueNode(fed.alice, peer))
    const five = [leaf, der(fed.alice.cert), der(fed.root.cert), der(fed.root.cert), der(fed.root.cert)]
    await assert.rejects(store.verifyChain(five, peer.peerId), rejectsWith('ChainInvalidError'))
    const huge = new Uint8Array(MAX_CERTIFICATE_BYTES + 1).fill(0x30)
    await assert.rejects(store.verifyChain([huge, der(fed.alice.cert)], peer.peerId), rejectsWith('ChainInvalidError'))
    await assert.rejects(store.verifyChain([leaf, huge], peer.peerId), rejectsWith('ChainInvalidError'))
  })

  test('refuses a non-CA certificate as root, and checks the root validity too', async () => {
    assert.throws(() => new TrustStore({ root: fed.alice.cert }), rejectsWith('ChainInvalidError'))
    const leaf = await issueNode(fed.alice, peer)
    const afterRoot = new Date(fed.root.cert.notAfter.getTime() + DAY)
    await assert.rejects(store.verifyChain([der(leaf), der(fed.alice.cert)], peer.peerId, afterRoot), rejectsWith('CertificateExpiredError'))
  })

  test('refuses the root standing in for a member CA, and a CA certificate as leaf', async () => {
    const leaf = await issueNode(fed.alice, peer)
    await assert.rejects(store.verifyChain([der(leaf), der(fed.root.cert)], peer.peerId), rejectsWith('ChainInvalidError'))
    const caLeaf = await craftLeaf({ issuer: fed.alice, publicKeyRaw: peer.key.publicKey.raw, email: 'node-01@home.collective.local', role: 'node', peerId: peer.peerId.toString(), ca: true })
    await assert.rejects(store.verifyChain([der(caLeaf), der(fed.alice.cert)], peer.peerId), rejectsWith('ChainInvalidError'))
    // the crafted certificate is otherwise acceptable, so the CA flag is what was refused
    const ok = await craftLeaf({ issuer: fed.alice, publicKeyRaw: peer.key.publicKey.raw, email: 'node-01@home.collective.local', role: 'node', peerId: peer.peerId.toString() })
    assert.equal((await store.verifyChain([der(ok), der(fed.alice.cert)], peer.peerId)).name, 'node-01@home.collective.local')
  })

  test('revocation input is validated and normalised', () => {
    const s = new TrustStore({ root: fed.root.cert })
    assert.throws(() => s.revokeSerial('not-hex'), rejectsWith('InvalidSerialError'))
    s.revokeSerial('00:AB:cd')
    assert.equal(s.isRevoked({ serial: 'abcd' }), true)
    assert.equal(s.isRevoked({ serial: 'abce' }), false)
  })
})
