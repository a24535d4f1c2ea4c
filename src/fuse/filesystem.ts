import { rm } from 'node:fs/promises'
import { constants, tmpdir } from 'node:os'
import { OpenFile } from './open-file.js'
import { createSpoolDir, removeAbandonedSpools } from './spool.js'
import { sameContent } from '../metadata/content.js'
import { baseName, parentOf } from '../metadata/paths.js'
import { FilesystemError, SpoolError } from './errors.js'
import type { DaemonFs, RemoteEntry } from './daemon-fs.js'
import type { ContentId } from '../metadata/content.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'

const E = constants.errno
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
/** chown's "leave unchanged" (-1 as an unsigned 32-bit id) */
const UNCHANGED_ID = 0xffffffff
/** Block size reported by statfs: capacities are counted in these */
const BLOCK = 4096

/** An open file with nothing of its own to keep (no writes, not new): it only reads what it opened */
function mayBeReplaced (file: OpenFile): boolean {
  return file.opened != null && !file.dirty && !file.pending && !file.spooled
}

export interface Stat {
  mode: number
  uid: number
  gid: number
  size: number
  nlink: number
  blocks: number
  blksize: number
  mtime: Date
  atime: Date
  ctime: Date
}

export interface Statfs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  namemax: number
}

export interface CollectiveFilesystemInit {
  /**
   * Where spools of files being written live: a folder of this mount's own is made in it, and removed on stop
   * (default: the OS temp dir). Must be on local disk.
   */
  spoolDir?: string
  /** Bytes a read stream holds ahead of its reader (default 8 MiB; an open file has two streams at most) */
  readAheadBytes?: number
  /** Owner reported for every entry (default: this process's uid and gid) */
  uid?: number
  gid?: number
}

export interface CollectiveFilesystemComponents {
  daemon: DaemonFs
  logger: ComponentLogger
}

/**
 * The file operations of the mount, in terms of the daemon's control methods. Independent of the FUSE binding:
 * every method is async and throws errors whose errno `errnoOf` finds; src/fuse/mount.ts adapts them to callbacks.
 */
export class CollectiveFilesystem {
  private readonly daemon: DaemonFs
  private readonly init: CollectiveFilesystemInit
  private readonly log: Logger
  private readonly files = new Map<string, OpenFile>()
  private readonly handles = new Map<number, OpenFile>()
  private nextHandle = 1
  private spoolDir?: string
  private readonly uid: number
  private readonly gid: number

  constructor (components: CollectiveFilesystemComponents, init: CollectiveFilesystemInit = {}) {
    this.daemon = components.daemon
    this.init = init
    this.log = components.logger.forComponent('collective:fuse:fs')
    this.uid = init.uid ?? process.getuid?.() ?? 0
    this.gid = init.gid ?? process.getgid?.() ?? 0
  }

  async start (): Promise<void> {
    // A folder of this mount's own, in the configured spool folder too: one that a killed mount left behind is
    // found by its name and cleared here, by the next mount, and stop() removes this one whole.
    const parent = this.init.spoolDir ?? tmpdir()
    await removeAbandonedSpools(parent, this.log)
    try {
      this.spoolDir = await createSpoolDir(parent)
    } catch (err: any) {
      throw new SpoolError(`cannot make a spool folder in ${parent}: ${err.message as string}`)
    }
  }

  /** Uploads what open files still hold (best effort: nobody is left to tell) and removes the spools */
  async stop (): Promise<void> {
    for (const file of new Set(this.handles.values())) {
      await file.serial(async () => { await file.upload() }).catch(err => { this.log.error('could not store %s at unmount - %e', file.path, err) })
      await file.close()
    }
    this.handles.clear()
    this.files.clear()
    if (this.spoolDir != null) await rm(this.spoolDir, { recursive: true, force: true })
    this.spoolDir = undefined
  }

