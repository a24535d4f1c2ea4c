import type { CID } from 'multiformats/cid'
import type { ChunkRequestOptions } from '../chunks/client.js'
import type { PeerId } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { NodeRecord } from '../node-registry/registry.js'

/** The chunk operations a transfer needs from the network; `ChunkClient` implements it over libp2p */
export interface ChunkTransport {
  put: (peer: PeerId, cid: CID, bytes: Uint8Array | Uint8ArrayList, options?: ChunkRequestOptions) => Promise<void>
  /** Resolves only with bytes that hash to `cid`, in the pieces they arrived in */
  get: (peer: PeerId, cid: CID, options?: ChunkRequestOptions) => Promise<Uint8ArrayList>
  delete: (peer: PeerId, cid: CID, options?: ChunkRequestOptions) => Promise<void>
  /** Requests in flight to or waiting for the node (a peer ID string): readers ask the least busy copy first */
  load?: (peer: string) => number
}

/** Where chunks may go: the storage nodes known right now */
export type NodeDirectory = () => NodeRecord[]
