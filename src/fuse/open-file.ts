import { writeSync } from 'node:fs'
import { open, unlink } from 'node:fs/promises'
import { constants } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { ReadAhead } from './read-ahead.js'
import { ReadStreamClosedError } from './read-stream.js'
import { FilesystemError, SpoolError } from './errors.js'
import { writeFully } from '../util/write-fully.js'
import type { DaemonFs } from './daemon-fs.js'
import type { ContentId } from '../metadata/content.js'
import type { FileHandle } from 'node:fs/promises'

const E = constants.errno

export interface OpenFileInit {
  path: string
  /** Size of the stored version when the file was opened */
  size: number
  /** That version; omitted for a file the mount creates (it has none until its first upload) */
  opened?: ContentId
  spoolDir: string
  /** See CollectiveFilesystemInit */
  readAheadBytes?: number
}

/**
 * One file while any handle has it open. All handles of a path share it, so a read through one handle sees what
 * another wrote. Clean, it reads from the daemon through read streams (ReadAhead). On the first write or truncate
 * its content is copied into a spool file on local disk (never memory), which then serves reads and writes until
 * the spool is uploaded as a new version by flush, fsync or the last release (with fs.putLocal, as `put` does).
 */
export class OpenFile {
  path: string
  size: number
  refs = 0
  /** Written or truncated since the last upload */
  dirty = false
  /** Removed or replaced while open: its content must not come back under the name */
  unlinked = false
  /**
   * Created here and not stored yet: the daemon has no entry for it until the first upload, which saves a round
   * trip per new file. `mode` is what that upload creates it with.
   */
  pending = false
  mode?: number
  mtimeMs = Date.now()
  /**
   * The stored content this file reads: the version opened, then each one uploaded from here. Reads from the daemon
   * name it, so a file replaced under its name by someone else fails them (ESTALE) rather than mixing two contents.
   */
  opened?: ContentId
  readonly readAhead: ReadAhead
  private spool?: { path: string, handle: FileHandle }
  private readonly init: OpenFileInit
  private readonly daemon: DaemonFs
  private queue: Promise<unknown> = Promise.resolve()
  /** Set by close(): a read must then fail, since a stream it opened would never be closed */
  private closed = false

  constructor (daemon: DaemonFs, init: OpenFileInit) {
    this.daemon = daemon
    this.init = init
    this.path = init.path
    this.size = init.size
    this.opened = init.opened
    // A stream reads the opened version, under the name the file has when it starts.
    this.readAhead = new ReadAhead((offset, signal) => this.daemon.stream(this.path, offset, undefined, signal, this.opened), { aheadBytes: init.readAheadBytes })
  }

  get spooled (): boolean {
    return this.spool != null
  }

  /** Runs changes one after another: a write must not land in the middle of an upload or a materialization */
  async serial<T> (fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn)
    this.queue = result.catch(() => {})
    return await result
  }

  async read (buf: Buffer, length: number, offset: number): Promise<number> {
    while (this.spool == null) {
      // close() fails the reads waiting with ReadStreamClosedError too, and leaves no spool to answer them.
      if (this.closed) throw new FilesystemError(E.EBADF, `${this.path} is closed`)
      try {
        return await this.readAhead.read(buf, offset, length)
      } catch (err) {
        // A write or truncate came first and dropped the streams: the spool answers now.
        if (!(err instanceof ReadStreamClosedError)) throw err
      }
    }
    const { bytesRead } = await this.spool.handle.read(buf, 0, length, offset)
    return bytesRead
  }

  /** Call inside serial() */
  async write (buf: Buffer, length: number, offset: number): Promise<number> {
    const spool = await this.materialize(this.size)
    // Synchronous on purpose: a sequential writer waits for each 128 KiB request, and a trip through the libuv
    // threadpool and back costs more than copying the bytes into the page cache. The spool is on local disk, never
    // on the mount, so this cannot wait on the process serving the mount.
    let done = 0
    while (done < length) done += writeSync(spool.fd, buf, done, length - done, offset + done)
    this.size = Math.max(this.size, offset + length)
    this.changed()
    return length
  }

  /** Call inside serial() */
  async truncate (size: number): Promise<void> {
    // Only the bytes that survive are copied in: truncating to 0 (O_TRUNC) fetches nothing.
    const spool = await this.materialize(Math.min(size, this.size))
    await spool.truncate(size)
    this.size = size
    this.changed()
  }

  /**
   * Uploads the spool as the file's new version; resolves once every chunk has its replicas, and throws what the
   * daemon reported otherwise (the data stays dirty, so a later flush tries again). Call inside serial().
   */
  async upload (): Promise<void> {
    if (!this.dirty || this.unlinked || this.spool == null) return
    const { path, handle } = this.spool
    // The identity of the spool as opened here: the daemon refuses a path that names another file where it runs.
    const { dev, ino, size } = await handle.stat()
    if (size !== this.size) throw new SpoolError(`the spool of ${this.path} holds ${size} bytes, not the ${this.size} written`)
    const stored = await this.daemon.putLocal(this.path, { path, size, dev, ino }, this.pending ? this.mode : undefined)
    this.opened = { id: stored.id, version: stored.version }
    this.dirty = false
    this.pending = false
  }

  /** Removes the spool; what was not uploaded is gone. Reads waiting, and any later, fail with EBADF */
  async close (): Promise<void> {
    this.closed = true
    const spool = this.spool
    this.spool = undefined
    this.readAhead.invalidate()
    if (spool == null) return
    await spool.handle.close().catch(() => {})
    await unlink(spool.path).catch(() => {})
  }

  private changed (): void {
    this.dirty = true
    this.mtimeMs = Date.now()
    this.readAhead.invalidate()
  }

  /** The spool, created on first use with the first `keep` bytes of the stored version */
  private async materialize (keep: number): Promise<FileHandle> {
    if (this.spool != null) return this.spool.handle
    const path = join(this.init.spoolDir, `${randomBytes(8).toString('hex')}.spool`)
    const handle = await open(path, 'w+', 0o600)
    try {
      let at = 0
      if (keep > 0) {
        for await (const bytes of this.daemon.stream(this.path, 0, keep, undefined, this.opened)) {
          await writeFully(handle, bytes, at)
          at += bytes.length
        }
      }
      this.size = Math.min(this.size, at)
    } catch (err) {
      await handle.close().catch(() => {})
      await unlink(path).catch(() => {})
      throw err
    }
    this.spool = { path, handle }
    return handle
  }
}
