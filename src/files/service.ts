import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { MetadataStore } from '../metadata/store.js'
import { moveDestination, normalizePath } from '../metadata/paths.js'
import { NotADirectoryError } from '../metadata/errors.js'
import { KeyedMutex } from '../util/keyed-mutex.js'
import { sleep } from '../util/backoff.js'
import { writeFile, Pins } from '../transfer/writer.js'
import { readFile } from '../transfer/reader.js'
import { readRange } from '../transfer/range.js'
import type { CommitFileOptions, Entry, FileManifest, RemoveResult, SetAttributesOptions } from '../metadata/store.js'
import type { ChunkTransport, NodeDirectory } from '../transfer/types.js'
import type { PlaceChunk, WriteOptions } from '../transfer/writer.js'
import type { ReadComponents } from '../transfer/reader.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface FileServiceInit {
  /** Where the metadata database lives */
  path: string
  /** Copies of every chunk a write must reach before it succeeds (default 2) */
  replication?: number
  /** Bytes of chunks uploaded in parallel per write (default 8 MiB) */
  writeInflightBytes?: number
  /** Bytes of chunks fetched ahead per read (default 8 MiB) */
  readAheadBytes?: number
  /**
   * How long a chunk no file references is kept before deletion (default 1 hour). Chunks of writes in flight are
   * never collected; the grace period is for what a crashed or abandoned write left behind.
   */
  gcGraceMs?: number
  /** How often garbage is collected (default 60 s) */
  gcIntervalMs?: number
}

export interface FileServiceComponents extends Pick<ReadComponents, 'onFailover' | 'onBadReplica' | 'onChunkRead'> {
  chunks: ChunkTransport
  nodes: NodeDirectory
  logger: ComponentLogger
  /** Told how many chunks each garbage collection pass deleted (only when it deleted some) */
  onGarbageCollected?: (chunks: number) => void
  /** Told about each failure of garbage collection: one chunk on one node, or a whole pass */
  onGarbageError?: (error: Error, chunk?: { cid: string, peerId: string }) => void
  /**
   * The placement policy for a path: its DataStore's replica count and strategy. Default: `replication` copies,
   * distinct members first.
   */
  placementFor?: (path: string) => { replication: number, place: PlaceChunk } | undefined
}

export interface FileStat extends Entry {
  chunkSize?: number
  chunks?: number
  replicas?: { min: number, target: number }
}

/**
 * The namespace of one coordinator: directories and files in a persistent metadata store, file contents as
 * replicated chunks on storage nodes. It is the single writer of its metadata, so every change is linearizable.
 */
export class FileService {
  readonly replication: number
  readonly metadata: MetadataStore
  private readonly components: FileServiceComponents
  private readonly init: FileServiceInit
  private readonly locks = new KeyedMutex()
  private readonly pins = new Pins()
  private readonly log: Logger
  private gc?: { controller: AbortController, loop: Promise<void> }

  constructor (components: FileServiceComponents, init: FileServiceInit) {
    this.components = components
    this.init = init
    this.replication = init.replication ?? 2
    this.metadata = new MetadataStore({ path: init.path })
    this.log = components.logger.forComponent('collective:files')
  }

  async start (): Promise<void> {
    this.metadata.start()
    const controller = new AbortController()
    this.gc = { controller, loop: this.gcLoop(controller.signal) }
  }

  async stop (): Promise<void> {
    this.gc?.controller.abort(new Error('stopping'))
    await this.gc?.loop
    this.metadata.stop()
  }

  mkdir (path: string, parents: boolean, owner: string, mode?: number): Entry {
    return this.metadata.mkdir(normalizePath(path), { parents, owner, mode })
  }

  /** chmod and utimens, under the path's lock so they never interleave with a commit of the same file */
  async setAttributes (path: string, attributes: Pick<SetAttributesOptions, 'mode' | 'mtimeMs'>): Promise<Entry> {
    const p = normalizePath(path)
    return await this.locks.run(p, () => this.metadata.setAttributes(p, attributes))
  }

  list (path: string): Entry[] {
    const p = normalizePath(path)
    const entry = this.metadata.stat(p)
    return entry.type === 'file' ? [entry] : this.metadata.list(p)
  }

  stat (path: string): FileStat {
    const p = normalizePath(path)
    const entry = this.metadata.stat(p)
    if (entry.type !== 'file') return entry
    const manifest = this.metadata.getManifest(p)
    const copies = manifest.chunks.map(c => this.metadata.chunkLocations(c.cid).length)
    return {
      ...entry,
      chunkSize: manifest.chunkSize,
      chunks: manifest.chunks.length,
      replicas: { min: copies.length > 0 ? Math.min(...copies) : this.replication, target: this.policyFor(p).replication }
    }
  }

  /** A path ending in / names a directory, as in POSIX: `rm /a/` refuses a file rather than removing it */
  async remove (path: string, recursive: boolean): Promise<RemoveResult> {
    const p = normalizePath(path)
    return await this.locks.run(p, () => {
      if (path.endsWith('/') && this.metadata.stat(p).type !== 'dir') throw new NotADirectoryError(`not a directory: ${path}`)
      return this.metadata.remove(p, { recursive })
    })
  }

