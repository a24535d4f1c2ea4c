import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { MetaOp } from '../gen/meta.js'
import { describeChange, sameContent } from '../metadata/content.js'
import { ConcurrentWriteError, META_PROTOCOL_LIMITS } from '../permissions/meta-protocol.js'
import { chunkStream, cidOf } from '../storage/chunking.js'
import { ChunkUnavailableError, ReplicationError } from '../transfer/errors.js'
import { ChunkPipeline, DeclaredSize } from '../transfer/pipeline.js'
import { clampRange, trimToRange } from '../transfer/range.js'
import { chunksAhead, readAhead } from '../transfer/reader.js'
import { sizeChunks } from '../transfer/writer.js'
import { MiB } from '../storage/chunking.js'
import { fromWireEntry } from './meta-client.js'
import type { MetaClient } from './meta-client.js'
import type { MetaResponse } from '../gen/meta.js'
import type { Entry } from '../metadata/store.js'
import type { ByteRange } from '../transfer/range.js'
import type { ChunkTransport } from '../transfer/types.js'
import type { ComponentLogger, Libp2p, Logger, PeerId } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface RemoteContentComponents {
  meta: MetaClient
  /** Chunk requests; the capabilities the owning coordinator hands out are passed with each */
  chunks: ChunkTransport
  /** For the node addresses the owner sends along (a caller may not know another member's nodes yet) */
  host: Pick<Libp2p, 'peerStore'>
  logger: ComponentLogger
}

export interface RemoteContentInit {
  /** Chunks per OPEN_READ page at most (default 1024: a page answer stays far below the 4 MiB frame limit) */
  readPageChunks?: number
  /** Chunks in a read's first page (default 8); each page that continues a read is twice as long (see PageCache) */
  firstReadPageChunks?: number
  /** A page's capabilities are renewed when it is this old (default 4 minutes, within their 5-minute life) */
  pageRefreshMs?: number
  /** Bytes of chunks in flight per write (default 8 MiB) and fetched ahead per read (default 8 MiB) */
  writeInflightBytes?: number
  readAheadBytes?: number
  /** Allocation rounds per chunk before a write gives up on placing it (default 4) */
  placementRounds?: number
}

export interface RemoteWriteOptions {
  size?: number
  mode?: number
  signal?: AbortSignal
  onProgress?: (bytes: number) => void
}

/** A remote file opened for reading: one version, whose chunks are fetched page by page */
export interface RemoteFile {
  coordinator: string
  entry: Entry
  version: number
  size: number
  chunkSize: number
  chunkCount: number
  /** The bytes a ranged read means to fetch: told to the owner with every page, which counts only their chunks */
  range?: ByteRange
}

interface Located {
  cid: CID
  size: number
  nodes: PeerId[]
  capability: Uint8Array
}

interface Page {
  first: number
  fetchedAt: number
  chunks: Located[]
}

/** A page asked for: chunks `first` to `first + limit - 1` (fewer at the end of the file) */
interface PageSpan {
  first: number
  limit: number
  page: Promise<Page>
}

type Placement = MetaResponse['placements'][number]

function peerOf (bytes: Uint8Array): PeerId {
  return peerIdFromMultihash(Digest.decode(bytes))
}

/**
 * Reads and writes file contents in a DataStore another coordinator owns (`protocols/meta.md`, OPEN_READ and the
 * write ops): the owner says where chunks are or go and hands out capabilities for them; this side cuts, hashes,
 * verifies and moves the chunks itself, straight to and from the storage nodes. Memory stays bounded as for a
 * local write or read: a write holds at most its in-flight budget, a read its read-ahead and one page of chunk
 * locations.
 */
export class RemoteContent {
  private readonly components: RemoteContentComponents
  private readonly init: Required<RemoteContentInit>
  private readonly log: Logger

  constructor (components: RemoteContentComponents, init: RemoteContentInit = {}) {
    this.components = components
    this.init = {
      readPageChunks: Math.min(init.readPageChunks ?? 1024, META_PROTOCOL_LIMITS.readPageChunks),
      firstReadPageChunks: Math.max(1, init.firstReadPageChunks ?? 8),
      pageRefreshMs: init.pageRefreshMs ?? 4 * 60_000,
      writeInflightBytes: init.writeInflightBytes ?? 8 * MiB,
      readAheadBytes: init.readAheadBytes ?? 8 * MiB,
      placementRounds: init.placementRounds ?? 4
    }
    this.log = components.logger.forComponent('collective:access:content-client')
  }

