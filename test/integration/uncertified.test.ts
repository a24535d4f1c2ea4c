import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { TrustStore, generatePeerKey, readCertificateChain, readCaKey, issueLeafCertificate } from '../../src/identity/index.js'
import { createHost, createInviteeHost } from '../../src/net/host.js'
import { PeerIdentities } from '../../src/net/peer-identities.js'
import { MetaClient } from '../../src/access/meta-client.js'
import { MetaOp } from '../../src/gen/meta.js'
import { META_PROTOCOL } from '../../src/permissions/index.js'
import { call } from '../../src/control/client.js'
import { Cleanup, TestFederation, startDaemon, waitFor } from '../helpers/daemons.js'
import type { RunningDaemon, TestMember } from '../helpers/daemons.js'
import type { Libp2p } from '@libp2p/interface'
import type { X509Certificate } from '@peculiar/x509'

// A newcomer redeeming an invite holds no certificate. The coordinator admits its empty chain only while it has an
// open invite, and then only to INVITE_REDEEM on /collective/meta: every other protocol (identify, kad-dht,
// gossipsub, ping, swim, sync, node registry, chunk) must stay out of its reach, whichever side opens the stream.

const cleanup = new Cleanup()
const hosts: Libp2p[] = []
let fed: TestFederation
let alice: TestMember
let rootCert: X509Certificate
let coordinator: RunningDaemon
let closed: RunningDaemon

/** A newcomer's host: no certificate, the federation's prologue, every chain the coordinator presented */
async function newcomer (): Promise<{ host: Libp2p, chains: Map<string, Uint8Array[]> }> {
  const chains = new Map<string, Uint8Array[]>()
  const host = await createInviteeHost({
    privateKey: await generatePeerKey(),
    rootFingerprint: new TrustStore({ root: rootCert }).rootFingerprintBytes,
    onRemoteChain: (peer, chain) => { chains.set(peer.toString(), chain) },
    dialTimeoutMs: 5_000
  })
  await host.start()
  hosts.push(host)
  return { host, chains }
}

async function dialError (host: Libp2p, target: string): Promise<Error> {
  try {
    await host.dial(multiaddr(target))
  } catch (err: any) {
    return err
  }
  assert.fail('the dial was accepted')
}

/** What the coordinator speaks to a certified peer: identify with a certified node tells */
async function protocolsOf (daemon: RunningDaemon): Promise<string[]> {
  const [caCert] = await readCertificateChain(join(alice.dir, 'ca.crt'))
  const key = await generatePeerKey()
  const leaf = await issueLeafCertificate({ issuerCert: caCert, issuerKey: await readCaKey(join(alice.dir, 'ca.key')), publicKey: key.publicKey, name: 'node-77', role: 'node' })
  const host = await createHost({ privateKey: key, role: 'node', chain: [leaf, caCert].map(c => new Uint8Array(c.rawData)), trustStore: new TrustStore({ root: rootCert }), identities: new PeerIdentities() })
  await host.start()
  hosts.push(host)
  const peer = peerIdFromString(daemon.status.peerId)
  // Identify's result, not the peer store: the store learns '/ipfs/id/1.0.0' alone as soon as identify's own stream
  // is negotiated, before the answer listing every protocol arrives (CI once read it in that gap)
  const identified = new Promise<string[]>((resolve) => {
    host.addEventListener('peer:identify', (evt) => {
      if (evt.detail.peerId.equals(peer)) resolve(evt.detail.protocols)
    })
  })
  await host.dial(multiaddr(daemon.status.listen[0]))
  const protocols = await Promise.race([
    identified,
    new Promise<never>((_resolve, reject) => setTimeout(() => { reject(new Error('no identify from the coordinator within 20 s')) }, 20_000).unref())
  ])
  await host.hangUp(peer)
  return protocols
}

