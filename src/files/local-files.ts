import { randomBytes } from 'node:crypto'
import { open, rename, stat, unlink } from 'node:fs/promises'
import { dirname, isAbsolute } from 'node:path'
import { constants } from 'node:fs'
import { allocate } from '../util/buffer-pool.js'
import { DirectAppender, isDirectIORefusal, openDirect } from '../util/direct-io.js'
import type { AlignedBufferPool } from '../util/direct-io.js'
import { writeFully } from '../util/write-fully.js'
import { DaemonError } from '../control/errors.js'
import type { FileHandle } from 'node:fs/promises'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * Files on the local disk, for the commands that name one (`put LOCALFILE`, `get REMOTE LOCALFILE`). The daemon
 * reads and writes them itself when the CLI runs on its host, so the bytes do not cross the control socket and a
 * second process; the CLI uses the same pieces when it has to stream (a daemon that cannot reach the path).
 * Nothing here imports the daemon, so the CLI can load it cheaply.
 */

/** A local file that cannot be read for upload or written for download */
export class LocalFileError extends Error {
  static name = 'LocalFileError'
  name = 'LocalFileError'
}

/**
 * The daemon cannot use a local path the CLI named: it does not see that file (another mount namespace, another
 * file under the same name) or may not open it (the CLI runs as another user). The CLI then streams the bytes
 * itself, so this is never the last word on a transfer.
 */
export class LocalPathUnavailableError extends Error {
  static name = 'LocalPathUnavailableError'
  name = 'LocalPathUnavailableError'
}

/**
 * True when the daemon answered that it cannot do a local-file transfer (fs.putLocal, fs.getLocal) itself: one too
 * old to know the method, or one that cannot reach the path (another mount namespace, another user, another
 * member's DataStore). The caller then moves the bytes over the control socket.
 */
export function daemonCannotReach (err: unknown): boolean {
  return err instanceof DaemonError && (err.remoteName === 'UnknownMethodError' || err.remoteName === LocalPathUnavailableError.name)
}

/** Device and inode of a file or directory: the CLI sends those it sees so the daemon can check it sees the same */
export interface FileIdentity { dev: number, ino: number }

/** Error codes meaning "this process cannot reach that path", which another process (the CLI) might */
const UNREACHABLE = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'ELOOP', 'EROFS'])

function describe (err: any): string {
  switch (err?.code) {
    case 'ENOENT': return 'no such file or directory'
    case 'ENOTDIR': return 'a component of the path is not a directory'
    case 'EACCES': case 'EPERM': return 'permission denied'
    case 'EROFS': return 'read-only file system'
    case 'ENOSPC': return 'no space left on device'
    case 'EDQUOT': return 'disk quota exceeded'
    default: return String(err?.message ?? err)
  }
}

function sameFile (a: FileIdentity, b: FileIdentity | undefined): boolean {
  return b == null || (a.dev === b.dev && a.ino === b.ino)
}

/** Refuses a relative path: the daemon's working directory is not the CLI's */
export function assertAbsolute (path: string, what: string): void {
  if (!isAbsolute(path)) throw new TypeError(`${what} must be an absolute path, got "${path}"`)
}

/**
 * Opens a regular file for upload. With `expected` (what the caller saw), a different file under that name is
 * LocalPathUnavailableError, as is a path this process cannot reach or may not read.
 *
 * @throws LocalFileError (a directory, not a regular file), LocalPathUnavailableError
 */
