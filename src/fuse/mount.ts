import { execFile } from 'node:child_process'
import { access, readFile, realpath, stat } from 'node:fs/promises'
import { constants as fsConstants } from 'node:fs'
import { createRequire } from 'node:module'
import { constants } from 'node:os'
import { dirname, resolve, sep } from 'node:path'
import { promisify } from 'node:util'
import { CollectiveFilesystem } from './filesystem.js'
import { DaemonFs } from './daemon-fs.js'
import { errnoOf } from './errno.js'
import { FuseUnavailableError, MountpointError } from './errors.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'

const run = promisify(execFile)
const require = createRequire(import.meta.url)

export interface FuseMountInit {
  /** The directory to mount on; it must exist */
  mountpoint: string
  /** The daemon's control socket */
  controlSocket: string
  /** See CollectiveFilesystemInit */
  spoolDir?: string
  readAheadBytes?: number
  /**
   * Largest write request the kernel sends (default 128 KiB, the most FUSE 2 accepts). Without big_writes the
   * kernel splits every write into 4 KiB requests, which caps writes at a fraction of the chunk transfer rate.
   */
  maxWriteBytes?: number
  /** How long a metadata operation may take before the application gets ETIMEDOUT (default 60 s) */
  opTimeoutMs?: number
}

export interface FuseMountComponents {
  logger: ComponentLogger
}

/** One line of /proc/self/mountinfo that mounts something on `dir`, or undefined */
export async function findMount (dir: string): Promise<{ fstype: string, source: string } | undefined> {
  const table = await readFile('/proc/self/mountinfo', 'utf8')
  const target = resolve(dir)
  for (const line of table.split('\n')) {
    const fields = line.split(' ')
    // Octal escapes (\040 for a space) are how mountinfo spells special characters in paths.
    const mountpoint = (fields[4] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
    if (mountpoint !== target) continue
    const dash = fields.indexOf('-')
    return { fstype: fields[dash + 1] ?? '', source: fields[dash + 2] ?? '' }
  }
  return undefined
}

/** Lazily detaches whatever FUSE mount is on `dir` (the only way out of a mount whose process died) */
export async function detach (dir: string, lazy: boolean): Promise<void> {
  for (const tool of ['fusermount3', 'fusermount']) {
    try {
      await run(tool, [lazy ? '-uz' : '-u', dir])
      return
    } catch (err: any) {
      if (err.code === 'ENOENT') continue
      throw new MountpointError(`${tool} could not unmount ${dir}: ${String(err.stderr ?? err.message).trim()}`)
    }
  }
  throw new FuseUnavailableError('neither fusermount3 nor fusermount is installed (Debian: apt-get install fuse3)')
}

/** True when `dir` answers stat; false when it is a FUSE mount whose process is gone (ENOTCONN) */
async function answers (dir: string, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      stat(dir).then(() => true),
      new Promise<boolean>(resolve => { timer = setTimeout(() => { resolve(true) }, timeoutMs) })
    ])
  } catch (err: any) {
    if (err.code === 'ENOTCONN' || err.code === 'ECONNABORTED') return false
    throw new MountpointError(`cannot use ${dir} as a mount point: ${err.message as string}`)
  } finally {
    clearTimeout(timer)
  }
}

/**
 * The collective mounted with FUSE through fuse-native (libfuse 2.9, multi-threaded loop). The process serving the
 * mount never touches the mount itself: it talks to the daemon over the control socket and keeps dirty data in
 * spool files on local disk.
 */
export class FuseMount {
  readonly mountpoint: string
  private readonly init: FuseMountInit
  private readonly log: Logger
  private readonly filesystem: CollectiveFilesystem
  private mounted = false
  private fuse?: any

  constructor (components: FuseMountComponents, init: FuseMountInit) {
    this.init = init
    this.mountpoint = resolve(init.mountpoint)
    this.log = components.logger.forComponent('collective:fuse:mount')
    this.filesystem = new CollectiveFilesystem({ daemon: new DaemonFs(init.controlSocket), logger: components.logger }, {
      spoolDir: init.spoolDir,
      readAheadBytes: init.readAheadBytes
    })
  }

