import '../../src/polyfill.js'
import 'reflect-metadata'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  TrustStore, generatePeerKey, readCertificateChain, readCaKey, issueLeafCertificate, OID
} from '../../src/identity/index.js'
import { utf8Extension } from '../../src/identity/cert-fields.js'
import { createHost } from '../../src/net/host.js'
import { PeerIdentities } from '../../src/net/peer-identities.js'
import { call } from '../../src/control/client.js'
import { META_PROTOCOL } from '../../src/permissions/index.js'
import { Cleanup, TestFederation, startDaemon, waitFor } from '../helpers/daemons.js'
import type { RunningDaemon, TestMember } from '../helpers/daemons.js'
import type { Host } from '../../src/net/host.js'
import type { PrivateKey } from '@libp2p/interface'
import type { X509Certificate } from '@peculiar/x509'

const cleanup = new Cleanup()
const hosts: Host[] = []
let fed: TestFederation
let alice: TestMember
let bob: TestMember
let coordinator: RunningDaemon
let rootCert: X509Certificate

async function memberCa (m: TestMember): Promise<{ cert: X509Certificate, key: CryptoKey }> {
  const [cert] = await readCertificateChain(join(m.dir, 'ca.crt'))
  return { cert, key: await readCaKey(join(m.dir, 'ca.key')) }
}

/** A libp2p host of ours, in this process, presenting whatever chain the test hands it */
async function attacker (key: PrivateKey, chain: X509Certificate[], role: 'coordinator' | 'node' | 'client' = 'node', trustRoot = rootCert): Promise<{ host: Host, identities: PeerIdentities, refusals: string[] }> {
  const identities = new PeerIdentities()
  const refusals: string[] = []
  const trustStore = new TrustStore({ root: trustRoot })
  const host = await createHost({
    privateKey: key, role, chain: chain.map(c => new Uint8Array(c.rawData)), trustStore, identities, dialTimeoutMs: 5_000,
    onRefused: ({ reason }) => { refusals.push(reason) }
  })
  await host.start()
  hosts.push(host)
  return { host, identities, refusals }
}

/** The reasons the coordinator daemon recorded for refusing this peer */
async function refusedBy (daemon: RunningDaemon, peerId: string): Promise<string[]> {
  const s = await call(daemon.socket, 'status')
  return s.refusals.filter((r: any) => r.remotePeer === peerId).map((r: any) => r.reason)
}

async function dialError (host: Host, target: string): Promise<any> {
  try {
    await host.dial(multiaddr(target))
  } catch (err) {
    return err
  }
  assert.fail('the dial was accepted')
}

function coordinatorAddr (): string { return coordinator.status.listen[0] }

async function coordinatorPeers (): Promise<any[]> { return await call(coordinator.socket, 'peers') }

/** After a refusal neither side may hold a connection, and identify must never have run */
async function assertNothingLeaked (host: Host): Promise<void> {
  const peerId = peerIdFromString(coordinator.status.peerId)
  assert.equal(host.getConnections(peerId).length, 0)
  const known = await host.peerStore.get(peerId).catch(() => undefined)
  assert.equal(known?.protocols?.length ?? 0, 0, 'identify must not have run with a refused peer')
  const peers = await coordinatorPeers()
  assert.deepEqual(peers.filter(p => p.peerId === host.peerId.toString()), [])
}

