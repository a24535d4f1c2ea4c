import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ChunkServer } from '../../../src/chunks/server.js'
import { CHUNK_ROLE_POLICY } from '../../../src/chunks/protocol.js'
import { PeerIdentities } from '../../../src/net/peer-identities.js'
import { chunkOf, logger } from './fixtures.js'
import type { ChunkOperation } from '../../../src/chunks/protocol.js'
import type { ChunkServerInit } from '../../../src/chunks/server.js'
import type { Role, VerifiedIdentity } from '../../../src/identity/index.js'
import type { Libp2p } from '@libp2p/interface'
import type { ChunkStore } from '../../../src/storage/chunk-store.js'
import type { CID } from 'multiformats/cid'

const OPS: ChunkOperation[] = ['put', 'get', 'has', 'delete']

function identity (role: Role): VerifiedIdentity {
  return {
    peerId: '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN',
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

/** authorize() needs neither a host nor a store: it decides from the identity alone */
function server (init: ChunkServerInit = {}): ChunkServer {
  return new ChunkServer({ host: {} as unknown as Libp2p, store: {} as unknown as ChunkStore, identities: new PeerIdentities(), logger }, init)
}

async function verdict (s: ChunkServer, who: VerifiedIdentity | undefined, op: ChunkOperation): Promise<string> {
  const { cid } = await chunkOf(10, 1)
  try {
    await s.authorize(who, op, cid)
    return 'allowed'
  } catch (err: any) {
    return err.name
  }
}

describe('ChunkServer.authorize', () => {
  it('lets coordinators, clients and nodes perform every operation by default', async () => {
    const s = server()
    for (const role of ['coordinator', 'client', 'node'] as Role[]) {
      for (const op of OPS) {
        assert.equal(await verdict(s, identity(role), op), 'allowed', `${role} ${op}`)
        assert.ok(CHUNK_ROLE_POLICY[op].includes(role))
      }
    }
  })

  it('refuses a caller without a verified identity, whatever the operation', async () => {
    const s = server()
    for (const op of OPS) assert.equal(await verdict(s, undefined, op), 'UnknownPeerError')
  })

  it('refuses a role the policy does not list for the operation', async () => {
    const s = server({ policy: { put: ['coordinator', 'node'], delete: ['coordinator'] } })
    assert.equal(await verdict(s, identity('client'), 'put'), 'OperationNotAllowedError')
    assert.equal(await verdict(s, identity('client'), 'delete'), 'OperationNotAllowedError')
    assert.equal(await verdict(s, identity('node'), 'delete'), 'OperationNotAllowedError')
    assert.equal(await verdict(s, identity('node'), 'put'), 'allowed')
    assert.equal(await verdict(s, identity('client'), 'get'), 'allowed')
    // a role unknown to this build (a newer certificate) is refused, not waved through
    assert.equal(await verdict(s, identity('auditor' as Role), 'get'), 'OperationNotAllowedError')
  })

  it('can be replaced by a subclass, which is how signed capabilities will plug in', async () => {
    class ReadOnly extends ChunkServer {
      override async authorize (who: VerifiedIdentity | undefined, op: ChunkOperation, cid: CID, capability?: Uint8Array): Promise<void> {
        await super.authorize(who, op, cid, capability)
        if (op !== 'get' && op !== 'has') throw new Error('read only')
      }
    }
    const s = new ReadOnly({ host: {} as unknown as Libp2p, store: {} as unknown as ChunkStore, identities: new PeerIdentities(), logger })
    assert.equal(await verdict(s, identity('client'), 'get'), 'allowed')
    assert.equal(await verdict(s, identity('client'), 'put'), 'Error')
  })
})
