import { constants } from 'node:fs'
import { open, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Semaphore } from './semaphore.js'
import { writeFully } from './write-fully.js'
import type { FileHandle } from 'node:fs/promises'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * Direct I/O: file data moves between a few buffers of ours, used over and over, and the disk, without passing
 * through the kernel's page cache.
 *
 * Why: on the virtual machines we run on, memory the guest frees goes back to the host at once (free page
 * reporting), and the first touch of such a page costs about 12 µs, i.e. ~0.33 GB/s. Every page cache page a new
 * file takes is such a page: measured here, writing 500 MB of new file data cost 2.1 s of CPU through the page cache
 * and 0.05 s with O_DIRECT; reading it back cold cost 1.1 s against 0.02 s. In a profile of a put, 46% of all CPU
 * time went to that copy into fresh page cache pages (the nodes writing chunks), and 30% of a get's (the coordinator
 * writing the file). Where touching memory costs nothing special, direct I/O of large aligned blocks should cost
 * about what buffered I/O does (not measured here); either way the data is not left in the page cache.
 *
 * O_DIRECT wants the buffer's address, the length and the file offset aligned to the device's logical block; 4096
 * covers the devices in use. JavaScript cannot align an ArrayBuffer, but a WebAssembly.Memory starts on a page
 * boundary, so the buffers are cut from those. Filesystems that refuse O_DIRECT are detected (`openDirect`,
 * `supportsDirectIO`, `isDirectIORefusal`) and the callers fall back to buffered I/O.
 */
export const DIRECT_IO_ALIGNMENT = 4096

const WASM_PAGE_BYTES = 64 * 1024

/** Rounds up to a multiple of the alignment */
function alignUp (n: number): number {
  return Math.ceil(n / DIRECT_IO_ALIGNMENT) * DIRECT_IO_ALIGNMENT
}

/** Memory that starts on a page boundary: every buffer `alignedMemory` made */
const pageAligned = new WeakSet<ArrayBufferLike>()

/**
 * At least `bytes` of page-aligned memory (rounded up to 64 KiB): a WebAssembly.Memory of its own, whose pages
 * the kernel commits only as they are first written.
 */
export function alignedMemory (bytes: number): Uint8Array {
  const pages = alignedMemoryBytes(bytes) / WASM_PAGE_BYTES
  const buffer = new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer
  pageAligned.add(buffer)
  return new Uint8Array(buffer)
}

/** The bytes `alignedMemory(bytes)` holds: `bytes` rounded up to 64 KiB (a WebAssembly page), at least one page */
export function alignedMemoryBytes (bytes: number): number {
  return Math.max(1, Math.ceil(bytes / WASM_PAGE_BYTES)) * WASM_PAGE_BYTES
}

/** Whether O_DIRECT takes `view` as it is: it starts on an alignment boundary of memory known to be page-aligned */
export function isDirectIOReady (view: Uint8Array): boolean {
  return view.byteOffset % DIRECT_IO_ALIGNMENT === 0 && pageAligned.has(view.buffer)
}

export interface AlignedBufferPoolInit {
  /** Bytes each buffer holds; rounded up to 64 KiB (a WebAssembly page) */
  bufferBytes: number
  /** Most buffers lent at once; `acquire()` waits beyond that (default 4) */
  maxBuffers?: number
}

/**
 * Page-aligned buffers, lent and taken back. They are allocated on first use and kept: reusing them is the point,
 * as their pages stay mapped. Memory held is at most `maxBuffers` × `bufferBytes`.
 */
export class AlignedBufferPool {
  readonly bufferBytes: number
  private readonly free: Uint8Array[] = []
  private readonly slots: Semaphore

  constructor (init: AlignedBufferPoolInit) {
    this.bufferBytes = alignedMemoryBytes(init.bufferBytes)
    this.slots = new Semaphore(init.maxBuffers ?? 4)
  }

  async acquire (signal?: AbortSignal): Promise<Uint8Array> {
    await this.slots.acquire(signal)
    const reused = this.free.pop()
    if (reused != null) return reused
    try {
      return alignedMemory(this.bufferBytes)
    } catch (err) {
      this.slots.release()
      throw err
    }
  }

  release (buffer: Uint8Array): void {
    this.free.push(buffer)
    this.slots.release()
  }

  async with<T> (fn: (buffer: Uint8Array) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const buffer = await this.acquire(signal)
    try {
      return await fn(buffer)
    } finally {
      this.release(buffer)
    }
  }
}

/** Errors by which a filesystem (or an unaligned request) refuses O_DIRECT, rather than failing the I/O itself */
export function isDirectIORefusal (err: unknown): boolean {
  const code = (err as { code?: string })?.code
  return code === 'EINVAL' || code === 'EOPNOTSUPP' || code === 'ENOTSUP'
}

/**
 * Opens `path` with O_DIRECT added to `flags`; undefined when the filesystem does not support it. With O_CREAT the
 * file may have been created before the refusal: callers open it again without O_DIRECT, so they must not use
 * O_EXCL here.
 */
export async function openDirect (path: string, flags: number, mode?: number): Promise<FileHandle | undefined> {
  try {
    return await open(path, flags | constants.O_DIRECT, mode)
  } catch (err) {
    if (isDirectIORefusal(err)) return undefined
    throw err
  }
}

/**
 * Whether files in `dir` take direct I/O from our buffers: writes one block to a scratch file and removes it. A
 * filesystem may accept O_DIRECT at open and refuse the write, or want a larger alignment than ours.
 */
