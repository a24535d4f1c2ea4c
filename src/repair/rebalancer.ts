import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { memberCount } from '../placement/excess.js'
import type { TokenBucket } from './token-bucket.js'
import type { MetadataStore } from '../metadata/store.js'
import type { ChunkTransport } from '../transfer/types.js'
import type { NodeRecord } from '../node-registry/registry.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface RebalancerInit {
  /**
   * How far above the group's average fill (used / capacity over live nodes) a node may be before chunks move
   * off it, as a fraction of that average (default 0.1: with an average of 40 %, a node above 44 %)
   */
  tolerance?: number
  /**
   * And by at least this much fill in absolute terms (default 0.005, half a point of capacity), so that a few
   * megabytes on nearly empty disks are left where they are
   */
  minGap?: number
  /** Chunks moved per pass at most (default 64), so repair of a fresh loss never waits long behind a rebalance */
  maxMovesPerPass?: number
  /**
   * A node's reported fill lags the moves until its next report: a move counts against its fill until the node
   * reports after it, or this long at most (default 60 s)
   */
  settleMs?: number
  /** Chunks read from the metadata per batch (default 256) */
  batchSize?: number
  now?: () => number
}

export interface RebalancerComponents {
  metadata: MetadataStore
  chunks: ChunkTransport
  /** The repairer's budget: moves share it with repair */
  bucket: TokenBucket
  /** A chunk's bytes from the first of `sources` that serves them intact (the repairer's read) */
  read: (cid: CID, sources: NodeRecord[], signal?: AbortSignal) => Promise<{ bytes: Uint8ArrayList, from: string }>
  logger: ComponentLogger
  /** Told about every chunk moved */
  onMoved?: (event: { cid: string, bytes: number, from: string, to: string }) => void
}

export interface RebalanceStatus {
  tolerance: number
  minGap: number
  movedChunks: number
  movedBytes: number
}

interface Move { cid: string, size: number, from: NodeRecord, to: NodeRecord, sources: NodeRecord[] }

/**
 * Moves chunks of this coordinator's files from the fullest nodes toward the emptiest, a few per pass within the
 * repair budget, so that a node that joins (or a group that grew unevenly) fills up like the others instead of
 * only taking new writes. A move copies first and deletes the old copy after, so a chunk never has fewer copies
 * than before; it never reduces the number of members holding a chunk, and never makes the receiving node fuller
 * than the one giving. Only chunks at their target are moved: the ones below are repair's.
 */
export class Rebalancer {
  private readonly components: RebalancerComponents
  private readonly tolerance: number
  private readonly minGap: number
  private readonly maxMovesPerPass: number
  private readonly settleMs: number
  private readonly batchSize: number
  private readonly now: () => number
  private readonly log: Logger
  /** Bytes moved onto (+) or off (-) a node that its reports may not show yet */
  private readonly pending = new Map<string, Array<{ bytes: number, at: number }>>()
  /**
   * Where the scan of each node's chunks stopped. A pass moves at most maxMovesPerPass chunks and a long rebalance
   * takes many passes: starting each one from the node's first chunk re-read every chunk that could not move (at
   * its other copies' members, garbage in its grace period) once per pass. The next pass goes on from here and
   * wraps around once.
   */
  private readonly cursors = new Map<string, string>()
  private movedChunks = 0
  private movedBytes = 0

  constructor (components: RebalancerComponents, init: RebalancerInit = {}) {
    this.components = components
    this.tolerance = init.tolerance ?? 0.1
    this.minGap = init.minGap ?? 0.005
    this.maxMovesPerPass = init.maxMovesPerPass ?? 64
    this.settleMs = init.settleMs ?? 60_000
    this.batchSize = init.batchSize ?? 256
    this.now = init.now ?? Date.now
    this.log = components.logger.forComponent('collective:repair:rebalance')
  }

  status (): RebalanceStatus {
    return { tolerance: this.tolerance, minGap: this.minGap, movedChunks: this.movedChunks, movedBytes: this.movedBytes }
  }

  /** One round of moves; `base` is the coordinator's default replica count. Resolves with what was moved */
  async rebalance (nodes: NodeRecord[], base: number, signal?: AbortSignal): Promise<{ moved: number, bytes: number }> {
    const eligible = nodes.filter(n => n.state === 'alive' && n.draining !== true && n.capacityBytes > 0)
    const result = { moved: 0, bytes: 0 }
    if (eligible.length < 2) return result
    this.settle(nodes)
    const used = new Map(eligible.map(n => [n.peerId, n.usedBytes + this.pendingBytes(n.peerId)]))
    const fill = (n: NodeRecord): number => (used.get(n.peerId) ?? 0) / n.capacityBytes
    const capacity = eligible.reduce((s, n) => s + n.capacityBytes, 0)
    const average = [...used.values()].reduce((s, b) => s + b, 0) / capacity
    if (average <= 0) return result
    const exhausted = new Set<string>()
    for (const peerId of this.cursors.keys()) if (!used.has(peerId)) this.cursors.delete(peerId)
    let failures = 0
    while (result.moved < this.maxMovesPerPass && failures < 3) {
      signal?.throwIfAborted()
      const source = eligible
        .filter(n => !exhausted.has(n.peerId) && fill(n) > Math.max(average * (1 + this.tolerance), average + this.minGap))
        .sort((a, b) => fill(b) - fill(a))[0]
      if (source == null) break
      const move = this.findMove(source, nodes, eligible, fill, average, base)
      if (move == null) { exhausted.add(source.peerId); continue }
      try {
        await this.move(move, signal)
      } catch (err: any) {
        if (signal?.aborted === true) throw err
        failures++
        this.log('moving %s from %s to %s failed - %s', move.cid, move.from.name, move.to.name, err.message)
        continue
      }
      used.set(move.from.peerId, (used.get(move.from.peerId) ?? 0) - move.size)
      used.set(move.to.peerId, (used.get(move.to.peerId) ?? 0) + move.size)
      result.moved++
      result.bytes += move.size
    }
    if (result.moved > 0) this.log('moved %d chunks (%d bytes) toward emptier nodes; average fill %s', result.moved, result.bytes, average.toFixed(4))
    return result
  }

