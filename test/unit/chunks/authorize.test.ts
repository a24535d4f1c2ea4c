import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ChunkServer } from '../../../src/chunks/server.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { issueCapability, selfIssued } from '../../../src/permissions/capability.js'
import { ChunkOwners } from '../../../src/storage/chunk-owners.js'
import { PeerIdentities } from '../../../src/net/peer-identities.js'
import { chunkOf, logger } from './fixtures.js'
import type { ChunkOperation } from '../../../src/chunks/protocol.js'
import type { ChunkServerInit } from '../../../src/chunks/server.js'
import type { Role, VerifiedIdentity } from '../../../src/identity/index.js'
import type { Libp2p } from '@libp2p/interface'
import type { ChunkStore } from '../../../src/storage/chunk-store.js'

const OPS: ChunkOperation[] = ['put', 'get', 'has', 'delete']

const key = await generateKeyPair('Ed25519')
const callerKey = await generateKeyPair('Ed25519')
const nodeId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

function identity (role: Role): VerifiedIdentity {
  return {
    peerId: peerIdFromPrivateKey(callerKey).toString(),
    name: `${role}-1@home.collective.local`,
    local: `${role}-1`,
    domain: 'home.collective.local',
    member: 'alice',
    role,
    serial: '01',
    notAfter: new Date(Date.now() + 86_400_000),
    memberCaFingerprint: 'aa'
  }
}

/** authorize() needs no store and no network: it decides from the identity, the token and the owners table */
async function server (init: ChunkServerInit = {}): Promise<{ s: ChunkServer, owners: ChunkOwners }> {
  const owners = new ChunkOwners({ path: ':memory:' })
  await owners.start()
  const s = new ChunkServer({ host: { peerId: nodeId } as unknown as Libp2p, store: {} as unknown as ChunkStore, identities: new PeerIdentities(), owners, logger }, init)
  return { s, owners }
}

async function verdict (s: ChunkServer, who: VerifiedIdentity | undefined, op: ChunkOperation, token?: Uint8Array): Promise<string> {
  const { cid } = await chunkOf(10, 1)
  try {
    await s.authorize(who, op, cid, token ?? await selfIssued(callerKey)(op, cid))
    return 'allowed'
  } catch (err: any) {
    return err.name
  }
}

describe('ChunkServer.authorize', () => {
  it('lets coordinators and clients put with their own capability, and never nodes', async () => {
    const { s } = await server()
    for (const role of ['coordinator', 'client'] as Role[]) assert.equal(await verdict(s, identity(role), 'put'), 'allowed', role)
    for (const op of OPS) assert.equal(await verdict(s, identity('node'), op), 'OperationNotAllowedError', op)
    // a role unknown to this build (a newer certificate) is refused, not waved through
    assert.equal(await verdict(s, identity('auditor' as Role), 'get'), 'OperationNotAllowedError')
  })

  it('refuses a caller without a verified identity, whatever the operation', async () => {
    const { s } = await server()
    for (const op of OPS) assert.equal(await verdict(s, undefined, op), 'UnknownPeerError')
  })

  it('refuses a request without a capability, or with one for another operation, node or holder', async () => {
    const { s } = await server()
    const { cid } = await chunkOf(10, 1)
    assert.equal(await verdict(s, identity('client'), 'put', new Uint8Array(0)), 'MalformedCapabilityError')
    assert.equal(await verdict(s, identity('client'), 'put', await selfIssued(callerKey)('get', cid)), 'CapabilityOperationError')
    const otherNode = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    assert.equal(await verdict(s, identity('client'), 'put', await issueCapability({ privateKey: callerKey, holder: identity('client').peerId, audience: otherNode, op: 'put', cids: [cid] })), 'CapabilityAudienceError')
    assert.equal(await verdict(s, identity('client'), 'put', await issueCapability({ privateKey: callerKey, holder: identity('client').peerId, audience: nodeId, op: 'put', cids: [cid] })), 'allowed')
    assert.equal(await verdict(s, identity('client'), 'put', await selfIssued(key)('put', cid)), 'CapabilityHolderError')
  })

  it('counts a GET, HAS or DELETE capability only from a coordinator the chunk is kept for', async () => {
    const { s, owners } = await server()
    const { cid } = await chunkOf(10, 1)
    const coordinator = peerIdFromPrivateKey(key).toString()
    const fromCoordinator = async (op: ChunkOperation): Promise<Uint8Array> => await issueCapability({ privateKey: key, holder: identity('client').peerId, op, cids: [cid] })
    for (const op of ['get', 'has', 'delete'] as ChunkOperation[]) {
      assert.equal(await verdict(s, identity('client'), op, await fromCoordinator(op)), 'UntrustedCapabilityIssuerError', op)
    }
    owners.add(cid.toString(), coordinator)
    for (const op of ['get', 'has', 'delete'] as ChunkOperation[]) {
      assert.equal(await verdict(s, identity('client'), op, await fromCoordinator(op)), 'allowed', op)
      // the caller's own signature does not make it an owner
      assert.equal(await verdict(s, identity('client'), op), 'UntrustedCapabilityIssuerError', op)
    }
  })

  it('applies a narrower role policy before looking at the capability', async () => {
    const { s } = await server({ policy: { put: ['coordinator'], delete: ['coordinator'] } })
    assert.equal(await verdict(s, identity('client'), 'put'), 'OperationNotAllowedError')
    assert.equal(await verdict(s, identity('client'), 'delete'), 'OperationNotAllowedError')
    assert.equal(await verdict(s, identity('coordinator'), 'put'), 'allowed')
  })
})
