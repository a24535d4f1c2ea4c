import { peerIdFromString } from '@libp2p/peer-id'
import { chunkSizeFor, chunkStream, cidOf, MiB } from '../storage/chunking.js'
import { pickTargets } from '../placement/capacity.js'
import { BufferPool } from '../util/buffer-pool.js'
import { parentOf } from '../metadata/paths.js'
import { NotFoundError, NotADirectoryError, IsADirectoryError } from '../metadata/errors.js'
import { ReplicationError } from './errors.js'
import { ChunkPipeline, DeclaredSize } from './pipeline.js'
import type { ChunkTransport, NodeDirectory } from './types.js'
import type { MetadataStore, Entry, ManifestChunk } from '../metadata/store.js'
import type { KeyedMutex } from '../util/keyed-mutex.js'
import type { Logger } from '@libp2p/interface'
import type { NodeRecord } from '../node-registry/registry.js'

/**
 * Chooses `count` nodes for a chunk's copies (a DataStore's strategy); `exclude` are the nodes tried or holding it,
 * `holders` the members (domains) already holding a copy. Default: capacity-weighted, distinct members first.
 */
export type PlaceChunk = (nodes: NodeRecord[], count: number, exclude: ReadonlySet<string>, holders: string[]) => NodeRecord[]

export interface WriteComponents {
  chunks: ChunkTransport
  nodes: NodeDirectory
  place?: PlaceChunk
  metadata: MetadataStore
  locks: KeyedMutex
  /** Chunks of writes in flight: the collector leaves them alone however long the write takes */
  pins: Pins
  log: Logger
}

/** A counted set of chunk CIDs */
export class Pins {
  private readonly counts = new Map<string, number>()
  add (cid: string): void { this.counts.set(cid, (this.counts.get(cid) ?? 0) + 1) }
  delete (cid: string): void {
    const n = (this.counts.get(cid) ?? 0) - 1
    if (n > 0) this.counts.set(cid, n)
    else this.counts.delete(cid)
  }

  has (cid: string): boolean { return this.counts.has(cid) }
}

/**
 * A source that cuts itself into chunks: given the chunk size, yields buffers of exactly that many bytes (the
 * last may be shorter). It spares the chunker's copy, e.g. for a local file read chunk by chunk. Needs the size
 * declared up front, which picks the chunk size.
 *
 * `buffer(size)` lends it a buffer to fill and yield: the writer takes it back once the chunk is stored and lends
 * it again, so a file of any length is read into the same few buffers. A source that yields a buffer it did not
 * borrow (or a borrowed one it keeps using) must not borrow at all.
 */
export type ChunkedSource = (chunkSize: number, buffer: (size: number) => Uint8Array) => AsyncIterable<Uint8Array>

export interface WriteOptions {
  path: string
  source: AsyncIterable<Uint8Array> | ChunkedSource
  /** The declared size; picks the chunk size up front and is checked against what arrives */
  size?: number
  owner: string
  mode?: number
  replication: number
  /**
   * Bytes of chunks in flight at once (default 8 MiB: eight 1 MiB chunks, two 4 MiB ones). A budget in bytes
   * rather than chunks keeps a 5 GB file, cut into 4 MiB chunks, as cheap in memory as a 50 MB one.
   */
  inflightBytes?: number
  signal?: AbortSignal
  onProgress?: (bytes: number) => void
}

/**
 * When the size is unknown (stdin), reads up to 1 MiB to tell a small file from a large one; the rest of the
 * source streams on unchanged. At most 1 MiB is held for this.
 */
export async function sizeChunks (source: AsyncIterable<Uint8Array>, size?: number): Promise<{ chunkSize: number, source: AsyncIterable<Uint8Array> }> {
  if (size != null) return { chunkSize: chunkSizeFor(size), source }
  const it = source[Symbol.asyncIterator]()
  const head: Uint8Array[] = []
  let total = 0
  let ended = false
  while (total < MiB) {
    const next = await it.next()
    if (next.done === true) { ended = true; break }
    head.push(next.value)
    total += next.value.length
  }
  const rest: AsyncIterable<Uint8Array> = {
    async * [Symbol.asyncIterator] () {
      yield * head
      head.length = 0
      if (ended) return
      while (true) {
        const next = await it.next()
        if (next.done === true) return
        yield next.value
      }
    }
  }
  return { chunkSize: ended ? chunkSizeFor(total) : MiB, source: rest }
}

/** The source as chunks of the file's chunk size */
async function chunksOf (source: WriteOptions['source'], size?: number): Promise<{ chunkSize: number, chunks: AsyncIterable<Uint8Array>, pool?: BufferPool }> {
  if (typeof source === 'function') {
    if (size == null) throw new TypeError('a source that cuts its own chunks needs the size declared')
    const chunkSize = chunkSizeFor(size)
    const pool = new BufferPool(chunkSize)
    return { chunkSize, chunks: source(chunkSize, n => pool.borrow(n)), pool }
  }
  const sized = await sizeChunks(source, size)
  return { chunkSize: sized.chunkSize, chunks: chunkStream(sized.source, sized.chunkSize) }
}