export async function openForUpload (path: string, expected?: FileIdentity): Promise<{ handle: FileHandle, size: number, mode: number }> {
  let handle: FileHandle
  try {
    handle = await open(path, 'r')
  } catch (err: any) {
    if (err?.code === 'EISDIR') throw new LocalFileError(`${path} is a directory; put uploads one regular file`)
    if (UNREACHABLE.has(err?.code)) throw new LocalPathUnavailableError(`cannot read ${path}: ${describe(err)}`)
    throw new LocalFileError(`cannot read ${path}: ${describe(err)}`)
  }
  try {
    // What was opened, not whatever the name pointed to a moment earlier.
    const s = await handle.stat()
    if (s.isDirectory()) throw new LocalFileError(`${path} is a directory; put uploads one regular file`)
    if (!s.isFile()) throw new LocalFileError(`${path} is not a regular file`)
    if (!sameFile(s, expected)) throw new LocalPathUnavailableError(`${path} is not the file the caller opened`)
    return { handle, size: s.size, mode: s.mode & 0o777 }
  } catch (err) {
    await handle.close().catch(() => {})
    throw err
  }
}

/**
 * Reads `size` bytes of an open file as chunks of `chunkSize` (the last shorter), each read straight from the file
 * into a buffer of its own, or into one `buffer` lends: nothing is re-cut or copied on the way to the consumer. A
 * file that shrinks or grows while it is read fails the upload rather than storing something that never existed.
 *
 * @throws LocalFileError
 */
export async function * readChunks (handle: FileHandle, size: number, chunkSize: number, what: string, signal?: AbortSignal, buffer: (size: number) => Uint8Array = allocate): AsyncGenerator<Uint8Array> {
  let position = 0
  while (position < size) {
    signal?.throwIfAborted()
    const length = Math.min(chunkSize, size - position)
    const chunk = buffer(length)
    let filled = 0
    while (filled < length) {
      const { bytesRead } = await handle.read(chunk, filled, length - filled, position + filled)
      if (bytesRead === 0) throw new LocalFileError(`${what} changed during the upload: it ended after ${position + filled} of ${size} bytes`)
      filled += bytesRead
    }
    position += length
    yield chunk
  }
  const { bytesRead } = await handle.read(Buffer.alloc(1), 0, 1, size)
  if (bytesRead > 0) throw new LocalFileError(`${what} changed during the upload: it grew beyond the ${size} bytes it had`)
}

export interface PartialFileOptions {
  /** Permission bits of the new file (default 0o666 less this process's umask) */
  mode?: number
  /** The destination's directory as the caller saw it: another directory under that name is LocalPathUnavailableError */
  directory?: FileIdentity
  /**
   * Start flushing to disk in the background after this many bytes (default 32 MiB), so the fsync before the
   * rename finds little left to write instead of the whole file.
   */
  syncEveryBytes?: number
  /**
   * Write the file with direct I/O (O_DIRECT) through these buffers where its filesystem takes it, which spares
   * the CPU the copy through the page cache (see util/direct-io.ts). Absent: buffered writes
   */
  buffers?: AlignedBufferPool
}

/**
 * A download on its way to `dest`: written to `dest.partial-<random>` next to it, flushed and renamed into place by
 * `commit()`, removed by `abort()`. A failed download never leaves a truncated file or clobbers an existing one.
 */
export class PartialFile {
  readonly path: string
  private readonly dest: string
  private readonly handle: FileHandle
  private readonly syncEvery: number
  private unsynced = 0
  private syncing?: Promise<void>
  private syncError?: Error
  private done = false
  /** The same file opened for direct I/O, while it is written that way */
  private direct?: { handle: FileHandle, appender: DirectAppender }

  private constructor (dest: string, path: string, handle: FileHandle, syncEvery: number, direct?: FileHandle, buffers?: AlignedBufferPool) {
    this.dest = dest
    this.path = path
    this.handle = handle
    this.syncEvery = syncEvery
    if (direct != null && buffers != null) this.direct = { handle: direct, appender: new DirectAppender(direct, buffers) }
  }

