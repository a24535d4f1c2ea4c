import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { webSockets } from '@libp2p/websockets'
import { createOpenHost, KAD_PROTOCOL } from '../../src/net/host.js'
import { Cleanup, waitFor } from '../../test/helpers/daemons.js'
import { SmoldotPeer } from '../helpers/smoldot.js'
import type { Host } from '../../src/net/host.js'

// Wire compatibility of our stack choices with real Rust libp2p peers. Our host factory runs in its test-only open
// configuration: production's TCP, yamux, identify, ping, kad-dht and gossipsub settings, with plain Noise where
// production has the certificate layer. What else differs is said where it is set: smoldot derives its Kademlia
// protocol ID from its chain, and nimiq only dials WebSocket.

const NIMIQ_PEER = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'nimiq-peer.js')

const cleanup = new Cleanup()
const hosts: Host[] = []

async function openHost (init: Omit<Parameters<typeof createOpenHost>[0], 'privateKey'> = {}): Promise<Host> {
  const host = await createOpenHost({ privateKey: await generateKeyPair('Ed25519'), role: 'coordinator', ...init })
  await host.start()
  hosts.push(host)
  return host
}

/** Accepts streams of `protocol` and leaves them open, unanswered, until the host stops */
async function holdOpen (host: Host, protocol: string): Promise<void> {
  await host.handle(protocol, () => {})
}

