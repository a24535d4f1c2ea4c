import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { pickTargets } from '../placement/capacity.js'
import { Semaphore } from '../util/semaphore.js'
import { sleep } from '../util/backoff.js'
import { TokenBucket } from './token-bucket.js'
import { NoReadableReplicaError, NoRepairTargetError } from './errors.js'
import { Rebalancer } from './rebalancer.js'
import { livenessRank } from '../transfer/replicas.js'
import type { RebalancerInit, RebalanceStatus } from './rebalancer.js'
import type { HotContent, HotContentStatus } from './hot-content.js'
import type { MetadataStore, UnderReplicatedChunk } from '../metadata/store.js'
import type { ChunkTransport, NodeDirectory } from '../transfer/types.js'
import type { NodeRecord } from '../node-registry/registry.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface RepairerInit {
  /** Copies every chunk should have on live, non-draining nodes (default 2) */
  replication?: number
  /** Time between passes when nothing wakes the repairer earlier (default 30 s) */
  intervalMs?: number
  /**
   * No repair before this long after start (default 30 s): a restarted coordinator does not know its nodes until
   * they report, and must not take their silence for loss.
   */
  startDelayMs?: number
  /** Bytes of new replicas written per second at most, across all concurrent copies (default 20 MiB/s) */
  bandwidthBytesPerSecond?: number
  /** Chunks copied at once (default 4); with 4 MiB chunks that bounds the bytes held to 16 MiB */
  concurrency?: number
  /** Chunks read from the metadata per batch (default 256) */
  batchSize?: number
  /** Moving chunks from the fullest nodes to the emptiest; `false` turns it off (default: on, with its defaults) */
  rebalance?: RebalancerInit | false
  random?: () => number
}

export interface RepairerComponents {
  metadata: MetadataStore
  chunks: ChunkTransport
  /** Every storage node this coordinator may read from or place on; a draining one carries `draining` */
  nodes: NodeDirectory
  logger: ComponentLogger
  /** Popularity: hot chunks get extra copies in each pass, cooled ones give them back (default: none) */
  hot?: HotContent
  /**
   * Told about every new replica written: `repair` toward what the chunk's files ask for, `popularity` an extra
   * copy of a hot chunk
   */
  onRepaired?: (event: { cid: string, bytes: number, from: string, to: string, reason: 'repair' | 'popularity' }) => void
  /** Told about every chunk moved to an emptier node */
  onMoved?: (event: { cid: string, bytes: number, from: string, to: string }) => void
  /** Told about every chunk a pass could not bring back to its replication factor */
  onRepairFailed?: (cid: string, error: Error) => void
  /** Told about every copy deleted from a draining node once it was no longer needed there */
  onDrained?: (event: { cid: string, peerId: string }) => void
}

export interface RepairPass {
  /** Chunks found below their replication factor with a copy to read from */
  underReplicated: number
  repaired: number
  failed: number
  /** Copies deleted from draining nodes */
  drained: number
  /** Extra copies of hot chunks written */
  hotCopies: number
  /** Extra copies of cooled chunks deleted */
  trimmed: number
  /** Chunks moved to emptier nodes */
  moved: number
  bytes: number
  seconds: number
}

export interface DrainProgress {
  peerId: string
  name: string
  state: string
  since?: number
  /** Chunks of this coordinator still recorded on the node */
  chunksLeft: number
  done: boolean
}

export interface RepairStatus {
  replication: number
  bandwidthBytesPerSecond: number
  concurrency: number
  passes: number
  running: boolean
  repairedChunks: number
  repairedBytes: number
  failedChunks: number
  last?: RepairPass & { endedAt: number }
  draining: DrainProgress[]
  popularity?: HotContentStatus
  rebalance?: RebalanceStatus
}

const MAX_BAD_REPLICAS = 4096

/**
 * The coordinator's repairer: keeps every chunk of its own files at the replication factor on live,
 * non-draining nodes. Each pass lists the chunks below it, fewest copies first, copies each from a surviving
 * replica (the transport verifies the bytes against the CID) to nodes picked like a write picks them (distinct
 * members first, capacity-weighted), within a bandwidth budget; then deletes from draining nodes the copies that
 * are no longer needed there. A pass runs on an interval, and at once when woken (a node died, a drain began, a
 * scrubber reported corrupt chunks).
 *
 * A dead node's locations stay recorded (it may come back with its chunks); a chunk it held gets new copies
 * elsewhere, and when it returns the chunk simply has more copies than asked for.
 */