  async getattr (path: string): Promise<Stat> {
    const open = this.files.get(path)
    if (open?.pending === true) {
      const now = open.mtimeMs
      return this.toStat({ path, type: 'file', mode: open.mode ?? 0o644, size: open.size, mtimeMs: now, ctimeMs: now, owner: '', version: 0, id: 0 })
    }
    const entry = await this.daemon.stat(path)
    // A file with unsent writes is what its spool says, not what the daemon has yet.
    if (open?.spooled === true && entry.type === 'file') return this.toStat({ ...entry, size: open.size, mtimeMs: open.mtimeMs })
    return this.toStat(entry)
  }

  async readdir (path: string): Promise<string[]> {
    const entries = await this.daemon.list(path)
    if (entries.length === 1 && entries[0].path === path && entries[0].type === 'file') throw new FilesystemError(E.ENOTDIR, `not a directory: ${path}`)
    const names = entries.map(e => e.name ?? baseName(e.path))
    const listed = new Set(names)
    for (const file of this.pendingIn(path)) {
      const name = baseName(file.path)
      if (!listed.has(name)) names.push(name)
    }
    return ['.', '..', ...names]
  }

  async statfs (): Promise<Statfs> {
    const c = await this.daemon.capacity()
    // Every byte stored takes `replication` bytes of node capacity, so that is what a user can still write.
    const blocks = (bytes: number): number => Math.min(0xffffffff, Math.floor(bytes / c.replication / BLOCK))
    const used = c.files + c.dirs
    return {
      bsize: BLOCK,
      frsize: BLOCK,
      blocks: blocks(c.capacityBytes),
      bfree: blocks(c.freeBytes),
      bavail: blocks(c.freeBytes),
      // There is no inode table: the count is what exists, and nothing limits how many more there can be.
      files: Math.min(0xffffffff, used + 0x7fffffff),
      ffree: 0x7fffffff,
      favail: 0x7fffffff,
      namemax: 255
    }
  }

  async mkdir (path: string, mode: number): Promise<void> {
    await this.daemon.mkdir(path, mode & 0o7777)
  }

  async rmdir (path: string): Promise<void> {
    const entry = await this.daemon.stat(path)
    if (entry.type !== 'dir') throw new FilesystemError(E.ENOTDIR, `not a directory: ${path}`)
    if (this.pendingIn(path).length > 0) throw new FilesystemError(E.ENOTEMPTY, `directory not empty: ${path}`)
    await this.daemon.remove(path)
  }

  async unlink (path: string): Promise<void> {
    const open = this.files.get(path)
    // An upload in flight would store the file again once it lands: the remove waits for it.
    await this.inQueues(open == null ? [] : [open], async () => {
      // A new file the daemon has not stored yet is only forgotten.
      if (open?.pending !== true) {
        const entry = await this.daemon.stat(path)
        if (entry.type === 'dir') throw new FilesystemError(E.EISDIR, `is a directory: ${path}`)
        await this.daemon.remove(path)
      }
      if (open != null) this.forget(open)
    })
  }

  async rename (src: string, dst: string): Promise<void> {
    // Simplest to give the daemon both names as they will be: a new file is stored before it moves.
    await this.store(src)
    await this.store(dst)
    // An upload names its file as it was when it started: the move waits for those in flight, and holds back later
    // ones until the open files carry their new names.
    const named = [...this.files.values()].filter(f => f.path === dst || f.path === src || f.path.startsWith(src + '/'))
    await this.inQueues(named, async () => {
      try {
        await this.daemon.rename(src, dst)
      } catch (err: any) {
        if (err?.remoteName !== 'AlreadyExistsError') throw err
        await this.renameOntoExisting(src, dst)
      }
      const replaced = this.files.get(dst)
      if (replaced != null) this.forget(replaced)
      // Open files move with their names, so their pending writes land at the new path.
      for (const [path, file] of [...this.files]) {
        if (path !== src && !path.startsWith(src + '/')) continue
        this.files.delete(path)
        file.path = dst + path.slice(src.length)
        this.files.set(file.path, file)
      }
    })
  }

  async chmod (path: string, mode: number): Promise<void> {
    await this.store(path)
    await this.daemon.setAttributes(path, { mode: mode & 0o7777 })
  }