describe('a peer without a certificate', () => {
  before(async () => {
    fed = await TestFederation.create(cleanup)
    alice = await fed.member('alice', 'home.collective.local')
    ;[rootCert] = await readCertificateChain(join(fed.rootDir, 'root.crt'))
    coordinator = await startDaemon(cleanup, await fed.component('alice', 'coordinator', 'coordinator', { memberCa: alice.dir }))
    // a coordinator whose member CA stays offline: it certifies nobody, so it admits nobody without a certificate
    closed = await startDaemon(cleanup, await fed.component('alice', 'coordinator-2', 'coordinator'))
    await call(coordinator.socket, 'datastore.create', { path: '/shared' })
  })

  after(async () => {
    await Promise.all(hosts.map(async h => { await h.stop() }))
    await cleanup.run()
  })

  it('is refused while no invite is open, and always by a coordinator without its member CA', async () => {
    const { host } = await newcomer()
    assert.match((await dialError(host, coordinator.status.listen[0])).message, /CertificateRefusedError: .*InvitesClosedError/)
    await call(coordinator.socket, 'invite.create', { grants: [{ path: '/shared', rights: 'read' }], validFor: '1h' })
    const invite = await call(closed.socket, 'invite.create', { grants: [{ path: '/x', rights: 'read' }] }).catch(err => err)
    assert.equal(invite.remoteName, 'MemberCaNotConfiguredError')
    assert.match((await dialError(host, closed.status.listen[0])).message, /CertificateRefusedError: .*InvitesClosedError/)
  })

  it('is refused by a storage node whatever invites exist: chunks stay out of reach', async () => {
    const node = await startDaemon(cleanup, await fed.component('alice', 'node-01', 'node', { coordinator: coordinator.status.listen[0] }))
    const { host } = await newcomer()
    assert.match((await dialError(host, node.status.listen[0])).message, /CertificateRefusedError: .*ChainInvalidError/)
    await node.stop()
  })

  it('reaches INVITE_REDEEM on the meta protocol and nothing else, for one request', async () => {
    const spoken = await protocolsOf(coordinator)
    for (const p of [META_PROTOCOL, '/ipfs/id/1.0.0', '/ipfs/ping/1.0.0', '/collective/kad/1.0.0', '/collective/swim/1.0.0', '/collective/node/1.0.0']) {
      assert.ok(spoken.includes(p), `positive control: the coordinator speaks ${p} (it speaks ${spoken.join(' ')})`)
    }
    assert.ok(spoken.some(p => p.startsWith('/meshsub/')), 'positive control: gossipsub')

    const { host, chains } = await newcomer()
    // Whatever the coordinator might open towards us would land here
    const reached: string[] = []
    await host.handle(spoken, async (stream) => { reached.push(stream.protocol); stream.abort(new Error('no')) })
    const connection = await host.dial(multiaddr(coordinator.status.listen[0]))
    assert.equal(connection.remotePeer.toString(), coordinator.status.peerId)
    assert.equal(chains.get(coordinator.status.peerId)?.length, 2, 'the coordinator presented its chain')
    const peer = await waitFor('the coordinator to list the newcomer', async () => (await call(coordinator.socket, 'peers')).find((p: any) => p.peerId === host.peerId.toString()))
    assert.equal(peer.uncertified, true)
    assert.equal(peer.name, undefined)

    for (const protocol of spoken.filter(p => p !== META_PROTOCOL)) {
      await assert.rejects(connection.newStream(protocol, { signal: AbortSignal.timeout(5_000) }), (err: any) => {
        assert.equal(err.name, 'UnsupportedProtocolError', `${protocol}: ${String(err.name)} ${String(err.message)}`)
        return true
      })
    }
    // Anything but INVITE_REDEEM on the one protocol it may open is refused as from an unknown peer
    const res = await new MetaClient({ host }).call(coordinator.status.peerId, { op: MetaOp.LS, path: '/shared' }).catch(err => err)
    assert.equal(res.name, 'UnknownPeerError')
    // One request per connection: the coordinator closes it once the answer is out
    await waitFor('the coordinator to close the connection', async () => host.getConnections().length === 0, 5_000)
    assert.deepEqual(reached, [], 'the coordinator opened no stream towards the newcomer')
    const after = await call(coordinator.socket, 'peers')
    assert.deepEqual(after.filter((p: any) => p.peerId === host.peerId.toString()), [])
  })

  it('is closed after 30 s when it asks nothing', async () => {
    const { host } = await newcomer()
    const started = Date.now()
    await host.dial(multiaddr(coordinator.status.listen[0]))
    await waitFor('the coordinator to close the idle connection', async () => host.getConnections().length === 0, 40_000, 250)
    const seconds = (Date.now() - started) / 1000
    assert.ok(seconds >= 29 && seconds < 35, `closed after ${seconds} s`)
  })
})
