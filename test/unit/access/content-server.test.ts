import '../../../src/polyfill.js'
import { describe, it, before, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromMultihash } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
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

  it('lists each chunk\'s live holders first, in random order, so that remote readers spread over the copies', async () => {
    const [a, b, gone] = await Promise.all([makePeer(), makePeer(), makePeer()]).then(ps => ps.map(p => p.peerId.toString()))
    const record = (peerId: string, state: NodeRecord['state']): NodeRecord => ({ ...nodes[0], peerId, name: peerId, state })
    const chunks = await Promise.all(Array.from({ length: 40 }, async (_, n) => ({ cid: (await cidOf(new Uint8Array([n]))).toString(), size: 1 })))
    const entry = { id: 1, path: '/media/f', type: 'file', size: 40, mode: 0o644, owner: 'alice', version: 1, mtimeMs: 0, ctimeMs: 0 }
    const files: any = {
      open: () => ({ entry, manifest: { size: 40, chunkSize: SMALL_CHUNK_SIZE, chunks } }),
      // as the metadata lists them: by peer ID, here with the dead node among them
      metadata: { chunkLocations: () => [gone, a, b].sort() },
      noteReads: () => {}
    }
    const reader = new ContentServer({ files, nodes: () => [record(a, 'alive'), record(b, 'alive'), record(gone, 'dead')], privateKey: owner.key, has: async () => true, logger: defaultLogger() })
    await reader.start()
    try {
      const res = await reader.serve(caller, MetaRequest.decode(MetaRequest.encode({ op: MetaOp.OPEN_READ, path: '/media/f', limit: 40 })), new AbortController().signal)
      const firsts = new Map<string, number>()
      for (const p of res.placements ?? []) {
        const order = p.nodes.map(bytes => peerIdFromMultihash(Digest.decode(bytes)).toString())
        assert.equal(order.length, 3)
        assert.equal(order[2], gone, 'the dead node comes last')
        firsts.set(order[0], (firsts.get(order[0]) ?? 0) + 1)
      }
      // 40 chunks: the odds that one live node never comes first are 2 in 2^40
      assert.ok((firsts.get(a) ?? 0) > 0 && (firsts.get(b) ?? 0) > 0, `first holders: ${JSON.stringify([...firsts])}`)
    } finally {
      await reader.stop()
    }
  })
})