  /**
   * Sets the modification time (access times are not kept). `mtimeMs` past 2^53 is libfuse's UTIME_OMIT as our
   * fuse-native build passes it: the time is left as it is. tar and cp -p set the time on the open file before
   * closing it, so unsent writes go first (uploaded at close, they would stamp their own time over this one), and
   * the open file takes the time too, since it answers getattr while open.
   */
  async utimens (path: string, mtimeMs: number): Promise<void> {
    const open = this.files.get(path)
    if (open != null && (open.pending || open.dirty)) await open.serial(async () => { await open.upload() })
    const mtime = Math.round(mtimeMs)
    if (!Number.isSafeInteger(mtime)) {
      await this.daemon.stat(path)
      return
    }
    await this.daemon.setAttributes(path, { mtimeMs: mtime })
    if (open != null) open.mtimeMs = mtime
  }

  /** Owners are federated names, not uids: only a chown to the ids the mount reports is accepted */
  async chown (path: string, uid: number, gid: number): Promise<void> {
    await this.store(path)
    await this.daemon.stat(path)
    if ((uid !== UNCHANGED_ID && uid !== this.uid) || (gid !== UNCHANGED_ID && gid !== this.gid)) {
      throw new FilesystemError(E.EPERM, `${path}: owners are federated names; uid ${uid} gid ${gid} cannot be stored`)
    }
  }

  async create (path: string, mode: number): Promise<number> {
    const file = await this.acquire(path, 0)
    if (file.refs === 1) {
      // Stored at the first flush (even if nothing is written): until then the mount answers for it alone.
      file.pending = true
      file.mode = mode & 0o7777
      try {
        await file.serial(async () => { await file.truncate(0) })
      } catch (err) {
        // No handle will ever release it: left, it would be listed as an empty file and keep its directory non-empty.
        await this.releaseFile(file)
        throw err
      }
    }
    return this.handleFor(file)
  }

  async open (path: string): Promise<number> {
    return this.handleFor(await this.acquire(path))
  }

  async read (handle: number, buf: Buffer, length: number, offset: number): Promise<number> {
    return await this.file(handle).read(buf, length, offset)
  }

  async write (handle: number, buf: Buffer, length: number, offset: number): Promise<number> {
    const file = this.file(handle)
    return await file.serial(async () => await file.write(buf, length, offset))
  }

  async truncate (path: string, size: number): Promise<void> {
    const open = this.files.get(path)
    if (open != null) {
      await open.serial(async () => { await open.truncate(size) })
      return
    }
    if (size === 0) {
      // Nothing to keep: a new empty version, without fetching anything.
      const entry = await this.daemon.stat(path)
      if (entry.type === 'dir') throw new FilesystemError(E.EISDIR, `is a directory: ${path}`)
      await this.daemon.put(path, undefined, 0)
      return
    }
    const file = await this.acquire(path)
    try {
      await file.serial(async () => {
        await file.truncate(size)
        await file.upload()
      })
    } finally {
      await this.releaseFile(file)
    }
  }

  async ftruncate (handle: number, size: number): Promise<void> {
    const file = this.file(handle)
    await file.serial(async () => { await file.truncate(size) })
  }

  /** close(2) returns this: the data reaches its replicas here or the application hears why not */
  async flush (handle: number): Promise<void> {
    const file = this.file(handle)
    await file.serial(async () => { await file.upload() })
  }

  async fsync (handle: number): Promise<void> {
    await this.flush(handle)
  }

  async release (handle: number): Promise<void> {
    const file = this.file(handle)
    this.handles.delete(handle)
    await this.releaseFile(file)
  }

  /** Stores a pending new file so that the daemon knows it before an operation that names it */
  private async store (path: string): Promise<void> {
    const file = this.files.get(path)
    if (file?.pending === true) await file.serial(async () => { await file.upload() })
  }

  /** Pending new files directly in `dir` */
  private pendingIn (dir: string): OpenFile[] {
    return [...this.files.values()].filter(f => f.pending && parentOf(f.path) === dir)
  }

