import type { CID } from 'multiformats/cid'
import type { ChunkRequestOptions } from '../chunks/client.js'
import type { PeerId } from '@libp2p/interface'
import type { NodeRecord } from '../node-registry/registry.js'

/** The chunk operations a transfer needs from the network; `ChunkClient` implements it over libp2p */
export interface ChunkTransport {
  put: (peer: PeerId, cid: CID, bytes: Uint8Array, options?: ChunkRequestOptions) => Promise<void>
  /** Resolves only with bytes that hash to `cid` */
  get: (peer: PeerId, cid: CID, options?: ChunkRequestOptions) => Promise<Uint8Array>
  delete: (peer: PeerId, cid: CID, options?: ChunkRequestOptions) => Promise<void>
}

/** Where chunks may go: the storage nodes known right now */
export type NodeDirectory = () => NodeRecord[]