  /**
   * Writes `path` at `coordinator`. The file appears only when every chunk is at the DataStore's replica count;
   * any failure aborts the write there and leaves the old version (or nothing) in place.
   */
  async write (coordinator: string, path: string, source: AsyncIterable<Uint8Array>, options: RemoteWriteOptions = {}): Promise<Entry> {
    const { meta } = this.components
    const { signal } = options
    const sized = await sizeChunks(source, options.size)
    const { chunkSize } = sized
    const begun = await meta.call(coordinator, { op: MetaOp.BEGIN_WRITE, path, size: options.size ?? 0, chunkSize, mode: options.mode }, { signal })
    const writeId = begun.writeId
    try {
      const slots = Math.max(2, Math.floor(this.init.writeInflightBytes / chunkSize))
      const pipeline = new ChunkPipeline(slots, signal)
      const size = new DeclaredSize(path, options.size)
      // Half the budget per allocation: the next batch is read and hashed while this one is on the wire.
      const batchChunks = Math.min(64, Math.max(1, Math.floor(slots / 2)))
      let batch: Array<{ index: number, cid: CID, bytes: Uint8Array }> = []
      let index = 0
      const dispatch = (): void => {
        const chunks = batch
        batch = []
        pipeline.run(this.placeBatch(coordinator, writeId, chunks, options), chunks.length)
      }
      try {
        for await (const bytes of chunkStream(sized.source, chunkSize)) {
          if (pipeline.failed) break
          await pipeline.reserve()
          size.add(bytes.length)
          batch.push({ index: index++, cid: await cidOf(bytes), bytes })
          if (batch.length >= batchChunks) dispatch()
        }
        if (batch.length > 0 && !pipeline.failed) dispatch()
        await pipeline.drain()
      } catch (err) {
        await pipeline.abandon()
        throw err
      }
      size.finish()
      const res = await meta.call(coordinator, { op: MetaOp.COMMIT_WRITE, writeId, size: size.total, chunkCount: index }, { signal })
      return fromWireEntry(res.entry!)
    } catch (err) {
      // Best effort: an abandoned write is dropped by the owner after its idle time anyway.
      await meta.call(coordinator, { op: MetaOp.ABORT_WRITE, writeId }, { signal: AbortSignal.timeout(5_000) }).catch(() => {})
      throw err
    }
  }

  /**
   * Announces a run of chunks and puts each on the nodes the owner chose. A chunk whose put failed somewhere is
   * announced again without the failed nodes, up to `placementRounds` times.
   */
  private async placeBatch (coordinator: string, writeId: string, chunks: Array<{ index: number, cid: CID, bytes: Uint8Array }>, options: RemoteWriteOptions): Promise<void> {
    const { signal } = options
    const done = new Map(chunks.map(c => [c.index, new Set<string>()]))
    const failed = new Map(chunks.map(c => [c.index, new Set<string>()]))
    let pending = chunks
    for (let round = 0; pending.length > 0; round++) {
      if (round >= this.init.placementRounds) {
        const c = pending[0]
        throw new ReplicationError(`chunk ${c.index} could not be stored: ${[...failed.get(c.index) ?? []].map(p => p.slice(-8)).join(', ')} refused it`)
      }
      const exclude = [...new Set(pending.flatMap(c => [...failed.get(c.index) ?? []]))]
      // Re-announced one at a time: indexes must be consecutive from first_chunk within one ALLOCATE.
      const groups = round === 0 ? [pending] : pending.map(c => [c])
      const next: typeof pending = []
      await Promise.all(groups.map(async group => {
        const res = await this.components.meta.call(coordinator, {
          op: MetaOp.ALLOCATE,
          writeId,
          firstChunk: group[0].index,
          chunks: group.map(c => ({ cid: c.cid.bytes as Uint8Array<ArrayBuffer>, size: c.bytes.length })),
          exclude: exclude.map(p => peerIdFromString(p).toMultihash().bytes as Uint8Array<ArrayBuffer>)
        }, { signal })
        const capability = res.capabilities[0]?.token
        await Promise.all(group.map(async (c, i) => {
          const placement = res.placements[i]
          this.learnAddresses(placement)
          const targets = placement.nodes.map(peerOf).filter(p => done.get(c.index)?.has(p.toString()) !== true)
          let ok = true
          await Promise.all(targets.map(async peer => {
            try {
              await this.components.chunks.put(peer, c.cid, c.bytes, { signal, capability })
              done.get(c.index)?.add(peer.toString())
            } catch (err: any) {
              if (signal?.aborted === true) throw err
              ok = false
              failed.get(c.index)?.add(peer.toString())
              this.log('chunk %d to %p failed, asking for another node - %s: %s', c.index, peer, err.name, err.message)
            }
          }))
          if (ok) options.onProgress?.(c.bytes.length)
          else next.push(c)
        }))
      }))
      pending = next
    }
  }