  /**
   * Runs `fn` in the queues of `files`, so that none of them has an upload in flight meanwhile. The queues are taken
   * in path order: two callers naming the same files never each hold one that the other waits for.
   */
  private async inQueues (files: OpenFile[], fn: () => Promise<void>): Promise<void> {
    const ordered = [...files].sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
    await ordered.reduceRight((inner, file) => async () => { await file.serial(inner) }, fn)()
  }

  private async renameOntoExisting (src: string, dst: string): Promise<void> {
    const [from, to] = await Promise.all([this.daemon.stat(src), this.daemon.stat(dst)])
    if (from.type === 'file' && to.type === 'dir') throw new FilesystemError(E.EISDIR, `cannot replace directory ${dst} with a file`)
    if (from.type === 'dir' && to.type === 'file') throw new FilesystemError(E.ENOTDIR, `cannot replace file ${dst} with a directory`)
    // rename(2) replaces an empty directory; the daemon's rename never replaces one, so remove it first.
    if ((await this.daemon.list(dst)).length > 0) throw new FilesystemError(E.ENOTEMPTY, `directory not empty: ${dst}`)
    await this.daemon.remove(dst)
    await this.daemon.rename(src, dst)
  }

  /** The open file of `path`, opened now or shared with the handles that have it open; `knownSize` for a new file */
  private async acquire (path: string, knownSize?: number): Promise<OpenFile> {
    let file = this.files.get(path)
    if (file == null || mayBeReplaced(file)) {
      let size = knownSize
      let opened: ContentId | undefined
      if (size == null) {
        const entry = await this.daemon.stat(path)
        if (entry.type === 'dir') throw new FilesystemError(E.EISDIR, `is a directory: ${path}`)
        size = entry.size
        opened = { id: entry.id, version: entry.version }
      }
      // Another open of the same path may have won the race while the stat was in flight.
      file = this.files.get(path)
      // A file replaced under its name by someone else stays with the handles that opened it (their reads fail
      // with ESTALE); this open reads the new content.
      if (file?.opened != null && opened != null && mayBeReplaced(file) && !sameContent(file.opened, opened)) {
        this.forget(file)
        file = undefined
      }
      file ??= new OpenFile(this.daemon, { path, size, opened, spoolDir: this.spoolDir as string, readAheadBytes: this.init.readAheadBytes })
      this.files.set(path, file)
    }
    file.refs++
    return file
  }

  private async releaseFile (file: OpenFile): Promise<void> {
    if (--file.refs > 0) return
    try {
      // release(2)'s result reaches no application; a failure here means flush already reported one.
      await file.serial(async () => { await file.upload() })
    } catch (err: any) {
      this.log.error('%s was not stored at release - %s', file.path, err?.message)
    }
    // The file kept its name during the upload, so that an unlink or rename of it waited; an open meanwhile took it.
    if (file.refs > 0) return
    if (this.files.get(file.path) === file) this.files.delete(file.path)
    await file.close()
  }

  private handleFor (file: OpenFile): number {
    const handle = this.nextHandle++
    this.handles.set(handle, file)
    return handle
  }

  private file (handle: number): OpenFile {
    const file = this.handles.get(handle)
    if (file == null) throw new FilesystemError(E.EBADF, `no open file with handle ${handle}`)
    return file
  }

  /** The name now belongs to something else; the open file keeps serving its handles but is never stored */
  private forget (file: OpenFile): void {
    file.unlinked = true
    if (this.files.get(file.path) === file) this.files.delete(file.path)
  }

  private toStat (e: RemoteEntry): Stat {
    const dir = e.type === 'dir'
    return {
      mode: (dir ? S_IFDIR : S_IFREG) | (e.mode & 0o7777),
      uid: this.uid,
      gid: this.gid,
      size: dir ? 0 : e.size,
      nlink: dir ? 2 : 1,
      blocks: Math.ceil((dir ? 0 : e.size) / 512),
      blksize: BLOCK,
      mtime: new Date(e.mtimeMs),
      atime: new Date(e.mtimeMs),
      ctime: new Date(e.ctimeMs)
    }
  }
}