  /**
   * Under both paths' locks: `mv /a //a` locks one path, and opposite moves run one after the other. A `dst`
   * ending in / is a directory to move into (moveDestination).
   */
  async rename (src: string, dst: string): Promise<Entry> {
    const s = normalizePath(src)
    const d = moveDestination(s, dst)
    return await this.locks.runAll([s, d], () => this.metadata.rename(s, d))
  }

  async write (path: string, source: WriteOptions['source'], options: { size?: number, owner: string, mode?: number, signal?: AbortSignal, onProgress?: (bytes: number) => void }): Promise<Entry> {
    const p = normalizePath(path)
    const policy = this.policyFor(p)
    return await writeFile({ ...this.components, place: policy.place, metadata: this.metadata, locks: this.locks, pins: this.pins, log: this.log }, {
      path: p,
      source,
      replication: policy.replication,
      inflightBytes: this.init.writeInflightBytes,
      ...options
    })
  }

  /** The copies and placement policy a write to `path` gets: its DataStore's, or this coordinator's default */
  policyFor (path: string): { replication: number, place?: PlaceChunk } {
    const policy = this.components.placementFor?.(normalizePath(path))
    return { replication: policy?.replication ?? this.replication, place: policy?.place }
  }

  /**
   * Keeps garbage collection away from chunks a write elsewhere (a remote caller's) is still placing; returns
   * the release. Pins are counted, so overlapping writes of one chunk each hold their own.
   */
  pin (cid: string): () => void {
    this.pins.add(cid)
    let released = false
    return () => { if (!released) { released = true; this.pins.delete(cid) } }
  }

  /** Makes a file whose chunks were placed elsewhere (by a remote writer) visible, under the file's lock */
  async commit (path: string, options: CommitFileOptions): Promise<Entry> {
    const p = normalizePath(path)
    return await this.locks.run(p, () => this.metadata.commitFile(p, options))
  }

  /** The manifest is read once: the reader sees the version current at the start, never a mix */
  open (path: string): { entry: Entry, manifest: FileManifest } {
    const p = normalizePath(path)
    const entry = this.metadata.stat(p)
    return { entry, manifest: this.metadata.getManifest(p) }
  }

  read (manifest: FileManifest, signal?: AbortSignal): AsyncGenerator<Uint8ArrayList> {
    return readFile({ ...this.components, metadata: this.metadata, log: this.log }, manifest, { readAheadBytes: this.init.readAheadBytes, signal })
  }

  /**
   * Counts reads of chunks that a remote reader fetches from the nodes itself (this coordinator only handed it
   * their locations), as a local read counts the chunks it fetches
   */
  noteReads (cids: string[]): void {
    for (const cid of cids) this.components.onChunkRead?.(cid)
  }

  /** `length` bytes from `offset` of one version (fewer at the end of the file), fetching only the chunks they span */
  readRange (manifest: FileManifest, offset: number, length: number, signal?: AbortSignal): AsyncGenerator<Uint8ArrayList> {
    return readRange({ ...this.components, metadata: this.metadata, log: this.log }, manifest, offset, length, { readAheadBytes: this.init.readAheadBytes, signal })
  }

  /** Deletes chunks no file has referenced for the grace period; returns how many were collected */
  async collectGarbage (signal?: AbortSignal): Promise<number> {
    const grace = this.init.gcGraceMs ?? 3_600_000
    let collected = 0
    for (const candidate of this.metadata.garbageChunks(grace, Date.now(), 1000)) {
      if (signal?.aborted === true) break
      await this.locks.run(`chunk:${candidate.cid}`, async () => {
        // Re-checked under the chunk's lock: a write may have revived it since it was listed.
        const info = this.metadata.getChunk(candidate.cid)
        if (info == null || info.refcount > 0 || this.pins.has(candidate.cid) || (info.zeroSinceMs ?? Infinity) >= Date.now() - grace) return
        const cid = CID.parse(candidate.cid)
        let remaining = 0
        for (const peer of info.locations) {
          try {
            await this.components.chunks.delete(peerIdFromString(peer), cid, { signal })
            this.metadata.removeChunkLocation(candidate.cid, peer)
          } catch (err: any) {
            remaining++
            this.log('could not delete garbage chunk %s on %s, will retry - %s', candidate.cid, peer, err.message)
            this.components.onGarbageError?.(err, { cid: candidate.cid, peerId: peer })
          }
        }
        if (remaining === 0 && this.metadata.forgetChunk(candidate.cid)) collected++
      })
    }
    if (collected > 0) {
      this.log('collected %d unreferenced chunks', collected)
      this.components.onGarbageCollected?.(collected)
    }
    return collected
  }

  private async gcLoop (signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try { await sleep(this.init.gcIntervalMs ?? 60_000, signal) } catch { return }
      await this.collectGarbage(signal).catch(err => {
        this.log.error('garbage collection failed - %e', err)
        this.components.onGarbageError?.(err)
      })
    }
  }
}