  /** @throws FuseUnavailableError, MountpointError */
  async start (): Promise<void> {
    try {
      await access('/dev/fuse', fsConstants.R_OK | fsConstants.W_OK)
    } catch (err: any) {
      throw new FuseUnavailableError(`/dev/fuse is not usable (${err.code as string}): FUSE needs the fuse kernel module and access to /dev/fuse`)
    }
    await this.clearStaleMount()
    const s = await stat(this.mountpoint).catch((err: any) => {
      throw new MountpointError(`cannot mount on ${this.mountpoint}: ${err.code === 'ENOENT' ? 'no such directory' : err.message as string}`)
    })
    if (!s.isDirectory()) throw new MountpointError(`cannot mount on ${this.mountpoint}: not a directory`)
    await this.checkSpoolOutside()

    await this.filesystem.start()
    try {
      const Fuse = loadBinding()
      const fuse = this.fuse = new (withMountOptions(Fuse, [`big_writes`, `max_write=${this.init.maxWriteBytes ?? 131072}`]))(this.mountpoint, this.operations(), {
        fsname: 'collective',
        subtype: 'collective-p2p',
        timeout: this.timeouts()
      })
      await new Promise<void>((resolve, reject) => {
        fuse.mount((err: Error | null) => {
          if (err != null) reject(new FuseUnavailableError(`could not mount ${this.mountpoint}: ${err.message}`)); else resolve()
        })
      })
    } catch (err) {
      // the spool folder is this mount's, and nothing else would remove it before the next mount
      this.fuse = undefined
      await this.filesystem.stop()
      throw err
    }
    this.mounted = true
    this.log('mounted %s', this.mountpoint)
  }

  /**
   * Unmounts, waiting for open files to be closed if possible and detaching lazily otherwise, then stores what
   * open files still hold and removes the spools.
   */
  async stop (): Promise<void> {
    if (this.mounted && await findMount(this.mountpoint) != null) {
      try {
        await detach(this.mountpoint, false)
      } catch (err: any) {
        this.log('%s is busy, detaching lazily - %s', this.mountpoint, err.message)
        await detach(this.mountpoint, true)
      }
    }
    if (this.mounted) releaseLoop(this.fuse)
    this.mounted = false
    await this.filesystem.stop()
    this.log('unmounted %s', this.mountpoint)
  }

  /** False once something else (fusermount -u, umount) took the mount away */
  async isMounted (): Promise<boolean> {
    return this.mounted && await findMount(this.mountpoint) != null
  }

  /**
   * Writes go to the spool synchronously (src/fuse/open-file.ts), which is only safe on local disk: a spool inside
   * the mount would have this process wait on itself.
   */
  private async checkSpoolOutside (): Promise<void> {
    if (this.init.spoolDir == null) return
    // Real paths, read before mounting, so that a symlink cannot hide the mount point.
    const [spool, mountpoint] = await Promise.all([realpath(this.init.spoolDir).catch(() => resolve(this.init.spoolDir as string)), realpath(this.mountpoint)])
    if (spool === mountpoint || spool.startsWith(mountpoint.endsWith('/') ? mountpoint : `${mountpoint}/`)) {
      throw new MountpointError(`the spool folder ${this.init.spoolDir} is inside the mount point ${this.mountpoint}: it must be on local disk`)
    }
  }

  /** A mount whose process died answers ENOTCONN to everything until it is detached */
  private async clearStaleMount (): Promise<void> {
    const existing = await findMount(this.mountpoint)
    if (existing == null) return
    if (await answers(this.mountpoint, 2000)) {
      throw new MountpointError(`${this.mountpoint} is already a mount point (${existing.fstype} from ${existing.source}); unmount it first`)
    }
    this.log('clearing the stale mount on %s left by a process that died', this.mountpoint)
    await detach(this.mountpoint, true)
  }

  private timeouts (): Record<string, number | false> {
    // Operations that may upload or materialize a whole file (a pending new file is stored before it is renamed,
    // chmodded or touched) take as long as the file needs; the daemon's own transfer timeouts bound them.
    // Everything else answers in milliseconds unless the daemon is stuck.
    const unbounded = ['flush', 'fsync', 'release', 'write', 'truncate', 'ftruncate', 'rename', 'chmod', 'utimens', 'chown']
    return { default: this.init.opTimeoutMs ?? 60_000, ...Object.fromEntries(unbounded.map(op => [op, false])) }
  }