/**
 * Writes one file: cuts the stream into content-addressed chunks, pushes each to `replication` distinct nodes in
 * parallel (skipping chunks already stored enough times: deduplication), and commits the manifest atomically
 * under the file's lock only when every chunk reached its replication factor. On any failure nothing is
 * committed; chunks already pushed are left unreferenced for garbage collection.
 */
export async function writeFile (components: WriteComponents, options: WriteOptions): Promise<Entry> {
  const { metadata, chunks, nodes, log } = components
  const { path, replication, signal } = options

  // Fail before moving any bytes when the commit is bound to fail.
  const parent = metadata.tryStat(parentOf(path))
  if (parent == null) throw new NotFoundError(`${parentOf(path)}: no such directory`)
  if (parent.type !== 'dir') throw new NotADirectoryError(`${parent.path} is not a directory`)
  if (metadata.tryStat(path)?.type === 'dir') throw new IsADirectoryError(`${path} is a directory`)

  const { chunkSize, chunks: source, pool } = await chunksOf(options.source, options.size)
  const manifest: ManifestChunk[] = []
  const locations = new Map<string, Set<string>>()
  const pipeline = new ChunkPipeline(Math.max(2, Math.floor((options.inflightBytes ?? 8 * MiB) / chunkSize)), signal)
  const size = new DeclaredSize(path, options.size)
  const pinned: string[] = []
  let index = 0

  const place = async (i: number, bytes: Uint8Array): Promise<void> => {
    const cid = await cidOf(bytes)
    const key = cid.toString()
    components.pins.add(key)
    pinned.push(key)
    manifest[i] = { cid: key, size: bytes.length }
    const alive = new Set(nodes().filter(n => n.state !== 'dead').map(n => n.peerId))
    // Only a chunk some file references is safe to deduplicate against: an unreferenced one may be collected.
    const referenced = (metadata.getChunk(key)?.refcount ?? 0) > 0
    const held = new Set(referenced ? metadata.chunkLocations(key).filter(p => alive.has(p)) : [])
    const tried = new Set(held)
    const refusals: string[] = []
    // The collector takes the same lock before deleting an unreferenced chunk, so a push cannot race it.
    await components.locks.run(`chunk:${key}`, async () => {
      while (held.size < replication) {
        const all = nodes()
        const domains = new Map(all.map(n => [n.peerId, n.domain ?? '']))
        const holders = [...held].map(p => domains.get(p) ?? '')
        const targets = components.place != null
          ? components.place(all, replication - held.size, tried, holders)
          : pickTargets(all, replication - held.size, tried, Math.random, holders)
        if (targets.length === 0) {
          const why = refusals.length > 0 ? `; ${refusals.join(', ')}` : ''
          throw new ReplicationError(`chunk ${i} of ${path} reached ${held.size} of ${replication} replicas: not enough storage nodes accepted it (${alive.size} live${why})`)
        }
        await Promise.all(targets.map(async t => {
          tried.add(t.peerId)
          try {
            await chunks.put(peerIdFromString(t.peerId), cid, bytes, { signal })
            held.add(t.peerId)
            // Recorded before the commit so that an abandoned write's chunks are found by garbage collection.
            metadata.addChunkLocation(key, t.peerId, { size: bytes.length })
          } catch (err: any) {
            if (signal?.aborted === true) throw err
            refusals.push(`${t.name.split('@')[0]}: ${String(err.name)}`)
            log('chunk %s to %s failed, trying another node - %s: %s', key, t.name, err.name, err.message)
          }
        }))
      }
    })
    locations.set(key, held)
  }

  try {
    return await upload()
  } finally {
    for (const cid of pinned) components.pins.delete(cid)
  }

  async function upload (): Promise<Entry> {
    try {
      for await (const bytes of source) {
        if (pipeline.failed) break
        await pipeline.reserve()
        size.add(bytes.length)
        // Once every put of these bytes has been answered (a node answers only once it has the whole frame),
        // nothing reads them any more and the buffer is lent again. A put abandoned on a timeout may still have
        // them queued on its stream: reused, they would reach the node under the old CID, which it refuses.
        pipeline.run(place(index++, bytes).then(() => { options.onProgress?.(bytes.length) }), 1, () => { pool?.giveBack(bytes) })
      }
      await pipeline.drain()
    } catch (err) {
      await pipeline.abandon()
      throw err
    }
    size.finish()

    return await components.locks.run(path, () => metadata.commitFile(path, {
      manifest: { chunkSize, chunks: manifest },
      size: size.total,
      owner: options.owner,
      mode: options.mode,
      replication,
      locations: [...locations.entries()].map(([cid, peers]) => ({ cid, peerIds: [...peers] }))
    }))
  }
}
