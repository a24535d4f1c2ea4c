import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { defaultLogger } from '@libp2p/logger'
import { Revocation, RevocationClaims } from '../../../src/gen/revocation.js'
import { TrustStore } from '../../../src/identity/index.js'
import { createRevocation, verifyRevocation, RevocationStore, MAX_REVOCATION_BYTES } from '../../../src/permissions/revocations.js'
import { der, federation, issueNode, makePeer, type Federation, type Peer } from '../identity/fixtures.js'
import { openDatabase } from './fixtures.js'
import type { X509Certificate } from '../../../src/identity/index.js'

describe('revocations', () => {
  let fed: Federation
  let laptop: Peer
  let laptopCert: X509Certificate
  let bobNode: Peer
  let bobNodeCert: X509Certificate
  let dir: string

  before(async () => {
    fed = await federation()
    laptop = await makePeer()
    laptopCert = await issueNode(fed.alice, laptop, 'laptop', 'client')
    bobNode = await makePeer()
    bobNodeCert = await issueNode(fed.bob, bobNode, 'node-01')
    dir = await mkdtemp(join(tmpdir(), 'revocations-test-'))
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  const trust = (): TrustStore => new TrustStore({ root: fed.root.cert, members: [fed.alice.cert, fed.bob.cert] })
  const chain = (cert: X509Certificate, ca: { cert: X509Certificate }): Uint8Array[] => [der(cert), der(ca.cert)]

  it('lets a member revoke its own component; any peer verifies it and refuses the component', async () => {
    const record = await createRevocation({ kind: 'certificate', certificate: laptopCert, signer: fed.alice, version: 1, reason: 'stolen', now: 5 })
    assert.equal(record.name, 'laptop@home.collective.local')
    assert.equal(record.peerId, laptop.peerId.toString())
    const store = trust()
    await store.verifyChain(chain(laptopCert, fed.alice), laptop.peerId)
    const verified = await verifyRevocation(record.bytes, store)
    assert.deepEqual({ ...verified, bytes: undefined }, { ...record, bytes: undefined })
    assert.equal(verified.reason, 'stolen')
    assert.equal(verified.revokedAtMs, 5)

    const rs = new RevocationStore({ database: openDatabase(), trustStore: store, logger: defaultLogger() })
    rs.start()
    assert.equal((await rs.add(record.bytes)).isNew, true)
    assert.equal(store.isRevoked({ peerId: laptop.peerId }), true)
    await assert.rejects(store.verifyChain(chain(laptopCert, fed.alice), laptop.peerId), { name: 'CertificateRevokedError' })
    // bob's devices are untouched
    await store.verifyChain(chain(bobNodeCert, fed.bob), bobNode.peerId)
  })

  it('refuses a member revoking another member\'s component, however the record is built', async () => {
    await assert.rejects(createRevocation({ kind: 'certificate', certificate: laptopCert, signer: fed.bob, version: 1 }), { name: 'RevocationSignatureError' })
    // bob signs claims naming alice's laptop and presents his own CA as signer
    const own = await createRevocation({ kind: 'certificate', certificate: bobNodeCert, signer: fed.bob, version: 1 })
    const envelope = Revocation.decode(own.bytes)
    const claims = RevocationClaims.encode({ ...RevocationClaims.decode(envelope.claims), certificate: der(laptopCert) as Uint8Array<ArrayBuffer> })
    const sig = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, fed.bob.keys.privateKey, new Uint8Array([...new TextEncoder().encode('collective-p2p/revocation/1\n'), ...claims])))
    const forged = Revocation.encode({ claims, signer: envelope.signer, signature: sig })
    const store = trust()
    await assert.rejects(verifyRevocation(forged, store), { name: 'RevocationSignatureError' })
    // or claims to be alice's CA without her key
    const stolen = Revocation.encode({ claims, signer: der(fed.alice.cert) as Uint8Array<ArrayBuffer>, signature: sig })
    await assert.rejects(verifyRevocation(stolen, store), { name: 'RevocationSignatureError' })
    assert.equal(store.isRevoked({ peerId: laptop.peerId }), false)
  })

  it('lets only the root revoke a member, which refuses all of that member\'s peers', async () => {
    await assert.rejects(createRevocation({ kind: 'member', certificate: fed.alice.cert, signer: fed.bob, version: 1 }), { name: 'RevocationSignatureError' })
    const record = await createRevocation({ kind: 'member', certificate: fed.alice.cert, signer: fed.root, version: 3 })
    assert.equal(record.name, 'alice@home.collective.local')
    assert.equal(record.peerId, undefined)
    const store = trust()
    const rs = new RevocationStore({ database: openDatabase(), trustStore: store, logger: defaultLogger() })
    await rs.add(record.bytes)
    assert.equal(rs.version, 3)
    await assert.rejects(store.verifyChain(chain(laptopCert, fed.alice), laptop.peerId), { name: 'CertificateRevokedError' })
    await store.verifyChain(chain(bobNodeCert, fed.bob), bobNode.peerId)
    assert.equal(store.memberCAs().length, 1)
  })

  it('refuses tampered, malformed and oversized records, storing nothing', async () => {
    const record = await createRevocation({ kind: 'certificate', certificate: laptopCert, signer: fed.alice, version: 1 })
    const envelope = Revocation.decode(record.bytes)
    const claims = RevocationClaims.decode(envelope.claims)
    const store = trust()
    const rs = new RevocationStore({ database: openDatabase(), trustStore: store, logger: defaultLogger() })
    const bumped = Revocation.encode({ ...envelope, claims: RevocationClaims.encode({ ...claims, version: 99 }) })
    await assert.rejects(rs.add(bumped), { name: 'RevocationSignatureError' })
    await assert.rejects(rs.add(new Uint8Array([1, 2, 3])), { name: 'MalformedRevocationError' })
    await assert.rejects(rs.add(new Uint8Array(MAX_REVOCATION_BYTES + 1)), { name: 'MalformedRevocationError' })
    await assert.rejects(rs.add(Revocation.encode({ ...envelope, claims: RevocationClaims.encode({ ...claims, kind: 'KIND_UNSPECIFIED' as any }) })), { name: 'MalformedRevocationError' })
    assert.deepEqual(rs.list(), [])
    assert.equal(rs.version, 0)
    assert.equal(store.isRevoked({ peerId: laptop.peerId }), false)
  })

  it('keeps records across restarts, re-applies them, and orders them by Lamport version', async () => {
    const path = join(dir, 'perms.sqlite')
    let db = openDatabase(path)
    let rs = new RevocationStore({ database: db, trustStore: trust(), logger: defaultLogger() })
    rs.start()
    const remote = await createRevocation({ kind: 'certificate', certificate: bobNodeCert, signer: fed.bob, version: 7 })
    assert.equal((await rs.add(remote.bytes)).isNew, true)
    assert.equal((await rs.add(remote.bytes)).isNew, false)
    // a record made here comes after everything seen
    const local = await rs.create({ kind: 'certificate', certificate: laptopCert, signer: fed.alice, reason: 'lost' })
    assert.equal(local.version, 8)
    assert.deepEqual(rs.since(7), [local.bytes])
    assert.equal(rs.since(0).length, 2)
    db.stop()

    db = openDatabase(path)
    const store = trust()
    rs = new RevocationStore({ database: db, trustStore: store, logger: defaultLogger() })
    rs.start()
    assert.equal(rs.version, 8)
    assert.deepEqual(rs.list().map(r => [r.name, r.version, r.reason]), [['node-01@bob.collective.local', 7, ''], ['laptop@home.collective.local', 8, 'lost']])
    await assert.rejects(store.verifyChain(chain(laptopCert, fed.alice), laptop.peerId), { name: 'CertificateRevokedError' })
    await assert.rejects(store.verifyChain(chain(bobNodeCert, fed.bob), bobNode.peerId), { name: 'CertificateRevokedError' })
    db.stop()
  })
})
