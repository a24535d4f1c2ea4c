import '../../../src/polyfill.js'
import { describe, it, before, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { defaultLogger } from '@libp2p/logger'
import { MetaOp, MetaRequest } from '../../../src/gen/meta.js'
import { ContentServer } from '../../../src/access/content-server.js'
import { SMALL_CHUNK_SIZE, cidOf } from '../../../src/storage/chunking.js'
import { federation, makePeer, issueNode, der, ALICE_DOMAIN } from '../identity/fixtures.js'
import { TrustStore } from '../../../src/identity/index.js'
import type { Peer } from '../identity/fixtures.js'
import type { VerifiedIdentity } from '../../../src/identity/index.js'
import type { NodeRecord } from '../../../src/node-registry/registry.js'

describe('ContentServer', () => {
  let caller: VerifiedIdentity
  let owner: Peer
  let nodes: NodeRecord[]
  let pinned: Set<string>
  let server: ContentServer

  before(async () => {
    const fed = await federation()
    const peer = await makePeer()
    const chain = [der(await issueNode(fed.alice, peer, 'laptop', 'client')), der(fed.alice.cert)]
    caller = await new TrustStore({ root: fed.root.cert }).verifyChain(chain, peer.peerId)
    owner = await makePeer()
    const node = (await makePeer()).peerId.toString()
    nodes = [{ peerId: node, name: `node-01@${ALICE_DOMAIN}`, domain: ALICE_DOMAIN, capacityBytes: 2 ** 40, usedBytes: 0, chunkCount: 0, addrs: [], registeredAt: 0, lastSeen: 0, state: 'alive' }]
  })

  /** An owner of /media with one storage node, whose pins we watch, allowing writes of 4 chunks */
  beforeEach(async () => {
    pinned = new Set()
    const files: any = {
      metadata: { tryStat: (path: string) => path === '/media' ? { path, type: 'dir' } : undefined, getChunk: () => undefined, chunkLocations: () => [], addChunkLocation: () => {} },
      policyFor: () => ({ replication: 1 }),
      pin: (cid: string) => { pinned.add(cid); return () => { pinned.delete(cid) } }
    }
    server = new ContentServer({ files, nodes: () => nodes, privateKey: owner.key, has: async () => true, logger: defaultLogger() }, { writeChunks: 4 })
    await server.start()
  })

  afterEach(async () => { await server.stop() })

  const chunk = async (n: number): Promise<{ cid: Uint8Array<ArrayBuffer>, size: number }> => ({ cid: (await cidOf(new Uint8Array([n]))).bytes as Uint8Array<ArrayBuffer>, size: 1 })
  const call = async (req: Partial<MetaRequest>): Promise<any> => await server.serve(caller, MetaRequest.decode(MetaRequest.encode({ op: MetaOp.OP_UNSPECIFIED, ...req })), new AbortController().signal)

  it('refuses to allocate a chunk beyond the most a write may have, and pins nothing for it', async () => {
    const { writeId } = await call({ op: MetaOp.BEGIN_WRITE, path: '/media/big', chunkSize: SMALL_CHUNK_SIZE })
    await call({ op: MetaOp.ALLOCATE, writeId, firstChunk: 2, chunks: [await chunk(2), await chunk(3)] })
    assert.equal(pinned.size, 2)
    await assert.rejects(call({ op: MetaOp.ALLOCATE, writeId, firstChunk: 3, chunks: [await chunk(3), await chunk(4)] }), { name: 'WriteTooLargeError' })
    await assert.rejects(call({ op: MetaOp.ALLOCATE, writeId, firstChunk: 2 ** 32 - 1, chunks: [await chunk(5)] }), { name: 'WriteTooLargeError' })
    assert.equal(pinned.size, 2)
  })

  it('refuses to pin more distinct chunks than a write may have, however often an index is announced again', async () => {
    const { writeId } = await call({ op: MetaOp.BEGIN_WRITE, path: '/media/big', chunkSize: SMALL_CHUNK_SIZE })
    for (let n = 0; n < 4; n++) await call({ op: MetaOp.ALLOCATE, writeId, firstChunk: 0, chunks: [await chunk(n)] })
    // A chunk already pinned is announced again freely: a writer does so after a failed put.
    await call({ op: MetaOp.ALLOCATE, writeId, firstChunk: 0, chunks: [await chunk(1)] })
    await assert.rejects(call({ op: MetaOp.ALLOCATE, writeId, firstChunk: 0, chunks: [await chunk(4)] }), { name: 'WriteTooLargeError' })
    assert.equal(pinned.size, 4)
    await call({ op: MetaOp.ABORT_WRITE, writeId })
    assert.equal(pinned.size, 0)
  })
})