export class Repairer {
  private readonly components: RepairerComponents
  private readonly replication: number
  private readonly intervalMs: number
  private readonly startDelayMs: number
  private readonly bandwidth: number
  private readonly concurrency: number
  private readonly batchSize: number
  private readonly random: () => number
  private readonly bucket: TokenBucket
  private readonly rebalancer?: Rebalancer
  private readonly log: Logger
  private controller?: AbortController
  private loop?: Promise<void>
  private wakeUp?: () => void
  private woken = false
  private running = false
  private passes = 0
  private repairedChunks = 0
  private repairedBytes = 0
  private failedChunks = 0
  private last?: RepairStatus['last']
  /** `cid peerId` of corrupt copies that could not be deleted: never a target for that chunk */
  private readonly badReplicas = new Set<string>()

  constructor (components: RepairerComponents, init: RepairerInit = {}) {
    this.components = components
    this.replication = init.replication ?? 2
    this.intervalMs = init.intervalMs ?? 30_000
    this.startDelayMs = init.startDelayMs ?? 30_000
    this.bandwidth = init.bandwidthBytesPerSecond ?? 20 * 1024 * 1024
    this.concurrency = init.concurrency ?? 4
    this.batchSize = init.batchSize ?? 256
    this.random = init.random ?? Math.random
    this.bucket = new TokenBucket({ bytesPerSecond: this.bandwidth })
    this.log = components.logger.forComponent('collective:repair')
    if (init.rebalance !== false) {
      this.rebalancer = new Rebalancer({
        metadata: components.metadata,
        chunks: components.chunks,
        bucket: this.bucket,
        read: async (cid, sources, signal) => await this.read(cid, sources, signal),
        logger: components.logger,
        onMoved: components.onMoved
      }, { batchSize: this.batchSize, ...init.rebalance })
    }
  }

  async start (): Promise<void> {
    this.controller = new AbortController()
    this.loop = this.run(this.controller.signal)
  }

  async stop (): Promise<void> {
    this.controller?.abort(new Error('stopping'))
    this.wakeUp?.()
    await this.loop
  }

  /** Runs a pass as soon as the current one (if any) ends: something changed that may need repair */
  wake (): void {
    this.woken = true
    this.wakeUp?.()
  }

  /** Hot chunks and their extra copies, when popularity is on */
  popularity (): RepairStatus['popularity'] {
    return this.components.hot?.status(this.replication)
  }

  status (): RepairStatus {
    const { metadata, nodes } = this.components
    return {
      replication: this.replication,
      bandwidthBytesPerSecond: this.bandwidth,
      concurrency: this.concurrency,
      passes: this.passes,
      running: this.running,
      repairedChunks: this.repairedChunks,
      repairedBytes: this.repairedBytes,
      failedChunks: this.failedChunks,
      last: this.last,
      draining: nodes().filter(n => n.draining === true).map(n => {
        const chunksLeft = metadata.isStarted() ? metadata.chunkCountOnPeer(n.peerId) : 0
        return { peerId: n.peerId, name: n.name, state: n.state, chunksLeft, done: chunksLeft === 0 }
      }),
      popularity: this.popularity(),
      rebalance: this.rebalancer?.status()
    }
  }

  /**
   * One pass: marks hot chunks, repairs what is below target (what the files ask for first, then popularity's
   * extra copies), batch by batch, then trims draining nodes and the extra copies of chunks that cooled, and, when
   * nothing failed, moves a few chunks toward emptier nodes. Chunks that fail are left for the next pass.
   */
  async repair (signal?: AbortSignal): Promise<RepairPass> {
    const started = Date.now()
    this.running = true
    const pass: RepairPass = { underReplicated: 0, repaired: 0, failed: 0, drained: 0, hotCopies: 0, trimmed: 0, moved: 0, bytes: 0, seconds: 0 }
    const { hot, nodes } = this.components
    try {
      hot?.mark(nodes(), this.replication)
      await this.restore(pass, signal)
      await this.trimDraining(pass, signal)
      if (hot != null) pass.trimmed = await hot.trim(nodes(), this.replication, signal)
      // Durability first: while something could not be repaired, bytes are not spent on moving healthy chunks.
      if (this.rebalancer != null && pass.failed === 0) {
        const moved = await this.rebalancer.rebalance(nodes(), this.replication, signal)
        pass.moved = moved.moved
        pass.bytes += moved.bytes
      }
    } finally {
      this.running = false
      pass.seconds = (Date.now() - started) / 1000
      this.passes++
      this.last = { ...pass, endedAt: Date.now() }
    }
    if (pass.underReplicated > 0 || pass.drained > 0 || pass.trimmed > 0 || pass.moved > 0) {
      this.log('pass: %d chunks below target, %d repaired (%d hot copies, %d bytes), %d failed, %d drained and %d cooled copies deleted, %d moved in %ds',
        pass.underReplicated, pass.repaired, pass.hotCopies, pass.bytes, pass.failed, pass.drained, pass.trimmed, pass.moved, pass.seconds)
    }
    // A pass that moved chunks may have more to move: go on at once (the budget paces it) rather than after the
    // interval, rechecking for repair between batches.
    if (pass.moved > 0) this.woken = true
    return pass
  }