  /** @throws LocalFileError, LocalPathUnavailableError */
  static async create (dest: string, options: PartialFileOptions = {}): Promise<PartialFile> {
    const dir = dirname(dest)
    if (options.directory != null) {
      let s
      try {
        s = await stat(dir)
      } catch (err: any) {
        throw new LocalPathUnavailableError(`cannot write ${dest}: ${describe(err)}`)
      }
      if (!sameFile(s, options.directory)) throw new LocalPathUnavailableError(`${dir} is not the directory the caller meant`)
    }
    const path = `${dest}.partial-${randomBytes(6).toString('hex')}`
    let handle: FileHandle
    try {
      handle = await open(path, 'wx', options.mode ?? 0o666)
      // the caller's umask decided `mode`; ours must not narrow or widen it
      if (options.mode != null) await handle.chmod(options.mode)
    } catch (err: any) {
      await unlink(path).catch(() => {})
      if (options.directory != null && UNREACHABLE.has(err?.code)) throw new LocalPathUnavailableError(`cannot write ${dest}: ${describe(err)}`)
      throw new LocalFileError(`cannot write ${dest}: ${describe(err)}`)
    }
    // A second handle, without O_CREAT: the file is already made as the caller asked (exclusive, its mode).
    const direct = options.buffers != null ? await openDirect(path, constants.O_WRONLY).catch(() => undefined) : undefined
    return new PartialFile(dest, path, handle, options.syncEveryBytes ?? 32 * 1024 * 1024, direct, options.buffers)
  }

  /** Appends bytes (one buffer, or a chunk in the pieces it arrived in: one writev); resolves once the kernel has them */
  async write (bytes: Uint8Array | Uint8ArrayList): Promise<void> {
    try {
      if (this.direct != null) await this.writeDirect(bytes)
      else await writeFully(this.handle, bytes)
    } catch (err: any) {
      throw new LocalFileError(`cannot write ${this.dest}: ${describe(err)}`)
    }
    this.unsynced += bytes.byteLength
    // Direct writes leave nothing in the page cache for a flush to catch up on.
    if (this.direct == null && this.unsynced >= this.syncEvery && this.syncing == null) {
      this.unsynced = 0
      // not awaited: the disk catches up while the next bytes arrive; one flush at a time
      this.syncing = this.handle.datasync().catch((err: any) => { this.syncError ??= err }).finally(() => { this.syncing = undefined })
    }
  }

  private async writeDirect (bytes: Uint8Array | Uint8ArrayList): Promise<void> {
    try {
      await this.direct?.appender.append(bytes)
    } catch (err) {
      await this.fallBack(err, bytes)
    }
  }

  /**
   * A filesystem can accept O_DIRECT at open and still refuse the writes (or want a coarser alignment). If its first
   * direct write is refused, the file is written buffered from then on: what the appender held back, then `bytes`.
   * Any other failure, or one after direct writes landed, is rethrown.
   */
  private async fallBack (err: unknown, bytes?: Uint8Array | Uint8ArrayList): Promise<void> {
    const direct = this.direct
    if (direct == null || direct.appender.written > 0 || !isDirectIORefusal(err)) throw err
    this.direct = undefined
    await direct.handle.close().catch(() => {})
    // at the handle's own position, still 0, which later writes then carry on from
    if (direct.appender.pending.byteLength > 0) await writeFully(this.handle, direct.appender.pending)
    if (bytes != null && bytes.byteLength > 0) await writeFully(this.handle, bytes)
  }

  /** Flushes the file to disk and renames it into place */
  async commit (): Promise<void> {
    try {
      await this.syncing
      if (this.syncError != null) throw this.syncError
      if (this.direct != null) {
        await this.direct.appender.finish().catch(async err => { await this.fallBack(err) })
        await this.direct?.handle.close()
        this.direct = undefined
      }
      await this.handle.sync()
      this.done = true
      await this.handle.close()
      await rename(this.path, this.dest)
    } catch (err: any) {
      await this.abort()
      throw err instanceof LocalFileError ? err : new LocalFileError(`cannot write ${this.dest}: ${describe(err)}`)
    }
  }

  /** Removes the partial file; harmless after commit or a previous abort */
  async abort (): Promise<void> {
    await this.syncing
    await this.direct?.handle.close().catch(() => {})
    this.direct = undefined
    if (!this.done) {
      this.done = true
      await this.handle.close().catch(() => {})
    }
    await unlink(this.path).catch(() => {})
  }
}
