import { sleep } from '../util/backoff.js'
import { TokenBucket } from './token-bucket.js'
import type { ChunkStore } from '../storage/chunk-store.js'
import type { CorruptChunkSource } from '../node-registry/reporter.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

export interface ScrubberInit {
  /** Time from the end of one pass over every stored chunk to the start of the next (default 24 h) */
  intervalMs?: number
  /** Bytes re-hashed per second at most, so scrubbing never starves reads and writes (default 50 MiB/s) */
  bandwidthBytesPerSecond?: number
  /** Corrupt CIDs kept until the coordinator has been told (default 4096); the oldest are dropped beyond it */
  maxPending?: number
}

export interface ScrubberComponents {
  store: Pick<ChunkStore, 'cids' | 'sizeOf' | 'verify' | 'delete'>
  logger: ComponentLogger
  /** Told about every corrupt chunk found (and deleted) */
  onCorrupt?: (cid: string) => void
  /** Told when a pass over every stored chunk ends */
  onPass?: (result: ScrubResult) => void
}

export interface ScrubResult {
  chunks: number
  bytes: number
  corrupt: number
  seconds: number
}

export interface ScrubberStatus {
  passes: number
  /** Corrupt chunks found since start */
  corruptFound: number
  last?: ScrubResult & { endedAt: number }
  pendingReports: number
}

/**
 * A storage node's scrubber: re-hashes every stored chunk against its CID, rate-limited, once per interval. A
 * chunk that no longer matches is deleted — a wrong copy is worse than none, since only its coordinator can tell
 * which replica to trust — and queued for the next heartbeat, which tells the coordinator to replace it.
 */
export class Scrubber implements CorruptChunkSource {
  private readonly components: ScrubberComponents
  private readonly intervalMs: number
  private readonly bucket: TokenBucket
  private readonly maxPending: number
  private readonly log: Logger
  /** Insertion-ordered: the oldest reports go first */
  private readonly corrupt = new Set<string>()
  private controller?: AbortController
  private loop?: Promise<void>
  private passes = 0
  private corruptFound = 0
  private last?: ScrubberStatus['last']

  constructor (components: ScrubberComponents, init: ScrubberInit = {}) {
    this.components = components
    this.intervalMs = init.intervalMs ?? 24 * 3_600_000
    this.bucket = new TokenBucket({ bytesPerSecond: init.bandwidthBytesPerSecond ?? 50 * 1024 * 1024 })
    this.maxPending = init.maxPending ?? 4096
    this.log = components.logger.forComponent('collective:repair:scrubber')
  }

  async start (): Promise<void> {
    this.controller = new AbortController()
    this.loop = this.run(this.controller.signal)
  }

  async stop (): Promise<void> {
    this.controller?.abort(new Error('stopping'))
    await this.loop
  }

  get status (): ScrubberStatus {
    return { passes: this.passes, corruptFound: this.corruptFound, last: this.last, pendingReports: this.corrupt.size }
  }

  pending (limit: number): string[] {
    return [...this.corrupt].slice(0, limit)
  }

  acknowledge (cids: string[]): void {
    for (const cid of cids) this.corrupt.delete(cid)
  }

  /** One pass over every stored chunk; resolves with what it found */
  async scrub (signal?: AbortSignal): Promise<ScrubResult> {
    const { store } = this.components
    const started = Date.now()
    const result: ScrubResult = { chunks: 0, bytes: 0, corrupt: 0, seconds: 0 }
    for await (const cid of store.cids({ signal })) {
      const size = await this.sizeOf(cid, signal)
      // Deleted since the directory was read: nothing left to check.
      if (size == null) continue
      await this.bucket.take(size, signal)
      let intact: boolean
      try {
        intact = await store.verify(cid, { signal })
      } catch (err: any) {
        if (err.name === 'ChunkNotFoundError') continue
        throw err
      }
      result.chunks++
      result.bytes += size
      if (intact) continue
      await store.delete(cid, { signal })
      result.corrupt++
      this.report(cid.toString())
    }
    result.seconds = (Date.now() - started) / 1000
    this.passes++
    this.last = { ...result, endedAt: Date.now() }
    this.log('scrubbed %d chunks (%d bytes) in %ds, %d corrupt', result.chunks, result.bytes, result.seconds, result.corrupt)
    this.components.onPass?.(result)
    return result
  }

  private async sizeOf (cid: CID, signal?: AbortSignal): Promise<number | undefined> {
    try {
      return await this.components.store.sizeOf(cid, { signal })
    } catch (err: any) {
      if (err.name === 'ChunkNotFoundError') return undefined
      throw err
    }
  }

  private report (cid: string): void {
    this.log.error('chunk %s does not match its CID: deleted, the coordinator will be told', cid)
    this.corruptFound++
    this.corrupt.delete(cid)
    this.corrupt.add(cid)
    if (this.corrupt.size > this.maxPending) this.corrupt.delete(this.corrupt.values().next().value as string)
    this.components.onCorrupt?.(cid)
  }

  private async run (signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try { await sleep(this.intervalMs, signal) } catch { return }
      try {
        await this.scrub(signal)
      } catch (err) {
        if (signal.aborted) return
        this.log.error('scrub pass failed, next one in %d ms - %e', this.intervalMs, err)
      }
    }
  }
}
