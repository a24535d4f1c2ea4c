import '../../../src/polyfill.js'
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { defaultLogger } from '@libp2p/logger'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { NodeAnnouncements, NODES_TOPIC } from '../../../src/federation/announcements.js'
import { TrustStore } from '../../../src/identity/index.js'
import { federation, makePeer, issueNode, der, ALICE_DOMAIN, BOB_DOMAIN } from '../identity/fixtures.js'
import type { Peer } from '../identity/fixtures.js'
import type { NodeRecord } from '../../../src/node-registry/registry.js'
import type { VerifiedIdentity } from '../../../src/identity/index.js'
import type { Message } from '@libp2p/gossipsub'

interface Daemon {
  announcements: NodeAnnouncements
  published: Uint8Array[]
  validate: (message: Message) => Promise<TopicValidatorResult>
  peer: Peer
  identity: VerifiedIdentity
}

let clock = 1_000_000

/** A daemon's announcements over a stand-in for gossipsub: what it publishes is captured, what it validates is ours to send */
async function daemon (ca: 'alice' | 'bob', name: string, role: 'coordinator' | 'node', localNodes?: () => NodeRecord[]): Promise<Daemon> {
  const fed = await federation()
  const peer = await makePeer()
  const cert = await issueNode(fed[ca], peer, name, role)
  const chain = [der(cert), der(fed[ca].cert)]
  const trustStore = new TrustStore({ root: fed.root.cert })
  const identity = await trustStore.verifyChain(chain, peer.peerId)
  const validators = new Map<string, (from: unknown, m: Message) => Promise<TopicValidatorResult>>()
  const published: Uint8Array[] = []
  const host: any = {
    services: {
      pubsub: {
        topicValidators: validators,
        subscribe () {},
        unsubscribe () {},
        publish: async (topic: string, data: Uint8Array) => { assert.equal(topic, NODES_TOPIC); published.push(data); return { recipients: [] } }
      }
    },
    peerStore: { merge: async () => {} }
  }
  const announcements = new NodeAnnouncements({ host, trustStore, chain, identity, localNodes, logger: defaultLogger(), now: () => clock }, { intervalMs: 60_000 })
  await announcements.start()
  const validate = async (message: Message): Promise<TopicValidatorResult> => await (validators.get(NODES_TOPIC) as any)(undefined, message)
  return { announcements, published, validate, peer, identity }
}

function signed (from: Daemon, data: Uint8Array, sender = from.peer): Message {
  return { type: 'signed', from: sender.peerId, topic: NODES_TOPIC, data, sequenceNumber: 1n, signature: new Uint8Array(64), key: from.peer.key.publicKey }
}

function node (name: string, peerId: string, state: NodeRecord['state'] = 'alive'): NodeRecord {
  return { peerId, name, capacityBytes: 1000, usedBytes: 10, chunkCount: 1, addrs: ['/ip4/127.0.0.1/tcp/4001'], registeredAt: 0, lastSeen: 0, state }
}

describe('node announcements over gossipsub', () => {
  let aliceNode: Peer
  let bobNode: Peer
  before(async () => {
    aliceNode = await makePeer()
    bobNode = await makePeer()
  })

  it('a coordinator\'s announcement of its own nodes is accepted by other members, with capacity and state', async () => {
    const nodes = [node(`node-01@${ALICE_DOMAIN}`, aliceNode.peerId.toString(), 'suspect')]
    const alice = await daemon('alice', 'coordinator', 'coordinator', () => nodes)
    const bob = await daemon('bob', 'coordinator', 'coordinator')
    await alice.announcements.announce()
    assert.equal(alice.published.length, 1)
    assert.equal(await bob.validate(signed(alice, alice.published[0])), TopicValidatorResult.Accept)
    const [n] = bob.announcements.remoteNodes()
    assert.equal(n.name, `node-01@${ALICE_DOMAIN}`)
    assert.equal(n.domain, ALICE_DOMAIN)
    assert.equal(n.peerId, aliceNode.peerId.toString())
    assert.equal(n.state, 'suspect')
    assert.equal(n.capacityBytes, 1000)
    assert.equal(n.announcedBy, alice.identity.peerId)
    assert.deepEqual(bob.announcements.coordinators().map(c => c.name), [`coordinator@${ALICE_DOMAIN}`])

    // A replay of the same (or an older) announcement changes nothing.
    nodes[0] = node(`node-01@${ALICE_DOMAIN}`, aliceNode.peerId.toString(), 'dead')
    await alice.announcements.announce()
    assert.equal(await bob.validate(signed(alice, alice.published[0])), TopicValidatorResult.Ignore)
    assert.equal(bob.announcements.remoteNodes()[0].state, 'suspect')
    assert.equal(await bob.validate(signed(alice, alice.published[1])), TopicValidatorResult.Accept)
    assert.equal(bob.announcements.remoteNodes()[0].state, 'dead')
    assert.equal(bob.announcements.remoteNodes()[0].draining, undefined)

    // An operator draining the node: other members hear it and place nothing new there.
    nodes[0] = { ...node(`node-01@${ALICE_DOMAIN}`, aliceNode.peerId.toString()), draining: true }
    await alice.announcements.announce()
    assert.equal(await bob.validate(signed(alice, alice.published[2])), TopicValidatorResult.Accept)
    assert.equal(bob.announcements.remoteNodes()[0].draining, true)

    // Not renewed for three intervals: the coordinator is gone, and its nodes with it.
    clock += 180_001
    assert.deepEqual(bob.announcements.remoteNodes(), [])
  })

  it('rejects a node outside the publisher\'s domain, a publisher that is not a coordinator, a chain for another peer, unsigned and garbage', async () => {
    const bob = await daemon('bob', 'coordinator', 'coordinator')
    const liar = await daemon('alice', 'coordinator', 'coordinator', () => [node(`node-01@${BOB_DOMAIN}`, bobNode.peerId.toString())])
    await liar.announcements.announce()
    assert.equal(await bob.validate(signed(liar, liar.published[0])), TopicValidatorResult.Reject)

    const notCoordinator = await daemon('alice', 'node-07', 'node', () => [node(`node-01@${ALICE_DOMAIN}`, aliceNode.peerId.toString())])
    await notCoordinator.announcements.announce()
    assert.equal(await bob.validate(signed(notCoordinator, notCoordinator.published[0])), TopicValidatorResult.Reject)

    const alice = await daemon('alice', 'coordinator', 'coordinator', () => [node(`node-01@${ALICE_DOMAIN}`, aliceNode.peerId.toString())])
    await alice.announcements.announce()
    // Alice's chain, but sent (signed) by another peer: the chain does not prove that peer's key.
    assert.equal(await bob.validate(signed(alice, alice.published[0], bobNode)), TopicValidatorResult.Reject)
    assert.equal(await bob.validate({ type: 'unsigned', topic: NODES_TOPIC, data: alice.published[0] }), TopicValidatorResult.Reject)
    assert.equal(await bob.validate(signed(alice, new Uint8Array([0xff, 0xff, 0xff, 0x01]))), TopicValidatorResult.Reject)
    assert.equal(await bob.validate(signed(alice, new Uint8Array(300 * 1024))), TopicValidatorResult.Reject)
    assert.deepEqual(bob.announcements.remoteNodes(), [])
  })
})
