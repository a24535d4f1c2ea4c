import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { issueLeafCertificate, TrustStore } from '../../../src/identity/index.js'
import { issueCapabilities, verifyCapability } from '../../../src/permissions/capability.js'
import { DataStoreRegistry } from '../../../src/permissions/datastores.js'
import { InviteStore } from '../../../src/permissions/invites.js'
import { formatJoinString, parseJoinString } from '../../../src/permissions/join-string.js'
import { cidOf } from '../../../src/storage/chunking.js'
import { ALICE_DOMAIN, der, federation, issueNode, makePeer, type Federation, type Peer } from '../identity/fixtures.js'
import { openDatabase } from './fixtures.js'

// The building blocks in the order the daemon will chain them: the handshake's verified identity goes into the
// registry, an invite turns a brand-new key into a certificate with exactly its grants, and the owner's
// capability is what a storage node checks for a chunk.
describe('from a brand-new identity to working access', () => {
  let fed: Federation
  let coordinator: Peer
  let laptop: Peer
  let trust: TrustStore

  before(async () => {
    fed = await federation()
    coordinator = await makePeer()
    laptop = await makePeer()
    trust = new TrustStore({ root: fed.root.cert, members: [fed.alice.cert, fed.bob.cert] })
  })

  it('redeems a join string, certifies the guest, and lets it read only what the invite granted', async () => {
    const db = openDatabase()
    const datastores = new DataStoreRegistry({ database: db, logger: defaultLogger() })
    const invites = new InviteStore({ database: db, datastores, logger: defaultLogger() })
    const aliceLaptop = await trust.verifyChain([der(await issueNode(fed.alice, laptop, 'laptop', 'client')), der(fed.alice.cert)], laptop.peerId)
    datastores.create(aliceLaptop, { path: '/shared' })
    datastores.create(aliceLaptop, { path: '/private' })
    const { code } = invites.create(aliceLaptop, { grants: [{ path: '/shared', rights: ['read', 'write'] }] })
    const join = formatJoinString({
      federation: trust.federation,
      rootFingerprint: trust.rootFingerprint,
      addrs: [`/ip4/127.0.0.1/tcp/4001/p2p/${coordinator.peerId.toString()}`],
      code
    })

    // the newcomer: a fresh key, the join string, and a check that the root is the one it names
    const newcomer = await makePeer()
    const info = parseJoinString(join)
    assert.equal(info.peerId, coordinator.peerId.toString())
    assert.equal(info.rootFingerprint, trust.rootFingerprint)
    const redemption = invites.redeem(info.code, newcomer.peerId.toString(), 'dave')

    // alice's CA certifies the guest; the handshake then verifies it like any peer
    const publicKey = peerIdFromString(redemption.peerId).publicKey
    assert.ok(publicKey != null)
    const cert = await issueLeafCertificate({ issuerCert: fed.alice.cert, issuerKey: fed.alice.keys.privateKey, publicKey, name: redemption.local, role: 'client' })
    const dave = await trust.verifyChain([der(cert), der(fed.alice.cert)], newcomer.peerId)
    assert.equal(dave.name, `guest-dave@${ALICE_DOMAIN}`)
    assert.equal(dave.name, redemption.name)
    assert.equal(dave.member, 'alice')
    assert.deepEqual(datastores.rights(dave, '/shared/x'), ['read', 'write'])
    assert.throws(() => datastores.check(dave, '/private', 'read'), /permission denied: guest-dave@home\.collective\.local may not read \/private \(missing right: read\)/)
    assert.throws(() => datastores.check(dave, '/shared', 'delete'), { name: 'PermissionDeniedError' })

    // reading: the owner issues GET capabilities to the guest's peer; a node honours them for that peer only
    datastores.check(dave, '/shared/photo.jpg', 'read')
    const cids = await Promise.all([1, 2, 3].map(async i => (await cidOf(new Uint8Array([i]))).toString()))
    const [{ token }] = await issueCapabilities({ privateKey: coordinator.key, holder: dave.peerId, op: 'get', cids })
    const node = (await makePeer()).peerId
    const trusted = new Set([coordinator.peerId.toString()])
    await verifyCapability(token, { cid: cids[2], op: 'get', node, holder: dave.peerId, trustedIssuers: trusted })
    // alice's laptop, with a valid certificate, cannot use the guest's token, nor fetch by CID without its own
    await assert.rejects(verifyCapability(token, { cid: cids[2], op: 'get', node, holder: aliceLaptop.peerId, trustedIssuers: trusted }), { name: 'CapabilityHolderError' })
    await assert.rejects(verifyCapability(new Uint8Array(0), { cid: cids[2], op: 'get', node, holder: aliceLaptop.peerId, trustedIssuers: trusted }), { name: 'MalformedCapabilityError' })
    db.stop()
  })
})
