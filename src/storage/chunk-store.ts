import { constants } from 'node:fs'
import { mkdir, open, opendir, readFile, rename, stat, statfs, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { logger } from '@libp2p/logger'
import { FsBlockstore } from 'blockstore-fs'
import { NextToLast } from 'blockstore-fs/sharding'
import { base32upper } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { decode as decodeDigest } from 'multiformats/hashes/digest'
import { MAX_CHUNK_SIZE, MiB, assertChunkCid, createChunkHasher, equalBytes, verifyChunk } from './chunking.js'
import {
  ChunkNotFoundError,
  ChunkTooLargeError,
  ChunkVerificationError,
  NotStartedError,
  StoreFullError
} from './errors.js'
import { KeyedMutex } from '../util/keyed-mutex.js'
import { AlignedBufferPool, DirectAppender, openDirect, readDirect, supportsDirectIO } from '../util/direct-io.js'
import { writeFully } from '../util/write-fully.js'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface ChunkStoreInit {
  /** Directory holding the chunks; created (with parents) on start if missing */
  path: string
  /**
   * Most bytes of chunk data this store will hold. Default: follow the filesystem, i.e. what is stored plus the
   * disk's free space minus `reserveBytes`, re-read on every call (so it shrinks if other programs fill the disk)
   */
  capacityBytes?: number
  /** Bytes always left free on the disk, whatever the capacity says. Default: 64 MiB */
  reserveBytes?: number
  /** Largest chunk accepted. Default: MAX_CHUNK_SIZE (4 MiB), the biggest chunk any file is cut into */
  maxChunkBytes?: number
  /**
   * Bytes available to us on the filesystem holding `path`. Default: `fs.statfs` (blocks available to
   * unprivileged users × block size). Replaceable so tests can simulate a nearly full disk.
   */
  diskFree?: (path: string) => Promise<number>
  /**
   * Read and write chunk files with direct I/O (O_DIRECT) where the filesystem takes it (default true). It spares
   * the CPU the copy through the page cache, which costs the most on virtual machines (see util/direct-io.ts).
   */
  directIO?: boolean
  /** Chunk files read or written directly at once; more wait their turn (default 4, each holding a 4 MiB buffer) */
  directIOBuffers?: number
}

export interface ChunkStoreStats {
  /** Configured capacity, or (by default) used + free disk - reserve */
  capacityBytes: number
  /** Sum of the sizes of the stored chunks (logical bytes, not disk blocks) */
  usedBytes: number
  chunkCount: number
  /** Free bytes on the filesystem holding the store */
  freeDiskBytes: number
  /** What a put could still add now: the smaller of capacity left and free disk above the reserve */
  availableBytes: number
}

export interface AbortOptions {
  signal?: AbortSignal
}

export interface PutOptions extends AbortOptions {
  /**
   * Called once the bytes are known to hash to the CID and fit the size limit, before anything is written: the
   * chunk server records the caller as an owner there, so bytes that do not match make nobody an owner
   */
  onVerified?: () => void
}

export const DEFAULT_RESERVE_BYTES = 64 * MiB

async function statfsFree (path: string): Promise<number> {
  const s = await statfs(path)
  return s.bavail * s.bsize
}

function isNotFound (err: unknown): boolean {
  return (err as { name?: string })?.name === 'NotFoundError' || (err as { code?: string })?.code === 'ENOENT'
}

/**
 * A storage node's chunks on disk, in `blockstore-fs`. Every chunk accepted is verified against its CID first,
 * and nothing is written unless it fits under the capacity and above the disk reserve. Usage is counted once
 * at start and then tracked on put/delete, so `stats()` costs one statfs and no directory walk.
 *
 * Operations on the same chunk are serialised (a chunk is written through a temp file named after it, so two
 * concurrent writers of one chunk would trip over each other, and the byte count would double).
 */
export class ChunkStore {
  private readonly log = logger('collective:storage:chunk-store')
  private readonly path: string
  private readonly capacityBytes?: number
  private readonly reserveBytes: number
  private readonly maxChunkBytes: number
  private readonly diskFree: (path: string) => Promise<number>
  private readonly sharding: NextToLast
  private readonly blockstore: FsBlockstore
  /** One write or delete at a time per chunk file */
  private readonly locks = new KeyedMutex()
  private started = false
  private usedBytes = 0
  private chunkCount = 0
  /** Bytes of puts that passed the space check but are not written yet: concurrent puts must not all fit the same gap */
  private pendingBytes = 0
  /** Buffers for direct I/O, unless it is off */
  private readonly buffers?: AlignedBufferPool
  /** The same, once start() found that the filesystem takes direct I/O: chunk files are read and written directly */
  private direct?: AlignedBufferPool

  constructor (init: ChunkStoreInit) {
    this.path = init.path
    this.capacityBytes = init.capacityBytes
    this.reserveBytes = init.reserveBytes ?? DEFAULT_RESERVE_BYTES
    this.maxChunkBytes = init.maxChunkBytes ?? MAX_CHUNK_SIZE
    this.diskFree = init.diskFree ?? statfsFree
    // explicit so walk() can decode file names without relying on the blockstore's defaults staying put
    this.sharding = new NextToLast({ base: base32upper, extension: '.data', prefixLength: 2 })
    this.blockstore = new FsBlockstore(init.path, { shardingStrategy: this.sharding })
    if (init.directIO !== false) this.buffers = new AlignedBufferPool({ bufferBytes: this.maxChunkBytes, maxBuffers: init.directIOBuffers })
  }

  isStarted (): boolean {
    return this.started
  }

  async start (options: AbortOptions = {}): Promise<void> {
    if (this.started) return
    await mkdir(this.path, { recursive: true })
    await this.blockstore.open()

    let used = 0
    let count = 0
    for await (const { file } of this.walk({ ...options, removeTemp: true })) {
      try {
        used += (await stat(file)).size
        count++
      } catch (err) {
        if (!isNotFound(err)) throw err
      }
    }
    this.usedBytes = used
    this.chunkCount = count
    this.pendingBytes = 0
    this.direct = this.buffers != null && await supportsDirectIO(this.path, this.buffers) ? this.buffers : undefined
    this.started = true
    this.log('started at %s: %d chunks, %d bytes, direct I/O %s', this.path, count, used, this.direct != null ? 'on' : 'off')
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    // let in-flight writes finish so the next start() counts what they wrote
    await this.locks.settled()
    await this.blockstore.close()
    this.log('stopped')
  }

  /**
   * Stores a chunk after checking that `bytes` hash to `cid`. Storing a chunk that is already present is a
   * no-op (same CID, same bytes).
   *
   * @throws UnsupportedCidError, ChunkTooLargeError, ChunkVerificationError, StoreFullError
   */
  async put (cid: CID, bytes: Uint8Array | Uint8ArrayList, options: PutOptions = {}): Promise<void> {
    this.assertStarted()
    assertChunkCid(cid)
    const size = bytes.byteLength
    if (size > this.maxChunkBytes) {
      throw new ChunkTooLargeError(`chunk ${cid} is ${size} bytes, more than the ${this.maxChunkBytes} accepted`)
    }
    if (!verifyChunk(cid, bytes)) {
      throw new ChunkVerificationError(`bytes offered for chunk ${cid} do not hash to it`)
    }
    options.signal?.throwIfAborted()
    options.onVerified?.()

    await this.exclusive(cid, async () => {
      this.assertStarted()
      // A file of the right size is this chunk (its name is its hash). One of another size is a write the disk
      // lost part of (a power cut before the kernel flushed it): it is written again rather than kept as stored.
      const present = await this.storedSize(cid)
      if (present === size) return

      const free = await this.diskFree(this.path)
      options.signal?.throwIfAborted()
      if (this.capacityBytes != null && this.usedBytes + this.pendingBytes + size > this.capacityBytes) {
        throw new StoreFullError(`storing ${size} bytes would exceed the capacity of ${this.capacityBytes} bytes (${this.usedBytes + this.pendingBytes} used)`)
      }
      if (free - this.pendingBytes - size < this.reserveBytes) {
        throw new StoreFullError(`storing ${size} bytes would leave less than the reserve of ${this.reserveBytes} bytes free on disk (${free} free)`)
      }

      this.pendingBytes += size
      try {
        await this.writeChunkFile(cid, bytes, options)
        this.usedBytes += size - (present ?? 0)
        if (present == null) this.chunkCount++
      } finally {
        this.pendingBytes -= size
      }
      this.log.trace('stored %c (%d bytes)', cid, size)
    })
  }

  /**
   * Writes a chunk's file as blockstore-fs would (a temp file `.NAME.tmp` beside it, renamed into place, so a
   * crashed process leaves either the whole chunk or a temp file that start() removes), but written directly
   * where the filesystem allows (see util/direct-io.ts), else with one writev of the pieces the chunk arrived in:
   * blockstore-fs takes one buffer, and joining the pieces copied every chunk a node took. A disk that fills up
   * under the write is StoreFullError, like one found full before it.
   *
   * Not fsynced, as blockstore-fs does not: a put is acknowledged once the kernel (written directly: the device)
   * has the bytes, and durability against a power cut comes from the replicas on other nodes. A file the cut left
   * short is rewritten by the next put of its chunk (see put()), and one left with wrong bytes is found by the
   * scrubber.
   */
  private async writeChunkFile (cid: CID, bytes: Uint8Array | Uint8ArrayList, options: AbortOptions): Promise<void> {
    const file = this.fileOf(cid)
    const temp = join(dirname(file), `.${basename(file)}.tmp`)
    try {
      await mkdir(dirname(file), { recursive: true })
      options.signal?.throwIfAborted()
      const buffers = this.direct
      const direct = buffers != null ? await openDirect(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o666) : undefined
      const handle = direct ?? await open(temp, 'w')
      try {
        if (direct != null && buffers != null) {
          const appender = new DirectAppender(direct, buffers)
          await appender.append(bytes, options.signal)
          await appender.finish()
        } else {
          await writeFully(handle, bytes)
        }
      } finally {
        await handle.close()
      }
      await rename(temp, file)
    } catch (err: any) {
      await unlink(temp).catch(() => {})
      if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT') throw new StoreFullError(`the disk filled up while storing chunk ${cid}: ${String(err.message)}`)
      throw err
    }
  }

  /**
   * The chunk's bytes as stored. Not re-verified here: readers verify every chunk against its CID anyway, and
   * a scrubber calls `verify()`.
   *
   * @throws ChunkNotFoundError
   */
  async get (cid: CID, options: AbortOptions = {}): Promise<Uint8Array> {
    const parts: Uint8Array[] = []
    let total = 0
    for await (const part of this.stream(cid, options)) {
      parts.push(part)
      total += part.byteLength
    }
    // a plain Uint8Array view (no copy): callers compare and re-wrap chunks, and Buffer's prototype surprises them
    if (parts.length === 1) return new Uint8Array(parts[0].buffer, parts[0].byteOffset, parts[0].byteLength)
    const out = new Uint8Array(total)
    let offset = 0
    for (const part of parts) {
      out.set(part, offset)
      offset += part.byteLength
    }
    return out
  }

  /**
   * The chunk's bytes as a stream of file reads. Today one read of the whole file (at most one chunk, 4 MiB);
   * callers iterate, so that reading in pieces stays a change of this method alone.
   *
   * @throws ChunkNotFoundError
   */
  async * stream (cid: CID, options: AbortOptions = {}): AsyncGenerator<Uint8Array> {
    this.assertStarted()
    let bytes: Uint8Array
    try {
      // One read of the whole file (a chunk is at most 4 MiB): blockstore-fs reads in 64 KiB pieces, which costs
      // about three times the CPU per MiB served.
      bytes = await this.readChunkFile(this.fileOf(cid), options)
    } catch (err) {
      options.signal?.throwIfAborted()
      if (isNotFound(err)) throw new ChunkNotFoundError(`chunk ${cid} is not stored here`)
      throw err
    }
    yield bytes
  }

  /** A chunk file's bytes: read directly (see util/direct-io.ts) when the store writes directly, else one readFile */
  private async readChunkFile (file: string, options: AbortOptions): Promise<Uint8Array> {
    const buffers = this.direct
    const direct = buffers != null ? await openDirect(file, constants.O_RDONLY) : undefined
    if (direct == null || buffers == null) return await readFile(file, { signal: options.signal })
    try {
      const { size } = await direct.stat()
      return await readDirect(direct, size, buffers, options.signal)
    } finally {
      await direct.close()
    }
  }

  /**
   * Size in bytes of a stored chunk.
   *
   * @throws ChunkNotFoundError
   */
  async sizeOf (cid: CID, options: AbortOptions = {}): Promise<number> {
    this.assertStarted()
    options.signal?.throwIfAborted()
    const size = await this.storedSize(cid)
    if (size == null) throw new ChunkNotFoundError(`chunk ${cid} is not stored here`)
    return size
  }

  async has (cid: CID, options: AbortOptions = {}): Promise<boolean> {
    this.assertStarted()
    options.signal?.throwIfAborted()
    return (await this.storedSize(cid)) != null
  }

  /** The chunk file's size, or undefined when there is none; any other failure (EACCES, EIO) is thrown, not taken for absence */
  private async storedSize (cid: CID): Promise<number | undefined> {
    try {
      return (await stat(this.fileOf(cid))).size
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  /** Removes a chunk; resolves false when it was not stored */
  async delete (cid: CID, options: AbortOptions = {}): Promise<boolean> {
    this.assertStarted()
    return this.exclusive(cid, async () => {
      options.signal?.throwIfAborted()
      const size = await this.storedSize(cid)
      if (size == null) return false
      // No signal past this point: an unlink cut short by an abort may still have happened, and the counts
      // would no longer match the disk.
      await this.blockstore.delete(cid)
      this.usedBytes -= size
      this.chunkCount--
      this.log.trace('deleted %c (%d bytes)', cid, size)
      return true
    })
  }

  /**
   * Re-hashes what is on disk: false when the file no longer matches its CID (bit rot, a truncated write, a
   * meddling operator).
   *
   * @throws ChunkNotFoundError, UnsupportedCidError
   */
  async verify (cid: CID, options: AbortOptions = {}): Promise<boolean> {
    assertChunkCid(cid)
    const hasher = createChunkHasher(cid.multihash.code)
    for await (const part of this.stream(cid, options)) {
      hasher.update(part)
    }
    return equalBytes(hasher.digest(), cid.multihash.digest)
  }

  async stats (): Promise<ChunkStoreStats> {
    this.assertStarted()
    const freeDiskBytes = await this.diskFree(this.path)
    const aboveReserve = Math.max(0, freeDiskBytes - this.reserveBytes - this.pendingBytes)
    const capacityBytes = this.capacityBytes ?? this.usedBytes + this.pendingBytes + aboveReserve
    return {
      capacityBytes,
      usedBytes: this.usedBytes,
      chunkCount: this.chunkCount,
      freeDiskBytes,
      availableBytes: Math.max(0, Math.min(capacityBytes - this.usedBytes - this.pendingBytes, aboveReserve))
    }
  }

  /** Every stored chunk's CID, in no particular order, read from disk as it goes (bounded memory) */
  async * cids (options: AbortOptions = {}): AsyncGenerator<CID> {
    this.assertStarted()
    for await (const { cid } of this.walk(options)) {
      yield cid
    }
  }

  private async * walk (options: AbortOptions & { removeTemp?: boolean }): AsyncGenerator<{ cid: CID, file: string }> {
    const root = this.blockstore.path
    for await (const shard of await opendir(root)) {
      if (!shard.isDirectory()) continue
      const dir = join(root, shard.name)
      let entries
      try {
        entries = await opendir(dir)
      } catch (err) {
        if (isNotFound(err)) continue
        throw err
      }
      for await (const entry of entries) {
        options.signal?.throwIfAborted()
        if (!entry.isFile()) continue
        const file = join(dir, entry.name)
        if (entry.name.startsWith('.') && entry.name.endsWith('.tmp')) {
          // a write interrupted by a crash leaves its temp file; nothing else will ever clean it up
          if (options.removeTemp === true) {
            this.log('removing interrupted write %s', file)
            await unlink(file).catch(() => {})
          }
          continue
        }
        if (!entry.name.endsWith(this.sharding.extension)) continue
        const cid = this.decodeFileName(entry.name)
        if (cid == null) {
          this.log('ignoring foreign file %s', file)
          continue
        }
        yield { cid, file }
      }
    }
  }

  private decodeFileName (name: string): CID | undefined {
    try {
      // the blockstore keys files by multihash only; chunks are always raw, so the codec is ours to restore
      const mh = base32upper.decoder.decode(name.slice(0, -this.sharding.extension.length))
      return CID.createV1(raw.code, decodeDigest(mh))
    } catch {
      return undefined
    }
  }

  private fileOf (cid: CID): string {
    const { dir, file } = this.sharding.encode(cid)
    return join(this.blockstore.path, dir, file)
  }

  private async exclusive<T> (cid: CID, fn: () => Promise<T>): Promise<T> {
    return await this.locks.run(this.sharding.encode(cid).file, fn)
  }


  private assertStarted (): void {
    if (!this.started) throw new NotStartedError('the chunk store is not started')
  }
}