export async function supportsDirectIO (dir: string, pool: AlignedBufferPool): Promise<boolean> {
  // one name per directory, so a probe that a crash left behind is overwritten by the next rather than piling up
  const probe = join(dir, '.direct-io-probe.tmp')
  const handle = await openDirect(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC)
  try {
    if (handle == null) return false
    // A process whose address space is capped may be refused the WebAssembly memory: no direct I/O for it either.
    const buffer = await pool.acquire().catch(() => undefined)
    if (buffer == null) return false
    try {
      buffer.fill(0, 0, DIRECT_IO_ALIGNMENT)
      await handle.write(buffer, 0, DIRECT_IO_ALIGNMENT, 0)
      return true
    } catch (err) {
      if (isDirectIORefusal(err)) return false
      throw err
    } finally {
      pool.release(buffer)
    }
  } finally {
    await handle?.close()
    await unlink(probe).catch(() => {})
  }
}

/** The one buffer a list holds, if it holds exactly one */
function onlyPiece (list: Uint8ArrayList): Uint8Array | undefined {
  let only: Uint8Array | undefined
  for (const piece of list) {
    if (only != null) return undefined
    only = piece
  }
  return only
}

/**
 * Appends to a file opened with O_DIRECT. Bytes are staged in a pooled buffer and written in whole blocks; the
 * last part of a block waits for the next bytes, and `finish()` writes it padded with zeros and cuts the file back
 * to its true length. The handle stays the caller's to close.
 */
export class DirectAppender {
  private readonly handle: FileHandle
  private readonly pool: AlignedBufferPool
  /** File offset up to which whole blocks are written */
  private position = 0
  /** Bytes past `position` not yet written: fewer than one block */
  private tail = new Uint8Array(0)

  constructor (handle: FileHandle, pool: AlignedBufferPool) {
    this.handle = handle
    this.pool = pool
  }

  /** Bytes written to the file so far (whole blocks) */
  get written (): number {
    return this.position
  }

  /** Bytes appended but not written yet: fewer than one block, until `finish()` */
  get pending (): Uint8Array {
    return this.tail
  }

  async append (bytes: Uint8Array | Uint8ArrayList, signal?: AbortSignal): Promise<void> {
    // Bytes that already sit in aligned memory (a chunk received into a lent buffer) go to the disk from where they
    // are, whole blocks of them; only the remainder, less than a block, is kept for the next append.
    const single = bytes instanceof Uint8Array ? bytes : onlyPiece(bytes)
    if (this.tail.byteLength === 0 && single != null && isDirectIOReady(single)) {
      const whole = single.byteLength - single.byteLength % DIRECT_IO_ALIGNMENT
      if (whole > 0) await writeFully(this.handle, single.subarray(0, whole), this.position)
      this.position += whole
      this.tail = single.slice(whole)
      return
    }
    await this.pool.with(async buffer => {
      let staged = 0
      const stage = async (piece: Uint8Array): Promise<void> => {
        while (piece.byteLength > 0) {
          const n = Math.min(piece.byteLength, buffer.byteLength - staged)
          buffer.set(piece.subarray(0, n), staged)
          staged += n
          piece = piece.subarray(n)
          if (staged === buffer.byteLength) {
            await writeFully(this.handle, buffer.subarray(0, staged), this.position)
            this.position += staged
            staged = 0
          }
        }
      }
      await stage(this.tail)
      for (const piece of bytes instanceof Uint8Array ? [bytes] : bytes) await stage(piece)
      const whole = staged - staged % DIRECT_IO_ALIGNMENT
      if (whole > 0) await writeFully(this.handle, buffer.subarray(0, whole), this.position)
      this.position += whole
      this.tail = buffer.slice(whole, staged)
    }, signal)
  }

  /** Writes what is left and sets the file's length to the bytes appended; append() must not follow */
  async finish (): Promise<void> {
    const tail = this.tail
    if (tail.byteLength === 0) return
    await this.pool.with(async buffer => {
      buffer.set(tail)
      buffer.fill(0, tail.byteLength, DIRECT_IO_ALIGNMENT)
      await writeFully(this.handle, buffer.subarray(0, DIRECT_IO_ALIGNMENT), this.position)
    })
    await this.handle.truncate(this.position + tail.byteLength)
    this.position += tail.byteLength
    this.tail = new Uint8Array(0)
  }
}

/**
 * Reads all `size` bytes of a file opened with O_DIRECT into a new buffer, through a pooled aligned one.
 * Returns fewer bytes if the file is shorter.
 */
export async function readDirect (handle: FileHandle, size: number, pool: AlignedBufferPool, signal?: AbortSignal): Promise<Uint8Array> {
  const out = Buffer.allocUnsafeSlow(size)
  let filled = 0
  await pool.with(async buffer => {
    while (filled < size) {
      signal?.throwIfAborted()
      const want = Math.min(buffer.byteLength, alignUp(size - filled))
      const { bytesRead } = await handle.read(buffer, 0, want, filled)
      if (bytesRead === 0) break
      const n = Math.min(bytesRead, size - filled)
      out.set(buffer.subarray(0, n), filled)
      filled += n
      // a short read that is not a whole number of blocks is the end of the file
      if (bytesRead % DIRECT_IO_ALIGNMENT !== 0) break
    }
  }, signal)
  return new Uint8Array(out.buffer, out.byteOffset, filled)
}
