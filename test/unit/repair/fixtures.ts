import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MetadataStore } from '../../../src/metadata/store.js'
import { cidOf } from '../../../src/storage/chunking.js'
import type { CID } from 'multiformats/cid'
import type { Logger, PeerId } from '@libp2p/interface'
import type { ChunkTransport } from '../../../src/transfer/types.js'
import type { NodeRecord, NodeState } from '../../../src/node-registry/registry.js'
import { Uint8ArrayList } from 'uint8arraylist'

export const OWNER = 'alice.home.collective.local'

export async function node (name: string, domain: string, state: NodeState = 'alive', extra: Partial<NodeRecord> = {}): Promise<NodeRecord> {
  const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  return { peerId, name: `${name}@${domain}`, domain, capacityBytes: 1e9, usedBytes: 0, chunkCount: 0, addrs: [], registeredAt: 0, lastSeen: 0, state, ...extra }
}

/** What a transfer test starts from: an empty in-memory metadata store with a directory /d, and three live nodes on three members */
export async function transferSetup (): Promise<{ metadata: MetadataStore, nodes: NodeRecord[], log: Logger }> {
  const metadata = new MetadataStore({ path: ':memory:' })
  metadata.start()
  metadata.mkdir('/d', { parents: false, owner: OWNER })
  const nodes = await Promise.all(['a', 'b', 'c'].map(async n => await node(n, `${n}.collective.local`)))
  return { metadata, nodes, log: defaultLogger().forComponent('test') }
}

export async function chunk (text: string): Promise<{ cid: string, bytes: Uint8Array }> {
  const bytes = new TextEncoder().encode(text)
  return { cid: (await cidOf(bytes)).toString(), bytes }
}

function named (name: string, message: string): Error {
  const err = new Error(message)
  err.name = name
  return err
}

/** Storage nodes in memory behind the ChunkTransport interface, with faults to inject */
export class FakeNodes implements ChunkTransport {
  readonly stored = new Map<string, Map<string, Uint8Array>>()
  /** `peerId cid` of copies that come back with wrong bytes (the real transport throws ChunkVerificationError) */
  readonly corrupt = new Set<string>()
  /** Peers that refuse every call */
  readonly down = new Set<string>()
  readonly puts: Array<{ peer: string, cid: string }> = []

  of (peer: string): Map<string, Uint8Array> {
    let m = this.stored.get(peer)
    if (m == null) { m = new Map(); this.stored.set(peer, m) }
    return m
  }

  async put (peer: PeerId, cid: CID, bytes: Uint8Array | Uint8ArrayList): Promise<void> {
    if (this.down.has(peer.toString())) throw named('ChunkTransferError', `${peer.toString()} is down`)
    this.puts.push({ peer: peer.toString(), cid: cid.toString() })
    // Like a real node: a chunk already held is kept as it is, rotten or not.
    if (!this.of(peer.toString()).has(cid.toString())) this.of(peer.toString()).set(cid.toString(), bytes.subarray())
  }

  async get (peer: PeerId, cid: CID): Promise<Uint8ArrayList> {
    if (this.down.has(peer.toString())) throw named('ChunkTransferError', `${peer.toString()} is down`)
    const bytes = this.of(peer.toString()).get(cid.toString())
    if (bytes == null) throw named('ChunkNotFoundError', `${cid.toString()} not on ${peer.toString()}`)
    if (this.corrupt.has(`${peer.toString()} ${cid.toString()}`)) throw named('ChunkVerificationError', 'bytes do not match the CID')
    return new Uint8ArrayList(bytes)
  }

  async delete (peer: PeerId, cid: CID): Promise<void> {
    if (this.down.has(peer.toString())) throw named('ChunkTransferError', `${peer.toString()} is down`)
    this.of(peer.toString()).delete(cid.toString())
    this.corrupt.delete(`${peer.toString()} ${cid.toString()}`)
  }
}

/** An in-memory metadata store with one file per chunk, each chunk on the given nodes (and in `fake` there) */
export function metadataWith (files: Array<{ path: string, chunk: { cid: string, bytes: Uint8Array }, on: NodeRecord[] }>, fake?: FakeNodes): MetadataStore {
  const metadata = new MetadataStore({ path: ':memory:' })
  metadata.start()
  for (const f of files) {
    const size = f.chunk.bytes.length
    metadata.commitFile(f.path, {
      manifest: { chunkSize: size, chunks: [{ cid: f.chunk.cid, size }] },
      size,
      owner: OWNER,
      locations: [{ cid: f.chunk.cid, peerIds: f.on.map(n => n.peerId) }]
    })
    for (const n of f.on) fake?.of(n.peerId).set(f.chunk.cid, f.chunk.bytes)
  }
  return metadata
}
