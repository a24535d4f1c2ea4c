import '../../../src/polyfill.js'
import { describe, it, before, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { defaultLogger } from '@libp2p/logger'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { DataStoreDirectory, DATASTORES_TOPIC } from '../../../src/access/datastores.js'
import { CoordinatorAnnouncement, DataStoreList } from '../../../src/gen/announce.js'
import { TrustStore, createMemberCA } from '../../../src/identity/index.js'
import { DataStoreRegistry, principalOf } from '../../../src/permissions/index.js'
import { federation, makePeer, issueNode, der } from '../identity/fixtures.js'
import { openDatabase } from '../permissions/fixtures.js'
import type { CertificateAuthority, VerifiedIdentity } from '../../../src/identity/index.js'
import type { PermissionsDatabase } from '../../../src/permissions/database.js'
import type { Peer } from '../identity/fixtures.js'
import type { Message } from '@libp2p/gossipsub'

interface Coordinator {
  peer: Peer
  chain: Uint8Array[]
  identity: VerifiedIdentity
}

async function coordinator (ca: CertificateAuthority, trustStore: TrustStore): Promise<Coordinator> {
  const peer = await makePeer()
  const chain = [der(await issueNode(ca, peer, 'coordinator', 'coordinator')), der(ca.cert)]
  return { peer, chain, identity: await trustStore.verifyChain(chain, peer.peerId) }
}

let version = 1

/** `from`'s announcement of `paths` as DataStores of its own member, as gossipsub hands it to the validator */
function announcement (from: Coordinator, ...paths: string[]): Message {
  const payload = DataStoreList.encode({ datastores: paths.map(path => ({ path, owner: principalOf(from.identity), strategy: 'hybrid', replicas: 2, version: 1 })) })
  const data = CoordinatorAnnouncement.encode({ chain: from.chain as Array<Uint8Array<ArrayBuffer>>, version: version++, payload })
  return { type: 'signed', from: from.peer.peerId, topic: DATASTORES_TOPIC, data, sequenceNumber: 1n, signature: new Uint8Array(64), key: from.peer.key.publicKey }
}

describe('DataStoreDirectory', () => {
  let trustStore: TrustStore
  let alice: Coordinator
  let mallory: Coordinator
  let bob: Coordinator
  let db: PermissionsDatabase
  let directory: DataStoreDirectory
  let validate: (message: Message) => Promise<TopicValidatorResult>

  before(async () => {
    const fed = await federation()
    trustStore = new TrustStore({ root: fed.root.cert })
    const malloryCA = await createMemberCA({ rootCert: fed.root.cert, rootKey: fed.root.keys.privateKey, member: 'mallory', domain: 'mallory.collective.local' })
    alice = await coordinator(fed.alice, trustStore)
    mallory = await coordinator(malloryCA, trustStore)
    bob = await coordinator(fed.bob, trustStore)
  })

  /** Bob's coordinator, owning /projects/secret, over a stand-in for gossipsub: what it validates is ours to send */
  beforeEach(async () => {
    db = openDatabase()
    const registry = new DataStoreRegistry({ database: db, logger: defaultLogger() })
    registry.create(bob.identity, { path: '/projects/secret' })
    const validators = new Map<string, (from: unknown, m: Message) => Promise<TopicValidatorResult>>()
    const host: any = { services: { pubsub: { topicValidators: validators, subscribe () {}, unsubscribe () {}, publish: async () => ({ recipients: [] }) } } }
    directory = new DataStoreDirectory({ host, trustStore, chain: bob.chain, identity: bob.identity, registry, logger: defaultLogger() }, { intervalMs: 60_000 })
    await directory.start()
    validate = async message => await validators.get(DATASTORES_TOPIC)!(undefined, message)
  })

  afterEach(async () => {
    await directory.stop()
    db.stop()
  })

  it('rejects an announcement of /, which would take every path of every daemon', async () => {
    assert.equal(await validate(announcement(mallory, '/', '/mallory')), TopicValidatorResult.Reject)
    assert.deepEqual(directory.list().map(d => d.path), ['/projects/secret'])
    assert.equal(directory.find('/home/bob/notes.txt'), undefined)
    assert.equal(directory.find('/projects/secret/plan.txt')?.local, true)
  })

  it('ignores an announced parent of a local DataStore, and keeps the rest of the announcement', async () => {
    assert.equal(await validate(announcement(mallory, '/projects', '/mallory')), TopicValidatorResult.Accept)
    assert.deepEqual(directory.list().map(d => [d.path, d.coordinator]), [['/mallory', mallory.identity.peerId], ['/projects/secret', bob.identity.peerId]])
    assert.equal(directory.find('/projects/secret/plan.txt')?.local, true)
    assert.equal(directory.find('/projects/other.txt'), undefined)
    // The same path as the local DataStore, or one inside it, is no better.
    assert.equal(await validate(announcement(mallory, '/projects/secret', '/projects/secret/inner')), TopicValidatorResult.Accept)
    assert.deepEqual(directory.list().map(d => d.path), ['/projects/secret'])
    assert.equal(directory.find('/projects/secret/inner/x')?.local, true)
  })

  it('keeps a remote DataStore with the coordinator that announced it first', async () => {
    assert.equal(await validate(announcement(alice, '/shared')), TopicValidatorResult.Accept)
    assert.equal(await validate(announcement(mallory, '/shared/inner', '/')), TopicValidatorResult.Reject)
    assert.equal(await validate(announcement(mallory, '/shared/inner')), TopicValidatorResult.Accept)
    assert.equal(await validate(announcement(alice, '/shared')), TopicValidatorResult.Accept)
    assert.deepEqual(directory.list().map(d => [d.path, d.coordinator]), [['/projects/secret', bob.identity.peerId], ['/shared', alice.identity.peerId]])
    assert.equal(directory.find('/shared/inner/x')?.coordinator, alice.identity.peerId)
  })
})