  /**
   * Opens the current version of `path` at `coordinator` for reading: the whole file, or only `range` (which the
   * owner then counts toward popularity instead of every chunk of the pages it hands out)
   */
  async open (coordinator: string, path: string, signal?: AbortSignal, range?: ByteRange): Promise<RemoteFile & { pages: PageCache }> {
    const limit = Math.min(this.init.firstReadPageChunks, this.init.readPageChunks)
    const res = await this.components.meta.call(coordinator, { op: MetaOp.OPEN_READ, path, firstChunk: 0, limit, ...rangeFields(range) }, { signal })
    const file: RemoteFile = {
      coordinator,
      entry: fromWireEntry(res.entry!),
      version: res.version,
      size: res.size,
      chunkSize: res.chunkSize,
      chunkCount: res.chunkCount,
      range
    }
    const pages = new PageCache(this, file, { pageChunks: this.init.readPageChunks, firstPageChunks: this.init.firstReadPageChunks, refreshMs: this.init.pageRefreshMs })
    pages.add(this.toPage(file, 0, res), limit)
    return { ...file, pages }
  }

  /** The whole file, in order, with read-ahead */
  read (file: RemoteFile & { pages: PageCache }, signal?: AbortSignal): AsyncGenerator<Uint8ArrayList> {
    return readAhead(file.chunkCount, chunksAhead(file.chunkSize, this.init.readAheadBytes), async i => await this.fetch(file, i, signal))
  }

  /** `length` bytes from `offset` (fewer at the end of the file), fetching only the chunks they span */
  async * readRange (file: RemoteFile & { pages: PageCache }, offset: number, length: number, signal?: AbortSignal): AsyncGenerator<Uint8ArrayList> {
    const range: ByteRange = clampRange(file.size, offset, length)
    if (range.length === 0) return
    // Remote files are cut evenly (COMMIT_WRITE and the local writer both enforce it): chunk i starts at i × chunkSize.
    const first = Math.floor(range.offset / file.chunkSize)
    const last = Math.floor((range.offset + range.length - 1) / file.chunkSize)
    const chunks = readAhead(last - first + 1, chunksAhead(file.chunkSize, this.init.readAheadBytes), async i => await this.fetch(file, first + i, signal))
    yield * trimToRange(chunks, first * file.chunkSize, range)
  }

  /** One page of the file's chunk locations and capabilities: `limit` chunks from `first` (fewer at the end) */
  async page (file: RemoteFile, first: number, limit: number, signal?: AbortSignal): Promise<Page> {
    const res = await this.components.meta.call(file.coordinator, { op: MetaOp.OPEN_READ, path: file.entry.path, firstChunk: first, limit, ...rangeFields(file.range) }, { signal })
    // Another file moved over the name (`mv new old`) may carry the same version number: the entry id tells
    const [opened, found] = [{ id: file.entry.id, version: file.version }, { id: res.entry?.id ?? 0, version: res.version }]
    if (!sameContent(opened, found)) {
      throw new ConcurrentWriteError(`${file.entry.path} changed while it was being read (${describeChange(opened, found)}); read it again`)
    }
    return this.toPage(file, first, res)
  }

  private toPage (file: RemoteFile, first: number, res: MetaResponse): Page {
    const tokens = new Map<number, Uint8Array>()
    for (const cap of res.capabilities) for (const i of cap.indexes) tokens.set(i, cap.token)
    const chunks = res.placements.map(p => {
      this.learnAddresses(p)
      return { cid: CID.decode(p.cid), size: p.size, nodes: p.nodes.map(peerOf), capability: tokens.get(p.index) ?? new Uint8Array(0) }
    })
    return { first, fetchedAt: Date.now(), chunks }
  }