  private async restore (pass: RepairPass, signal?: AbortSignal): Promise<void> {
    const failed = new Set<string>()
    const slots = new Semaphore(this.concurrency)
    while (signal?.aborted !== true) {
      const nodes = this.components.nodes()
      const counted = nodes.filter(n => n.state !== 'dead' && n.draining !== true)
      const readable = nodes.filter(n => n.state !== 'dead')
      // Chunks that failed this pass come back first in every batch (fewest copies): skip past them.
      const batch = this.components.metadata.underReplicatedChunks(counted.map(n => n.peerId), this.replication, {
        readableFrom: readable.map(n => n.peerId),
        limit: this.batchSize + failed.size
      }).filter(c => !failed.has(c.cid))
      if (batch.length === 0) return
      pass.underReplicated += batch.length
      const tasks = batch.map(async chunk => {
        await slots.acquire(signal)
        try {
          const { bytes, hot } = await this.restoreChunk(chunk, nodes, signal)
          pass.repaired++
          pass.hotCopies += hot
          pass.bytes += bytes
        } catch (err: any) {
          if (signal?.aborted === true) return
          failed.add(chunk.cid)
          if (chunk.copies >= chunk.base) {
            // It has what its files ask for; only popularity's extra copies found no room. Not a repair failure.
            this.log('no extra copy of hot chunk %s - %s: %s', chunk.cid, err.name, err.message)
            return
          }
          pass.failed++
          this.failedChunks++
          this.log('chunk %s not repaired, will retry - %s: %s', chunk.cid, err.name, err.message)
          this.components.onRepairFailed?.(chunk.cid, err)
        } finally {
          slots.release()
        }
      })
      await Promise.all(tasks)
    }
  }

  /**
   * Copies one chunk until it has its target of counted copies (its files' replica count, at least the default,
   * or its hot target); resolves with the bytes written and how many of the copies were popularity's extra ones
   */
  private async restoreChunk (chunk: UnderReplicatedChunk, nodes: NodeRecord[], signal?: AbortSignal): Promise<{ bytes: number, hot: number }> {
    const { chunks, metadata } = this.components
    const byPeer = new Map(nodes.map(n => [n.peerId, n]))
    const sources = chunk.locations
      .map(p => byPeer.get(p))
      .filter((n): n is NodeRecord => n != null && n.state !== 'dead')
      // A draining node is read last: it is about to go, and the others are as good.
      .sort((a, b) => Number(a.draining === true) - Number(b.draining === true) || livenessRank(a.state) - livenessRank(b.state))
    const candidates = nodes.filter(n => n.draining !== true)
    const tried = new Set([...chunk.locations, ...nodes.filter(n => this.badReplicas.has(`${chunk.cid} ${n.peerId}`)).map(n => n.peerId)])
    const holders = sources.filter(n => n.draining !== true).map(n => n.domain ?? '')
    const cid = CID.parse(chunk.cid)
    let copies = chunk.copies
    let bytes: Uint8ArrayList | undefined
    let from = ''
    let written = 0
    let hot = 0
    const target = chunk.target
    while (copies < target) {
      const targets = pickTargets(candidates, target - copies, tried, this.random, holders)
      if (targets.length === 0) {
        throw new NoRepairTargetError(`chunk ${chunk.cid} has ${copies} of ${target} copies and no other live node can take one`)
      }
      if (bytes == null) ({ bytes, from } = await this.read(cid, sources, signal))
      const data = bytes
      await this.bucket.take(data.byteLength * targets.length, signal)
      await Promise.all(targets.map(async t => {
        tried.add(t.peerId)
        try {
          await chunks.put(peerIdFromString(t.peerId), cid, data, { signal })
        } catch (err: any) {
          if (signal?.aborted === true) throw err
          this.log('copy of %s to %s failed, trying another node - %s', chunk.cid, t.name, err.message)
          return
        }
        metadata.addChunkLocation(chunk.cid, t.peerId)
        const reason = copies >= chunk.base ? 'popularity' : 'repair'
        copies++
        written += data.byteLength
        holders.push(t.domain ?? '')
        if (reason === 'repair') {
          this.repairedChunks++
          this.repairedBytes += data.byteLength
        } else {
          hot++
        }
        this.components.onRepaired?.({ cid: chunk.cid, bytes: data.byteLength, from, to: t.peerId, reason })
      }))
    }
    return { bytes: written, hot }
  }