  /**
   * The next chunk on `source` that can go to an emptier node, scanning its chunks from where the last scan stopped
   * (in this pass or an earlier one) to the end and then from the first up to there: each chunk is looked at once.
   */
  private findMove (source: NodeRecord, nodes: NodeRecord[], eligible: NodeRecord[], fill: (n: NodeRecord) => number, average: number, base: number): Move | undefined {
    const { metadata } = this.components
    const byPeer = new Map(nodes.map(n => [n.peerId, n]))
    const receivers = eligible.filter(n => n !== source && fill(n) < average).sort((a, b) => fill(a) - fill(b))
    if (receivers.length === 0) return undefined
    const start = this.cursors.get(source.peerId) ?? ''
    let wrapped = start === ''
    while (true) {
      const cids = metadata.chunksOnPeer(source.peerId, { after: this.cursors.get(source.peerId) ?? '', limit: this.batchSize })
      if (cids.length === 0) {
        if (wrapped) return undefined
        wrapped = true
        this.cursors.set(source.peerId, '')
        continue
      }
      for (const cid of cids) {
        // Round to where this scan started: every chunk was looked at (CIDs are ASCII, so JS and SQLite agree on order)
        if (wrapped && start !== '' && cid > start) return undefined
        // The next scan of this node goes on after the chunk returned, or after the batch when none was.
        this.cursors.set(source.peerId, cid)
        const info = metadata.getChunk(cid)
        // Unreferenced: garbage, or a write in flight that placed it on purpose.
        if (info == null || info.refcount === 0) continue
        const counted = info.locations.map(p => byPeer.get(p)).filter((n): n is NodeRecord => n != null && n.state !== 'dead' && n.draining !== true)
        if (counted.length < Math.max(info.target, info.hotTarget, base)) continue
        const to = receivers.find(n =>
          !info.locations.includes(n.peerId) &&
          fill(n) + info.size / n.capacityBytes < fill(source) - info.size / source.capacityBytes &&
          memberCount([...counted.filter(h => h !== source), n]) >= memberCount(counted))
        if (to == null) continue
        return { cid, size: info.size, from: source, to, sources: [source, ...counted.filter(h => h !== source)] }
      }
    }
  }

  private async move (m: Move, signal?: AbortSignal): Promise<void> {
    const { metadata, chunks, bucket } = this.components
    const cid = CID.parse(m.cid)
    const { bytes } = await this.components.read(cid, m.sources, signal)
    await bucket.take(bytes.byteLength, signal)
    await chunks.put(peerIdFromString(m.to.peerId), cid, bytes, { signal })
    metadata.addChunkLocation(m.cid, m.to.peerId)
    this.note(m.to.peerId, m.size)
    this.movedChunks++
    this.movedBytes += m.size
    this.components.onMoved?.({ cid: m.cid, bytes: m.size, from: m.from.peerId, to: m.to.peerId })
    try {
      await chunks.delete(peerIdFromString(m.from.peerId), cid, { signal })
    } catch (err: any) {
      // The chunk has one copy more than it needs: harmless, and the next pass may move it again.
      if (signal?.aborted === true) throw err
      this.log('the old copy of %s on %s stays: delete failed - %s', m.cid, m.from.name, err.message)
      return
    }
    metadata.removeChunkLocation(m.cid, m.from.peerId)
    this.note(m.from.peerId, -m.size)
  }

  private note (peerId: string, bytes: number): void {
    const list = this.pending.get(peerId) ?? []
    list.push({ bytes, at: this.now() })
    this.pending.set(peerId, list)
  }

  private pendingBytes (peerId: string): number {
    return (this.pending.get(peerId) ?? []).reduce((s, p) => s + p.bytes, 0)
  }

  /** Forgets the moves a node's report already shows (it reported after them), or that are older than settleMs */
  private settle (nodes: NodeRecord[]): void {
    const now = this.now()
    const lastSeen = new Map(nodes.map(n => [n.peerId, n.lastSeen]))
    for (const [peerId, list] of this.pending) {
      const seen = lastSeen.get(peerId) ?? 0
      // A report within a second of a move may have been measured before it landed.
      const left = list.filter(p => seen < p.at + 1000 && now - p.at < this.settleMs)
      if (left.length === 0) this.pending.delete(peerId)
      else this.pending.set(peerId, left)
    }
  }
}