  private async fetch (file: RemoteFile & { pages: PageCache }, index: number, signal?: AbortSignal): Promise<Uint8ArrayList> {
    const chunk = await file.pages.chunk(index, signal)
    const errors: string[] = []
    // in the owner's order: live copies first, shuffled among equals
    for (const node of chunk.nodes) {
      try {
        const bytes = await this.components.chunks.get(node, chunk.cid, { signal, capability: chunk.capability })
        if (bytes.byteLength !== chunk.size) throw new ChunkUnavailableError(`chunk ${index} is ${bytes.byteLength} bytes, the manifest says ${chunk.size}`)
        return bytes
      } catch (err: any) {
        if (signal?.aborted === true) throw err
        errors.push(`${node.toString().slice(-8)}: ${String(err.name)}`)
        this.log('chunk %d of %s from %p failed, trying the next copy - %s: %s', index, file.entry.path, node, err.name, err.message)
      }
    }
    throw new ChunkUnavailableError(`no copy of chunk ${index} of ${file.entry.path} could be read (${errors.length > 0 ? errors.join(', ') : 'no copies known'})`)
  }

  private learnAddresses (placement: Placement): void {
    placement.nodes.forEach((id, i) => {
      const addr = placement.addrs[i]
      if (addr == null || addr.byteLength === 0) return
      try {
        this.components.host.peerStore.merge(peerOf(id), { multiaddrs: [multiaddr(addr)] }).catch(() => {})
      } catch {}
    })
  }
}

/** OPEN_READ's fields for a ranged read; none for a whole-file one */
function rangeFields (range?: ByteRange): { readOffset?: number, readLength?: number } {
  return range == null ? {} : { readOffset: range.offset, readLength: range.length }
}

/**
 * The pages of one open file. The page a chunk is on is fetched when first needed (the read-ahead asks for the
 * next page while the current one is still being read), and fetched again once its capabilities near expiry.
 *
 * A read's first page is short (`firstPageChunks`), and each page that continues the one before is twice as long,
 * up to `pageChunks`; a read that jumps elsewhere starts short again. The owner counts every chunk of a page it
 * hands out as read (popularity adds copies of hot chunks): with one long page per open, a short read through a
 * mount, which opens a read to the end of the file, counted a thousand chunks it never fetched. A long read
 * costs a few more requests (8, 16, … 1024 chunks), and only the last page can hold chunks it does not reach.
 * Only the two newest pages are kept, so a long file costs no more memory than a short one.
 */
export class PageCache {
  private readonly content: RemoteContent
  private readonly file: RemoteFile
  private readonly pageChunks: number
  private readonly firstPageChunks: number
  private readonly refreshMs: number
  private readonly spans: PageSpan[] = []

  constructor (content: RemoteContent, file: RemoteFile, init: { pageChunks: number, firstPageChunks: number, refreshMs: number }) {
    this.content = content
    this.file = file
    this.pageChunks = init.pageChunks
    this.firstPageChunks = Math.min(init.firstPageChunks, init.pageChunks)
    this.refreshMs = init.refreshMs
  }

  /** A page fetched elsewhere (OPEN_READ's first answer), asked for with `limit` */
  add (page: Page, limit: number): void {
    this.keep({ first: page.first, limit, page: Promise.resolve(page) })
  }

  async chunk (index: number, signal?: AbortSignal): Promise<Located> {
    let span = this.covering(index)
    if (span != null && Date.now() - (await span.page).fetchedAt > this.refreshMs) {
      // another caller may have fetched it again meanwhile
      const current = this.covering(index)
      span = current != null && current !== span ? current : this.fetch(span.first, span.limit, signal)
    }
    if (span == null) {
      const before = this.spans.find(s => s.first + s.limit === index)
      span = this.fetch(index, before == null ? this.firstPageChunks : Math.min(this.pageChunks, before.limit * 2), signal)
    }
    const located = (await span.page).chunks[index - span.first]
    if (located == null) throw new ChunkUnavailableError(`chunk ${index} of ${this.file.entry.path} is not in the file's manifest`)
    return located
  }

  /** The pages asked for so far that are still kept, oldest first (for tests) */
  get kept (): Array<{ first: number, limit: number }> {
    return this.spans.map(({ first, limit }) => ({ first, limit }))
  }

  private covering (index: number): PageSpan | undefined {
    return this.spans.find(s => index >= s.first && index < s.first + s.limit)
  }

  private fetch (first: number, limit: number, signal?: AbortSignal): PageSpan {
    const page = this.content.page(this.file, first, limit, signal)
    page.catch(() => {})
    const span = { first, limit, page }
    this.keep(span)
    return span
  }

  private keep (span: PageSpan): void {
    const same = this.spans.findIndex(s => s.first === span.first)
    if (same >= 0) this.spans.splice(same, 1)
    this.spans.push(span)
    while (this.spans.length > 2) this.spans.shift()
  }
}