  /** The chunk's bytes from the first replica that serves them intact */
  private async read (cid: CID, sources: NodeRecord[], signal?: AbortSignal): Promise<{ bytes: Uint8ArrayList, from: string }> {
    const errors: string[] = []
    for (const source of sources) {
      try {
        return { bytes: await this.components.chunks.get(peerIdFromString(source.peerId), cid, { signal }), from: source.peerId }
      } catch (err: any) {
        if (signal?.aborted === true) throw err
        errors.push(`${source.name}: ${String(err.name)}`)
        if (err.name === 'ChunkVerificationError') await this.dropCorrupt(cid, source, signal)
      }
    }
    throw new NoReadableReplicaError(`no replica of chunk ${cid} could be read (${errors.length > 0 ? errors.join(', ') : 'none on a live node'})`)
  }

  /**
   * Same rule as reads: a replica that serves wrong bytes is forgotten, and repaired like a lost one. It is deleted
   * first where possible, because a node keeps a chunk it already has: a new copy sent there would change nothing.
   * Where the delete fails, the node is not picked for that chunk again.
   */
  private async dropCorrupt (cid: CID, node: NodeRecord, signal?: AbortSignal): Promise<void> {
    this.log.error('replica of %s on %s is corrupt; dropping it', cid, node.name)
    try {
      await this.components.chunks.delete(peerIdFromString(node.peerId), cid, { signal })
    } catch (err: any) {
      if (signal?.aborted === true) throw err
      this.badReplicas.add(`${cid.toString()} ${node.peerId}`)
      if (this.badReplicas.size > MAX_BAD_REPLICAS) this.badReplicas.delete(this.badReplicas.values().next().value as string)
    }
    this.components.metadata.removeChunkLocation(cid.toString(), node.peerId)
  }

  /**
   * Deletes from each draining node the copies of chunks that have their replication factor elsewhere. A chunk no
   * file references is left alone: it may belong to a write in flight, and garbage collection takes it anyway.
   */
  private async trimDraining (pass: RepairPass, signal?: AbortSignal): Promise<void> {
    const { metadata, chunks, nodes } = this.components
    for (const node of nodes()) {
      if (node.draining !== true || node.state === 'dead') continue
      const counted = new Set(nodes().filter(n => n.state !== 'dead' && n.draining !== true).map(n => n.peerId))
      let after = ''
      while (true) {
        signal?.throwIfAborted()
        const cids = metadata.chunksOnPeer(node.peerId, { after, limit: this.batchSize })
        if (cids.length === 0) break
        after = cids[cids.length - 1]
        for (const cid of cids) {
          const info = metadata.getChunk(cid)
          if (info == null || info.refcount === 0) continue
          if (info.locations.filter(p => counted.has(p)).length < Math.max(info.target, this.replication)) continue
          try {
            await chunks.delete(peerIdFromString(node.peerId), CID.parse(cid), { signal })
          } catch (err: any) {
            if (signal?.aborted === true) throw err
            this.log('could not delete %s from draining node %s, will retry - %s', cid, node.name, err.message)
            continue
          }
          metadata.removeChunkLocation(cid, node.peerId)
          pass.drained++
          this.components.onDrained?.({ cid, peerId: node.peerId })
        }
      }
    }
  }

  private async run (signal: AbortSignal): Promise<void> {
    try { await sleep(this.startDelayMs, signal) } catch { return }
    this.woken = true
    while (!signal.aborted) {
      if (!this.woken) await this.idle()
      if (signal.aborted) return
      this.woken = false
      try {
        await this.repair(signal)
      } catch (err) {
        if (signal.aborted) return
        this.log.error('repair pass failed - %e', err)
      }
    }
  }

  /** Until the interval passes or someone wakes the repairer */
  private async idle (): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(done, this.intervalMs)
      function done (): void { clearTimeout(timer); resolve() }
      this.wakeUp = done
    })
    this.wakeUp = undefined
  }
}