  private operations (): Record<string, (...args: any[]) => void> {
    const fs = this.filesystem
    const log = this.log
    // fuse-native wants 0 or a negative errno; anything the filesystem throws becomes a specific errno, never 0.
    const fail = (op: string, path: string, err: any): number => {
      const errno = errnoOf(err)
      if (errno === constants.errno.EIO) log.error('%s %s failed - %s: %s', op, path, err?.remoteName ?? err?.name, err?.message)
      else log('%s %s - %s', op, path, err?.message)
      return -errno
    }
    const done = (op: string, path: string, work: Promise<unknown>, cb: (...r: any[]) => void, ok: (v: any) => any[] = () => [0]): void => {
      work.then(v => { cb(...ok(v)) }, err => { cb(fail(op, path, err)) })
    }
    return {
      getattr: (path: string, cb) => { done('getattr', path, fs.getattr(path), cb, st => [0, st]) },
      readdir: (path: string, cb) => { done('readdir', path, fs.readdir(path), cb, names => [0, names]) },
      statfs: (path: string, cb) => { done('statfs', path, fs.statfs(), cb, s => [0, s]) },
      mkdir: (path: string, mode: number, cb) => { done('mkdir', path, fs.mkdir(path, mode), cb) },
      rmdir: (path: string, cb) => { done('rmdir', path, fs.rmdir(path), cb) },
      unlink: (path: string, cb) => { done('unlink', path, fs.unlink(path), cb) },
      rename: (src: string, dst: string, cb) => { done('rename', src, fs.rename(src, dst), cb) },
      chmod: (path: string, mode: number, cb) => { done('chmod', path, fs.chmod(path, mode), cb) },
      chown: (path: string, uid: number, gid: number, cb) => { done('chown', path, fs.chown(path, uid, gid), cb) },
      // Access times are not kept: only the modification time is stored (none when the caller left it unchanged).
      utimens: (path: string, _atime: number, mtime: number, cb) => { done('utimens', path, fs.utimens(path, mtime), cb) },
      create: (path: string, mode: number, cb) => { done('create', path, fs.create(path, mode), cb, fd => [0, fd]) },
      open: (path: string, _flags: number, cb) => { done('open', path, fs.open(path), cb, fd => [0, fd]) },
      read: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb) => { done('read', path, fs.read(fd, buf, len, pos), cb, n => [n]) },
      write: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb) => { done('write', path, fs.write(fd, buf, len, pos), cb, n => [n]) },
      truncate: (path: string, size: number, cb) => { done('truncate', path, fs.truncate(path, size), cb) },
      ftruncate: (path: string, fd: number, size: number, cb) => { done('ftruncate', path, fs.ftruncate(fd, size), cb) },
      flush: (path: string, fd: number, cb) => { done('flush', path, fs.flush(fd), cb) },
      fsync: (path: string, _datasync: boolean, fd: number, cb) => { done('fsync', path, fs.fsync(fd), cb) },
      release: (path: string, fd: number, cb) => { done('release', path, fs.release(fd), cb) }
    }
  }
}

function loadBinding (): any {
  let addon: string
  try {
    addon = require('node-gyp-build').path(dirname(require.resolve('fuse-native')))
  } catch (err: any) {
    throw new FuseUnavailableError(`the FUSE binding (fuse-native) cannot be loaded: ${err.message as string}`)
  }
  // The prebuilt addon in the package stores the access time as the modification time (patches/fuse-native*):
  // mounting with it would quietly give every file that tar, rsync -t or cp -p writes the wrong time.
  if (addon.includes(`${sep}prebuilds${sep}`)) {
    const project = resolve(dirname(require.resolve('fuse-native')), '..', '..')
    throw new FuseUnavailableError(`fuse-native is its prebuilt addon (${addon}), not the build with our utimens fix; run "npm run build:fuse" in ${project} (needs make, a C compiler and python3)`)
  }
  try {
    return require('fuse-native')
  } catch (err: any) {
    throw new FuseUnavailableError(`the FUSE binding (fuse-native) cannot be loaded: ${err.message as string}`)
  }
}

/**
 * Lets the process exit once unmounted. fuse-native's own unmount always detaches lazily and only then releases its
 * event-loop handle; we detach first (waiting for busy files) and so release the handle ourselves, through the same
 * native call its unmount makes.
 */
function releaseLoop (fuse: any): void {
  const binding = createRequire(require.resolve('fuse-native'))('node-gyp-build')(dirname(require.resolve('fuse-native')))
  binding.fuse_native_unmount(fuse.mnt, fuse._thread)
}

/** fuse-native has no option for big_writes or max_write, so they are appended to the -o list it builds */
function withMountOptions (Fuse: any, extra: string[]): any {
  return class extends Fuse {
    _fuseOptions (): string {
      const options: string = super._fuseOptions()
      return options === '' ? `-o${extra.join(',')}` : `${options},${extra.join(',')}`
    }
  }
}