describe('certificate handshake between real daemons', () => {
  before(async () => {
    fed = await TestFederation.create(cleanup)
    alice = await fed.member('alice', 'home.collective.local')
    bob = await fed.member('bob', 'garage.collective.local')
    ;[rootCert] = await readCertificateChain(join(fed.rootDir, 'root.crt'))
    coordinator = await startDaemon(cleanup, await fed.component('alice', 'coordinator', 'coordinator'))
  })

  after(async () => {
    await Promise.all(hosts.map(async h => { await h.stop() }))
    await cleanup.run()
  })

  it('accepts a correctly certified peer and learns its verified identity', async () => {
    const key = await generatePeerKey()
    const ca = await memberCa(alice)
    const leaf = await issueLeafCertificate({ issuerCert: ca.cert, issuerKey: ca.key, publicKey: key.publicKey, name: 'node-07', role: 'node' })
    const { host, identities } = await attacker(key, [leaf, ca.cert])
    const started = performance.now()
    await host.dial(multiaddr(coordinatorAddr()))
    const ms = performance.now() - started
    assert.ok(ms < 5000, `connection setup took ${ms} ms`)
    assert.equal(identities.get(coordinator.status.peerId)?.name, 'coordinator@home.collective.local')
    const peer = await waitFor('coordinator to list the peer', async () => (await coordinatorPeers()).find(p => p.peerId === host.peerId.toString()))
    assert.equal(peer.name, 'node-07@home.collective.local')
    assert.equal(peer.role, 'node')
    assert.equal(peer.member, 'alice')
    // identify ran on the authenticated connection: a positive control for the refusals below. Its answer lists
    // the meta protocol; the store holds '/ipfs/id/1.0.0' alone from the moment identify's stream is negotiated.
    await waitFor('identify', async () => ((await host.peerStore.get(peerIdFromString(coordinator.status.peerId))).protocols.includes(META_PROTOCOL)))
    await host.hangUp(peerIdFromString(coordinator.status.peerId))
  })

  it('refuses a chain from another federation before any protocol runs', async () => {
    const other = await TestFederation.create(cleanup, 'collective.local')
    const mallory = await other.member('mallory', 'home.collective.local')
    const ca = await memberCa(mallory)
    const key = await generatePeerKey()
    const leaf = await issueLeafCertificate({ issuerCert: ca.cert, issuerKey: ca.key, publicKey: key.publicKey, name: 'node-01', role: 'node' })
    const [otherRoot] = await readCertificateChain(join(other.rootDir, 'root.crt'))
    const { host, refusals } = await attacker(key, [leaf, ca.cert], 'node', otherRoot)
    await dialError(host, coordinatorAddr())
    // Different root, different Noise prologue: the handshake cannot even complete.
    assert.deepEqual(refusals, ['NoiseHandshakeError'])
    await assertNothingLeaked(host)
  })

  it('refuses a certificate whose key is not the peer\'s key', async () => {
    const ca = await memberCa(alice)
    const certified = await generatePeerKey()
    const leaf = await issueLeafCertificate({ issuerCert: ca.cert, issuerKey: ca.key, publicKey: certified.publicKey, name: 'node-08', role: 'node' })
    const { host, refusals } = await attacker(await generatePeerKey(), [leaf, ca.cert])
    const err = await dialError(host, coordinatorAddr())
    assert.match(err.message, /CertificateRefusedError: .*PeerKeyMismatchError/)
    assert.deepEqual(refusals, ['remote:PeerKeyMismatchError'])
    assert.deepEqual(await refusedBy(coordinator, host.peerId.toString()), ['PeerKeyMismatchError'])
    await assertNothingLeaked(host)
  })

  it('refuses an expired certificate', async () => {
    const ca = await memberCa(alice)
    const key = await generatePeerKey()
    const leaf = await issueLeafCertificate({
      issuerCert: ca.cert, issuerKey: ca.key, publicKey: key.publicKey, name: 'node-09', role: 'node',
      notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000)
    })
    const { host } = await attacker(key, [leaf, ca.cert])
    const err = await dialError(host, coordinatorAddr())
    assert.match(err.message, /CertificateRefusedError: .*CertificateExpiredError/)
    assert.deepEqual(await refusedBy(coordinator, host.peerId.toString()), ['CertificateExpiredError'])
    await assertNothingLeaked(host)
  })

  it('refuses a name outside the issuing member\'s domain', async () => {
    // alice's CA key signs a leaf claiming bob's domain: only a hand-made certificate can do that.
    const ca = await memberCa(alice)
    const key = await generatePeerKey()
    const publicKey = await crypto.subtle.importKey('raw', key.publicKey.raw as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, true, ['verify'])
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: '01' + randomBytes(15).toString('hex'),
      subject: 'CN=node-66@garage.collective.local',
      issuer: ca.cert.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      publicKey,
      signingKey: ca.key,
      signingAlgorithm: { name: 'Ed25519' },
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'email', value: 'node-66@garage.collective.local' }]),
        utf8Extension(OID.ROLE, 'node'),
        utf8Extension(OID.PEER_ID, (await import('@libp2p/peer-id')).peerIdFromPrivateKey(key).toString())
      ]
    })
    const { host } = await attacker(key, [leaf, ca.cert])
    const err = await dialError(host, coordinatorAddr())
    assert.match(err.message, /CertificateRefusedError: .*NameConstraintError/)
    assert.deepEqual(await refusedBy(coordinator, host.peerId.toString()), ['NameConstraintError'])
    await assertNothingLeaked(host)
  })

  it('refuses a role that has no business connecting (client to client), in both directions', async () => {
    // A client daemon keeps a link to its member's coordinator; the refusal tested here is between two clients.
    const client = await startDaemon(cleanup, await fed.component('alice', 'laptop', 'client', { coordinator: coordinatorAddr() }))
    const ca = await memberCa(alice)
    const key = await generatePeerKey()
    const leaf = await issueLeafCertificate({ issuerCert: ca.cert, issuerKey: ca.key, publicKey: key.publicKey, name: 'phone', role: 'client' })
    const { host, refusals } = await attacker(key, [leaf, ca.cert], 'client')
    await dialError(host, client.status.listen[0])
    // Each side refuses the other on its own: the dialer and the listening daemon.
    assert.deepEqual(refusals, ['RoleNotAllowedError'])
    assert.deepEqual(await refusedBy(client, host.peerId.toString()), ['RoleNotAllowedError'])
    assert.deepEqual((await call(client.socket, 'peers')).filter((p: any) => p.peerId === host.peerId.toString()), [])
    assert.equal(await client.stop(), 0)
  })

  it('refuses a bad peer when the daemon is the one dialing', async () => {
    // A node daemon is pointed at a "coordinator" holding an expired certificate: the daemon must refuse it.
    const ca = await memberCa(alice)
    const key = await generatePeerKey()
    const leaf = await issueLeafCertificate({
      issuerCert: ca.cert, issuerKey: ca.key, publicKey: key.publicKey, name: 'coordinator-2', role: 'coordinator',
      notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000)
    })
    const { host, identities } = await attacker(key, [leaf, ca.cert], 'coordinator')
    let reached = false
    await host.handle('/collective/node/1.0.0', async (stream) => { reached = true; stream.abort(new Error('no')) })
    const target = host.getMultiaddrs()[0].toString()
    const node = await startDaemon(cleanup, await fed.component('alice', 'node-10', 'node', { coordinator: target }))
    const reasons = await waitFor('the node to record its refusal', async () => {
      const r = await refusedBy(node, host.peerId.toString())
      return r.length > 0 ? r : undefined
    })
    assert.equal(reasons[0], 'CertificateExpiredError')
    const status = await call(node.socket, 'status')
    assert.equal(status.registration.state, 'unreachable')
    assert.match(status.registration.message, /CertificateExpiredError/)
    assert.equal(reached, false, 'no protocol stream may reach a refused peer')
    assert.equal(identities.all().length, 0)
    assert.equal(await node.stop(), 0)
  })

  it('a node certified by bob cannot register with alice\'s coordinator; alice\'s own node can', async () => {
    const bobNode = await startDaemon(cleanup, await fed.component('bob', 'node-01', 'node', { coordinator: coordinatorAddr() }))
    const aliceNode = await startDaemon(cleanup, await fed.component('alice', 'node-01', 'node', { coordinator: coordinatorAddr() }))
    const refused = await waitFor('bob\'s node to be refused', async () => {
      const s = await call(bobNode.socket, 'status')
      return s.registration?.state === 'refused' ? s.registration : undefined
    })
    assert.equal(refused.error, 'ForeignNodeError')
    await waitFor('alice\'s node to register', async () => {
      const s = await call(aliceNode.socket, 'status')
      return s.registration?.state === 'registered'
    })
    const nodes = await call(coordinator.socket, 'nodes')
    assert.deepEqual(nodes.map((n: any) => n.name), ['node-01@home.collective.local'])
    assert.equal(nodes[0].state, 'alive')
    await bobNode.stop()
    await aliceNode.stop()
  })
})
