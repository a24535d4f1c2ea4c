import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { Popularity } from '../placement/popularity.js'
import { excessCopies } from '../placement/excess.js'
import type { MetadataStore } from '../metadata/store.js'
import type { ChunkTransport } from '../transfer/types.js'
import type { NodeRecord } from '../node-registry/registry.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'

export interface HotContentInit {
  /**
   * Most copies a chunk read often is kept at (default 4). A chunk whose files ask for as many or more gains none;
   * set it to the replication factor to turn popularity off.
   */
  maxReplicas?: number
  /** Time for a chunk's read count to halve when nothing reads it (default 1 hour) */
  halfLifeMs?: number
  /** Decayed reads at which a chunk gains its first extra copy; each doubling adds one more (default 20) */
  hotReads?: number
  /** Chunks whose reads are counted at most; the coldest are forgotten beyond it (default 10,000) */
  maxTracked?: number
  /** Hot chunks read from the metadata per batch when trimming (default 256) */
  batchSize?: number
  now?: () => number
}

export interface HotContentComponents {
  metadata: MetadataStore
  chunks: ChunkTransport
  logger: ComponentLogger
  /** Told about every extra copy deleted because its chunk cooled */
  onTrimmed?: (event: { cid: string, peerId: string }) => void
}

export interface HotContentStatus {
  maxReplicas: number
  halfLifeMs: number
  hotReads: number
  /** Chunks whose reads are being counted */
  tracked: number
  /** Chunks kept above their files' replica count right now */
  hotChunks: number
  /** Extra copies deleted since start because their chunks cooled */
  trimmedReplicas: number
}

/**
 * Popularity-based replication on a coordinator: reads of its chunks are counted with time decay; a chunk read
 * often gets a hot target (one copy more per doubling of its reads above the threshold, up to `maxReplicas`) that
 * the repairer restores like any other target, within its bandwidth budget; as the reads stop, the hot target
 * falls and the extra copies are deleted again, never below what the chunk's files ask for. A copy is given up
 * only once the reads are down to half the level that earned it, so that steady reads at a threshold do not copy
 * and delete the same chunk over and over.
 *
 * The hot target is kept in the metadata, the read counts only in memory: after a restart every chunk starts
 * cold, and its extra copies are given back until reads earn them again.
 */
export class HotContent {
  readonly maxReplicas: number
  private readonly popularity: Popularity
  private readonly components: HotContentComponents
  private readonly batchSize: number
  private readonly log: Logger
  private trimmedReplicas = 0

  constructor (components: HotContentComponents, init: HotContentInit = {}) {
    this.components = components
    this.maxReplicas = init.maxReplicas ?? 4
    this.batchSize = init.batchSize ?? 256
    this.popularity = new Popularity({ halfLifeMs: init.halfLifeMs, hotReads: init.hotReads, maxTracked: init.maxTracked, now: init.now })
    this.log = components.logger.forComponent('collective:repair:hot')
  }

  /** Counts one read of a chunk (whoever reads it: this coordinator, or a remote reader it handed locations to) */
  record (cid: string): void {
    this.popularity.record(cid)
  }

  /**
   * Raises the hot target of every chunk read often enough to deserve more copies than it has a target for, at
   * most one per counted node (more could never be placed). Returns how many targets were raised.
   */
  mark (nodes: NodeRecord[], base: number): number {
    const { metadata } = this.components
    const counted = nodes.filter(n => n.state !== 'dead' && n.draining !== true).length
    let raised = 0
    for (const cid of this.popularity.hotKeys()) {
      const info = metadata.getChunk(cid)
      if (info == null || info.refcount === 0) continue
      const own = Math.max(info.target, base)
      const wanted = Math.min(counted, this.popularity.desiredReplicas(cid, own, this.maxReplicas))
      if (wanted > own && wanted > info.hotTarget) {
        metadata.setHotTarget(cid, wanted)
        raised++
        this.log('chunk %s is hot (%d reads): kept at %d copies', cid, Math.round(this.popularity.score(cid)), wanted)
      }
    }
    return raised
  }

  /**
   * Lowers the hot target of chunks that cooled and deletes their copies above it, from the fullest nodes first
   * while keeping copies on distinct members. A copy on a dead or draining node is not counted and not touched.
   * A chunk leaves the hot list once it is back at its own target. Returns the copies deleted.
   */
  async trim (nodes: NodeRecord[], base: number, signal?: AbortSignal): Promise<number> {
    const { metadata, chunks } = this.components
    const byPeer = new Map(nodes.filter(n => n.state !== 'dead' && n.draining !== true).map(n => [n.peerId, n]))
    let trimmed = 0
    let after = ''
    while (true) {
      signal?.throwIfAborted()
      const batch = metadata.hotChunks({ after, limit: this.batchSize })
      if (batch.length === 0) break
      after = batch[batch.length - 1].cid
      for (const chunk of batch) {
        const own = Math.max(chunk.target, base)
        const keep = Math.max(own, Math.min(chunk.hotTarget, this.popularity.keptReplicas(chunk.cid, own, this.maxReplicas)))
        // Lowered before deleting, so that restore never copies back what is being given up.
        if (keep < chunk.hotTarget) metadata.setHotTarget(chunk.cid, keep)
        if (chunk.refcount === 0) {
          // No file left: garbage collection deletes every copy anyway.
          metadata.setHotTarget(chunk.cid, 0)
          continue
        }
        const holders = chunk.locations.map(p => byPeer.get(p)).filter((n): n is NodeRecord => n != null)
        let failed = 0
        for (const node of excessCopies(holders, keep)) {
          try {
            await chunks.delete(peerIdFromString(node.peerId), CID.parse(chunk.cid), { signal })
          } catch (err: any) {
            if (signal?.aborted === true) throw err
            failed++
            this.log('could not delete the extra copy of %s on %s, will retry - %s', chunk.cid, node.name, err.message)
            continue
          }
          metadata.removeChunkLocation(chunk.cid, node.peerId)
          trimmed++
          this.trimmedReplicas++
          this.components.onTrimmed?.({ cid: chunk.cid, peerId: node.peerId })
        }
        if (keep <= own && failed === 0) metadata.setHotTarget(chunk.cid, 0)
      }
    }
    if (trimmed > 0) this.log('deleted %d extra copies of chunks that cooled', trimmed)
    return trimmed
  }

  status (base: number): HotContentStatus {
    const { metadata } = this.components
    return {
      maxReplicas: this.maxReplicas,
      halfLifeMs: this.popularity.halfLifeMs,
      hotReads: this.popularity.hotReads,
      tracked: this.popularity.size,
      hotChunks: metadata.isStarted() ? metadata.hotChunkCount(base) : 0,
      trimmedReplicas: this.trimmedReplicas
    }
  }
}