describe('wire compatibility: Rust libp2p peers against our host factory in its open configuration', () => {
  after(async () => {
    await Promise.all(hosts.map(async h => { await h.stop() }))
    await cleanup.run()
  })

  describe('smoldot (TCP, Noise, yamux, identify, ping, Kademlia)', () => {
    let smoldot: SmoldotPeer
    before(() => { smoldot = SmoldotPeer.start() })
    after(async () => { await smoldot.stop() })

    it('completes the handshake, identify both ways, ping both ways and a FIND_NODE answered with our routing table', async () => {
      // The one setting that is not production's: smoldot's Kademlia protocol is /<genesis hash>/kad, ours
      // /collective/kad/1.0.0. Same kad-dht, same options, another protocol ID.
      const kadProtocol = await smoldot.kadProtocol()
      assert.match(kadProtocol, /^\/[0-9a-f]{64}\/kad$/)
      assert.notEqual(kadProtocol, KAD_PROTOCOL)
      const host = await openHost({ kadProtocol })
      // A second host in our routing table, so a FIND_NODE answer has something to carry.
      const other = await openHost({ kadProtocol })
      await other.dial(host.getMultiaddrs()[0])
      // identify tells kad-dht the other host speaks our kad protocol, which puts it in the routing table
      await waitFor('identify with the other host', async () => (await host.peerStore.get(other.peerId)).protocols.includes(kadProtocol))

      await smoldot.dial([host.getMultiaddrs()[0].toString()])
      const ours = host.peerId.toString()
      await waitFor('smoldot to finish the handshake', async () => smoldot.count(new RegExp(`handshake-finished;.*peer_id=${ours}`)) > 0, 20_000)
      const foreign = peerIdFromString(smoldot.peerId as string)

      // identify, our request: smoldot's answer, read field by field (on whichever connection smoldot holds now)
      const identified = await waitFor('identify with smoldot', async () => {
        const connection = host.getConnections(foreign)[0]
        return connection == null ? undefined : await host.services.identify.identify(connection, { signal: AbortSignal.timeout(10_000) })
      }, 30_000, 500)
      assert.match(identified.agentVersion ?? '', /^smoldot/)
      for (const p of ['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0']) assert.ok(identified.protocols.includes(p), `smoldot does not list ${p}: ${identified.protocols.join(' ')}`)
      // identify, smoldot's request; ping both ways
      await waitFor('smoldot to ask for identify', async () => smoldot.count(new RegExp(`identify-request-received;.*peer_id=${ours}`)) > 0)
      // kad-dht pings peers with the same service (one outbound ping stream per peer): retry if it got there first
      // smoldot only dials: between its reconnects there is nothing to ping over, so wait for the next connection
      const rtt = await waitFor('our ping to smoldot', async () => host.getConnections(foreign).length === 0
        ? undefined
        : await host.services.ping.ping(foreign, { signal: AbortSignal.timeout(5_000) }), 45_000, 250)
      await waitFor('smoldot to ping us', async () => smoldot.count(new RegExp(`pong;.*peer_id=${ours}`)) > 0, 30_000)
      // FIND_NODE: smoldot asks us, and then turns to the peer our answer named (it had no other way to learn it):
      // it connects to it, or asks it in turn
      const learned = other.peerId.toString()
      await waitFor('smoldot to use the peer our FIND_NODE answer named', async () =>
        smoldot.count(new RegExp(`discovery-find-node-started;.*request_target=${ours}`)) > 0 &&
        smoldot.count(new RegExp(`(slot-assigned;.*peer_id=${learned})|(request_target=${learned})`)) > 0, 60_000, 250)
      console.log(`# smoldot: handshake, identify (${identified.agentVersion ?? ''}), ping ${rtt} ms, FIND_NODE on ${kadProtocol} answered`)
    })
  })

  describe('nimiq (rust-libp2p gossipsub over WebSocket)', () => {
    it('subscribes and grafts in both directions', async () => {
      // The other difference: nimiq only dials WebSocket, so this host also listens on ws:// (test-only dependency).
      const host = await openHost({ listen: ['/ip4/127.0.0.1/tcp/0/ws'], transports: [webSockets()] })
      const pubsub = host.services.pubsub
      const grafts: Array<{ peerId: string, topic: string, direction: string }> = []
      const prunes: Array<{ peerId: string, topic: string, direction: string }> = []
      const subscriptions: Array<{ peerId: string, topic: string }> = []
      pubsub.addEventListener('gossipsub:graft', (e: any) => { grafts.push({ ...e.detail, peerId: e.detail.peerId.toString() }) })
      pubsub.addEventListener('gossipsub:prune', (e: any) => { prunes.push({ ...e.detail, peerId: e.detail.peerId.toString() }) })
      pubsub.addEventListener('subscription-change', (e: any) => {
        for (const s of e.detail.subscriptions) if (s.subscribe === true) subscriptions.push({ peerId: e.detail.peerId.toString(), topic: s.topic })
      })
      // a topic every nimiq client joins
      pubsub.subscribe('block-header')
      // nimiq drops a peer that refuses its discovery protocol within a few seconds; holding it open keeps the
      // connection up for the gossipsub exchange
      await holdOpen(host, '/nimiq/discovery/0.0.1')

      let out = ''
      const proc = cleanup.track(spawn(process.execPath, [NIMIQ_PEER, host.getMultiaddrs()[0].toString()], { stdio: ['ignore', 'pipe', 'pipe'] }))
      proc.stdout?.on('data', d => { out += String(d) })
      proc.stderr?.on('data', d => { out += String(d) })
      const nimiq = await waitFor('nimiq to report its peer ID', async () => /PeerId: (\w+)/.exec(out)?.[1], 30_000)

      // nimiq -> us: it learned our subscription and grafted us into its mesh
      await waitFor('nimiq to subscribe', async () => subscriptions.some(s => s.peerId === nimiq && s.topic === 'block-header'), 40_000)
      await waitFor('nimiq to graft us', async () => grafts.some(g => g.peerId === nimiq && g.direction === 'inbound'), 40_000)
      // us -> nimiq: join a topic nimiq is in (its own address topic) and graft it ourselves
      const own = subscriptions.find(s => s.peerId === nimiq && s.topic !== 'block-header')
      assert.ok(own != null, `nimiq subscribed to ${subscriptions.map(s => s.topic).join(', ')}`)
      pubsub.subscribe(own.topic)
      await waitFor('us to graft nimiq', async () => grafts.some(g => g.peerId === nimiq && g.direction === 'outbound' && g.topic === own.topic), 10_000)
      await new Promise(resolve => setTimeout(resolve, 500))
      assert.deepEqual(prunes.filter(p => p.peerId === nimiq && p.direction === 'inbound'), [], 'nimiq must not prune our grafts')
      console.log(`# nimiq: subscriptions ${subscriptions.filter(s => s.peerId === nimiq).map(s => s.topic).join(', ')}; grafts ${grafts.filter(g => g.peerId === nimiq).map(g => `${g.direction}:${g.topic}`).join(', ')}`)
    })
  })
})
