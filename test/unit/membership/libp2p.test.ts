import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { SwimKind, SwimResponse } from '../../../src/gen/swim.js'
import { readPeerKey } from '../../../src/identity/index.js'
import { Libp2pMembership } from '../../../src/membership/libp2p.js'
import { SWIM_PROTOCOL, SWIM_PROTOCOL_LIMITS } from '../../../src/membership/protocol.js'
import { Cleanup, TestFederation, waitFor } from '../../helpers/daemons.js'
import { logger, startPeer } from '../chunks/fixtures.js'
import type { TestPeer } from '../chunks/fixtures.js'
import type { Stream } from '@libp2p/interface'

interface Member extends TestPeer {
  id: string
  membership: Libp2pMembership
}

const cleanup = new Cleanup()
const members: Member[] = []
const refused = new Set<string>()

async function start (fed: TestFederation, name: string): Promise<Member> {
  const peer = await startPeer(fed, 'alice', name, 'node')
  const id = peer.host.peerId.toString()
  const membership = new Libp2pMembership({
    host: peer.host,
    logger,
    privateKey: await readPeerKey(join(peer.dir, 'peer.key')),
    // As the daemon does: only peers whose certificate the handshake verified, minus those the test refuses.
    authorize: remote => peer.identities.get(remote) != null && !refused.has(remote)
  }, {
    self: { id, addrs: peer.host.getMultiaddrs().map(String), meta: { name } },
    // The first probe of a member includes dialling it (TCP, Noise, certificates): room for a loaded machine.
    probeIntervalMs: 1000,
    probeTimeoutMs: 800,
    suspicionTimeoutMs: 4000,
    syncIntervalMs: 2000
  })
  await membership.start()
  const m = { ...peer, id, membership }
  members.push(m)
  return m
}

async function streamEnded (stream: Stream): Promise<void> {
  if (stream.status !== 'open') return
  await new Promise(resolve => { stream.addEventListener('close', resolve, { once: true }) })
}

describe('membership over libp2p between in-process hosts', () => {
  let a: Member, b: Member, c: Member

  before(async () => {
    const fed = await TestFederation.create(cleanup)
    await fed.member('alice', 'home.collective.local')
    a = await start(fed, 'node-a')
    b = await start(fed, 'node-b')
    c = await start(fed, 'node-c')
  })

  after(async () => {
    for (const m of members) {
      await m.membership.stop().catch(() => {})
      await Promise.resolve(m.host.stop()).catch(() => {})
    }
    await cleanup.run()
  })

  it('joins through one seed, learns every member and its addresses, and spreads a leave', async () => {
    for (const m of [b, c]) {
      await m.host.peerStore.merge(a.host.peerId, { multiaddrs: a.host.getMultiaddrs() })
      assert.equal(await m.membership.swim.join([a.id]), 1)
    }
    await waitFor('every member sees three alive members', async () =>
      members.every(m => m.membership.swim.members().filter(r => r.state === 'alive').length === 3))
    // b and c never met: c found b's addresses in a record, so it can dial b by peer ID alone.
    const learnt = (await c.host.peerStore.get(b.host.peerId)).addresses.map(x => x.multiaddr.toString())
    const announced = b.host.getMultiaddrs().map(x => x.toString())
    assert.ok(learnt.some(x => announced.some(y => y.startsWith(x))), `c knows ${learnt.join(', ')} for b, which announced ${announced.join(', ')}`)
    assert.equal(c.membership.swim.get(b.id)?.meta.name, 'node-b')

    await c.membership.swim.leave()
    await waitFor('a and b see c leave', async () => [a, b].every(m => m.membership.swim.get(c.id)?.state === 'left'))
  })

  it('answers a peer the authorize hook refuses with UnauthorizedPeerError', async () => {
    refused.add(b.id)
    try {
      const res = await b.membership.transport.probe(a.id, { kind: SwimKind.PING, target: '', timeoutMs: 0, lamport: 0, updates: [] }, { signal: AbortSignal.timeout(5000) })
      assert.equal(res.error, 'UnauthorizedPeerError')
      assert.equal(res.ack, false)
    } finally {
      refused.delete(b.id)
    }
  })

  it('resets the stream on an oversized or undecodable frame and keeps answering', async () => {
    const big = await b.host.dialProtocol(a.host.peerId, SWIM_PROTOCOL)
    let answered = 0
    big.addEventListener('message', () => { answered++ })
    // a varint announcing one byte more than a frame may hold, then some of it
    const length = SWIM_PROTOCOL_LIMITS.maxMessageBytes + 1
    big.send(Uint8Array.of((length & 0x7f) | 0x80, ((length >> 7) & 0x7f) | 0x80, length >> 14))
    big.send(new Uint8Array(1024))
    await streamEnded(big)
    const garbage = await b.host.dialProtocol(a.host.peerId, SWIM_PROTOCOL)
    garbage.addEventListener('message', () => { answered++ })
    garbage.send(Uint8Array.of(3, 0xff, 0xff, 0xff))
    await streamEnded(garbage)
    assert.equal(answered, 0)
    const res: SwimResponse = await b.membership.transport.probe(a.id, { kind: SwimKind.PING, target: '', timeoutMs: 0, lamport: 0, updates: [] }, { signal: AbortSignal.timeout(5000) })
    assert.equal(res.ack, true)
  })
})
