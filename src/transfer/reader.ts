import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { ChunkUnavailableError } from './errors.js'
import { livenessRank, replicaOrder } from './replicas.js'
import type { ChunkTransport, NodeDirectory } from './types.js'
import type { MetadataStore, FileManifest } from '../metadata/store.js'
import type { Logger } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface ReadComponents {
  chunks: ChunkTransport
  nodes: NodeDirectory
  metadata: MetadataStore
  log: Logger
  /** Told about every replica that served bytes not matching their CID */
  onBadReplica?: (cid: string, peerId: string) => void
  onFailover?: () => void
  /** Told about every chunk read (popularity counts them) */
  onChunkRead?: (cid: string) => void
}

export interface ReadOptions {
  /** Bytes of chunks fetched ahead of the one being streamed (default 8 MiB, at least two chunks) */
  readAheadBytes?: number
  signal?: AbortSignal
}

/**
 * Fetches one chunk from the best replica (replicaOrder: live nodes first, the least busy of them first). Every
 * byte is verified against the CID (by the transport); on any error or mismatch the next replica is tried, and a
 * replica that served wrong bytes is reported and forgotten so that repair can replace it.
 */
async function fetchChunk (components: ReadComponents, cidText: string, signal?: AbortSignal): Promise<Uint8ArrayList> {
  const { metadata, chunks, nodes, log } = components
  const cid = CID.parse(cidText)
  const states = new Map(nodes().map(n => [n.peerId, n.state]))
  const replicas = replicaOrder(metadata.chunkLocations(cidText), p => ({
    rank: livenessRank(states.get(p)),
    load: chunks.load?.(p) ?? 0
  }))
  const errors: string[] = []
  for (const [i, peer] of replicas.entries()) {
    try {
      if (i > 0) components.onFailover?.()
      const bytes = await chunks.get(peerIdFromString(peer), cid, { signal })
      components.onChunkRead?.(cidText)
      return bytes
    } catch (err: any) {
      if (signal?.aborted === true) throw err
      errors.push(`${peer.slice(-8)}: ${err.name as string}`)
      if (err.name === 'ChunkVerificationError') {
        log.error('replica of %s on %s is corrupt; dropping it', cidText, peer)
        metadata.removeChunkLocation(cidText, peer)
        components.onBadReplica?.(cidText, peer)
      } else {
        log('replica of %s on %s failed, trying the next - %s', cidText, peer, err.message)
      }
    }
  }
  throw new ChunkUnavailableError(`no replica of chunk ${cidText} could be read (${errors.length > 0 ? errors.join(', ') : 'no replicas known'})`)
}

/**
 * Yields `fetch(0)` … `fetch(count - 1)` in order, with up to `ahead` of them in flight: the read-ahead of every
 * reader, local or remote. Memory is bounded by `ahead` chunks plus the one being consumed.
 */
export async function * readAhead<T> (count: number, ahead: number, fetch: (index: number) => Promise<T>): AsyncGenerator<T> {
  const pending: Array<Promise<T>> = []
  let next = 0
  const fill = (): void => {
    while (pending.length < ahead && next < count) {
      const p = fetch(next++)
      p.catch(() => {}) // awaited in order below; this only stops an unhandled-rejection warning
      pending.push(p)
    }
  }
  fill()
  while (pending.length > 0) {
    const bytes = await (pending.shift() as Promise<T>)
    fill()
    yield bytes
  }
}

/** How many chunks of `chunkSize` a read-ahead budget of `bytes` holds (default 8 MiB), and never fewer than two */
export function chunksAhead (chunkSize: number, bytes = 8 * 1024 * 1024): number {
  return Math.max(2, Math.floor(bytes / Math.max(1, chunkSize)))
}

/**
 * Streams a file in order while fetching chunks ahead in parallel, one chunk per item, each in the pieces it
 * arrived in. Memory is bounded by the read-ahead budget plus one chunk, whatever the file's size.
 */
export function readFile (components: ReadComponents, manifest: FileManifest, options: ReadOptions = {}): AsyncGenerator<Uint8ArrayList> {
  const { chunks } = manifest
  return readAhead(chunks.length, chunksAhead(manifest.chunkSize, options.readAheadBytes), async i => await fetchChunk(components, chunks[i].cid, options.signal))
}
