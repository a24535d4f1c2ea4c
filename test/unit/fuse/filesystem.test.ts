import assert from 'node:assert/strict'
import { describe, it, beforeEach, afterEach } from 'node:test'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { constants, tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { CollectiveFilesystem } from '../../../src/fuse/filesystem.js'
import { DaemonError } from '../../../src/control/errors.js'
import { errnoOf } from '../../../src/fuse/errno.js'
import type { DaemonFs, LocalFile, RemoteEntry } from '../../../src/fuse/daemon-fs.js'
import type { ContentId } from '../../../src/metadata/content.js'

const E = constants.errno

/** The daemon's namespace in memory, with a log of the calls the filesystem made */
class FakeDaemon {
  readonly entries = new Map<string, RemoteEntry & { data: Buffer }>([['/', this.entry('/', 'dir')]])
  readonly calls: string[] = []
  failPuts = false
  private held?: Promise<void>
  private nextId = 1
  private putWaiting?: () => void

  /** Makes puts wait, as an upload in flight, until `resume` is called; `started` resolves once one waits */
  holdPuts (): { started: Promise<void>, resume: () => void } {
    let resume = (): void => {}
    this.held = new Promise<void>(resolve => { resume = () => { this.held = undefined; resolve() } })
    const started = new Promise<void>(resolve => { this.putWaiting = resolve })
    return { started, resume }
  }

  /** A new entry (a new id), as a file created or moved in by another client is */
  entry (path: string, type: 'dir' | 'file', data = Buffer.alloc(0), mode = 0o644): RemoteEntry & { data: Buffer } {
    return { path, type, mode, size: data.length, mtimeMs: 1, ctimeMs: 1, owner: 'alice@home', version: type === 'file' ? 1 : 0, id: this.nextId++, data }
  }

  private get (path: string): RemoteEntry & { data: Buffer } {
    const e = this.entries.get(path)
    if (e == null) throw new DaemonError('NotFoundError', `no such file: ${path}`)
    return e
  }

  async stat (path: string): Promise<RemoteEntry> { this.calls.push(`stat ${path}`); return this.get(path) }
  async list (path: string): Promise<RemoteEntry[]> {
    this.calls.push(`list ${path}`)
    const prefix = path === '/' ? '/' : `${path}/`
    return [...this.entries.values()].filter(e => e.path !== '/' && e.path.startsWith(prefix) && !e.path.slice(prefix.length).includes('/'))
  }

  async mkdir (path: string, mode: number): Promise<RemoteEntry> { this.entries.set(path, this.entry(path, 'dir', undefined, mode)); return this.get(path) }
  async remove (path: string): Promise<void> {
    this.calls.push(`remove ${path}`)
    if ((await this.list(path)).length > 0 && this.get(path).type === 'dir') throw new DaemonError('NotEmptyError', 'not empty')
    this.entries.delete(path)
  }

  async rename (src: string, dst: string): Promise<RemoteEntry> {
    this.calls.push(`rename ${src} ${dst}`)
    const from = this.get(src)
    const to = this.entries.get(dst)
    if (to != null && (to.type === 'dir' || from.type === 'dir')) throw new DaemonError('AlreadyExistsError', `already exists: ${dst}`)
    this.entries.delete(src)
    this.entries.set(dst, { ...from, path: dst })
    return this.get(dst)
  }

  async setAttributes (path: string, a: { mode?: number, mtimeMs?: number }): Promise<RemoteEntry> {
    this.calls.push(`setattr ${path}`)
    Object.assign(this.get(path), a)
    return this.get(path)
  }

  async put (path: string, local: string | undefined, size: number, mode?: number): Promise<RemoteEntry> {
    this.calls.push(`put ${path} ${size}`)
    if (this.held != null) {
      this.putWaiting?.()
      await this.held
    }
    if (this.failPuts) throw new DaemonError('ReplicationError', 'reached 1 of 2 replicas: not enough storage nodes accepted it (1 live)')
    const data = local == null ? Buffer.alloc(0) : (await readFile(local)).subarray(0, size)
    const old = this.entries.get(path)
    // a new version of the same entry, as the daemon's metadata store keeps it
    this.entries.set(path, old == null ? this.entry(path, 'file', data, mode) : { ...old, data, size: data.length, version: old.version + 1 })
    return this.get(path)
  }

  async putLocal (path: string, local: LocalFile, mode?: number): Promise<RemoteEntry> {
    return await this.put(path, local.path, local.size, mode)
  }

  async * stream (path: string, offset: number, length?: number, _signal?: AbortSignal, opened?: ContentId): AsyncGenerator<Buffer> {
    this.calls.push(`read ${path}`)
    const { data, id, version } = this.get(path)
    if (opened != null && (opened.id !== id || opened.version !== version)) throw new DaemonError('FileChangedError', `${path} changed since it was opened`)
    // Small pieces, as a socket delivers them
    for (let at = offset; at < Math.min(data.length, offset + (length ?? data.length)); at += 7) yield Buffer.from(data.subarray(at, Math.min(at + 7, offset + (length ?? data.length))))
  }
}

async function errno (p: Promise<unknown>): Promise<number> {
  try { await p } catch (err) { return errnoOf(err) }
  return 0
}

describe('the mount\'s filesystem operations', () => {
  let daemon: FakeDaemon
  let fs: CollectiveFilesystem

  beforeEach(async () => {
    daemon = new FakeDaemon()
    fs = new CollectiveFilesystem({ daemon: daemon as unknown as DaemonFs, logger: defaultLogger() })
    await fs.start()
  })
  afterEach(async () => { await fs.stop() })

  it('keeps a new file local until its flush, and stores it then with its mode', async () => {
    const h = await fs.create('/new.txt', 0o100600)
    assert.equal(await fs.write(h, Buffer.from('hello'), 5, 0), 5)
    assert.deepEqual(daemon.calls, [], 'nothing reached the daemon yet')
    assert.equal((await fs.getattr('/new.txt')).size, 5)
    assert.ok((await fs.readdir('/')).includes('new.txt'))
    await fs.flush(h)
    assert.equal(daemon.entries.get('/new.txt')?.data.toString(), 'hello')
    assert.equal(daemon.entries.get('/new.txt')?.mode, 0o600)
    await fs.release(h)
  })

  it('sets a time on an open file after its unsent writes, so that closing it does not stamp its own (tar x, cp -p)', async () => {
    const h = await fs.create('/t', 0o100644)
    await fs.write(h, Buffer.from('data'), 4, 0)
    await fs.utimens('/t', Date.UTC(2019, 4, 6))
    assert.deepEqual(daemon.calls, ['put /t 4', 'setattr /t'], 'the writes were stored before the time was set')
    assert.equal((await fs.getattr('/t')).mtime.getTime(), Date.UTC(2019, 4, 6), 'the open file reports the time set')
    await fs.release(h)
    assert.equal(daemon.entries.get('/t')?.mtimeMs, Date.UTC(2019, 4, 6))
    assert.equal(daemon.calls.filter(c => c.startsWith('put')).length, 1, 'nothing was left to store at close')
    // UTIME_OMIT for the modification time (touch -a): nothing changes, but a missing file is still ENOENT
    await fs.utimens('/t', 2 ** 64)
    assert.equal(daemon.entries.get('/t')?.mtimeMs, Date.UTC(2019, 4, 6))
    assert.equal(await errno(fs.utimens('/missing', 2 ** 64)), E.ENOENT)
  })

  it('fails reads of an open file replaced under its name with ESTALE, never mixing two files; a new open reads the new one', async () => {
    // Little read-ahead, so that a read further on opens a new stream to the daemon, as a seek does
    const small = new CollectiveFilesystem({ daemon: daemon as unknown as DaemonFs, logger: defaultLogger() }, { readAheadBytes: 16 })
    await small.start()
    try {
      daemon.entries.set('/f', daemon.entry('/f', 'file', Buffer.alloc(300, 'a')))
      const old = await small.open('/f')
      const buf = Buffer.alloc(10)
      assert.equal(await small.read(old, buf, 10, 0), 10)
      assert.equal(buf.toString(), 'a'.repeat(10))
      // Another client moves a new file over it (an editor's save): the same version number, another entry
      daemon.entries.set('/f', daemon.entry('/f', 'file', Buffer.alloc(300, 'b')))
      assert.equal(await errno(small.read(old, buf, 10, 200)), E.ESTALE)
      const fresh = await small.open('/f')
      assert.equal(await small.read(fresh, buf, 10, 200), 10)
      assert.equal(buf.toString(), 'b'.repeat(10), 'a new open reads the new file')
      assert.equal(await errno(small.read(old, buf, 10, 250)), E.ESTALE, 'the old handle stays stale')
      // A new version written by another client is caught too
      await daemon.put('/f', undefined, 0)
      assert.equal(await errno(small.read(fresh, buf, 10, 100)), E.ESTALE)
      await small.release(old)
      await small.release(fresh)
    } finally {
      await small.stop()
    }
  })

  it('copies an existing file into the spool on the first write and serves reads from it', async () => {
    daemon.entries.set('/f', daemon.entry('/f', 'file', Buffer.from('0123456789')))
    const h = await fs.open('/f')
    const buf = Buffer.alloc(10)
    assert.equal(await fs.read(h, buf, 4, 2), 4)
    assert.equal(buf.subarray(0, 4).toString(), '2345')
    await fs.write(h, Buffer.from('AB'), 2, 12)
    const all = Buffer.alloc(20)
    const n = await fs.read(h, all, 20, 0)
    assert.deepEqual(all.subarray(0, n), Buffer.concat([Buffer.from('0123456789'), Buffer.alloc(2), Buffer.from('AB')]))
    await fs.ftruncate(h, 3)
    await fs.release(h)
    assert.equal(daemon.entries.get('/f')?.data.toString(), '012')
  })

  it('returns a failed upload to flush, keeps the data, and stores it on the next flush', async () => {
    const h = await fs.create('/x', 0o644)
    await fs.write(h, Buffer.from('data'), 4, 0)
    daemon.failPuts = true
    assert.equal(await errno(fs.flush(h)), E.EIO)
    daemon.failPuts = false
    await fs.flush(h)
    assert.equal(daemon.entries.get('/x')?.data.toString(), 'data')
    await fs.release(h)
  })

  it('removes a file whose upload is in flight once the upload lands, so that it does not come back', async () => {
    daemon.entries.set('/old', daemon.entry('/old', 'file', Buffer.from('stored')))
    // A new file the daemon knows only once its upload lands, and a stored one
    const opens: Array<[string, () => Promise<number>]> = [['/new', async () => await fs.create('/new', 0o644)], ['/old', async () => await fs.open('/old')]]
    for (const [path, open] of opens) {
      const h = await open()
      await fs.write(h, Buffer.from('data'), 4, 0)
      const { started, resume } = daemon.holdPuts()
      const flushed = fs.flush(h)
      await started
      const unlinked = fs.unlink(path)
      resume()
      await Promise.all([flushed, unlinked])
      assert.equal(daemon.entries.has(path), false, `${path} stays removed`)
      await fs.release(h)
      assert.equal(daemon.entries.has(path), false, `${path} is not stored at release`)
    }
  })

  it('removes a file whose upload at release is in flight (its flush failed)', async () => {
    const h = await fs.create('/x', 0o644)
    await fs.write(h, Buffer.from('data'), 4, 0)
    daemon.failPuts = true
    assert.equal(await errno(fs.flush(h)), E.EIO)
    daemon.failPuts = false
    const { started, resume } = daemon.holdPuts()
    const released = fs.release(h)
    await started
    const unlinked = fs.unlink('/x')
    resume()
    await Promise.all([released, unlinked])
    assert.equal(daemon.entries.has('/x'), false)
  })

  it('renames a file whose upload is in flight once the upload lands, so that the new bytes move with it', async () => {
    daemon.entries.set('/a', daemon.entry('/a', 'file', Buffer.from('old')))
    const h = await fs.open('/a')
    await fs.write(h, Buffer.from('new'), 3, 0)
    const { started, resume } = daemon.holdPuts()
    const flushed = fs.flush(h)
    await started
    const renamed = fs.rename('/a', '/b')
    resume()
    await Promise.all([flushed, renamed])
    assert.equal(daemon.entries.has('/a'), false, 'the old name stays free')
    assert.equal(daemon.entries.get('/b')?.data.toString(), 'new')
    await fs.release(h)
    assert.equal(daemon.entries.get('/b')?.data.toString(), 'new')
  })

  it('maps renames onto directories to the errno rename(2) gives', async () => {
    await daemon.mkdir('/full', 0o755)
    daemon.entries.set('/full/a', daemon.entry('/full/a', 'file'))
    await daemon.mkdir('/empty', 0o755)
    daemon.entries.set('/file', daemon.entry('/file', 'file'))
    await daemon.mkdir('/dir', 0o755)
    assert.equal(await errno(fs.rename('/file', '/empty')), E.EISDIR)
    assert.equal(await errno(fs.rename('/dir', '/file')), E.ENOTDIR)
    assert.equal(await errno(fs.rename('/dir', '/full')), E.ENOTEMPTY)
    await fs.rename('/dir', '/empty')
    assert.equal(daemon.entries.get('/empty')?.type, 'dir')
    assert.equal(daemon.entries.has('/dir'), false)
  })

  it('refuses unlink of a directory, rmdir of a file or of a directory holding a new file, and foreign owners', async () => {
    await daemon.mkdir('/d', 0o755)
    daemon.entries.set('/f', daemon.entry('/f', 'file'))
    assert.equal(await errno(fs.unlink('/d')), E.EISDIR)
    assert.equal(await errno(fs.rmdir('/f')), E.ENOTDIR)
    const h = await fs.create('/d/new', 0o644)
    assert.equal(await errno(fs.rmdir('/d')), E.ENOTEMPTY)
    await fs.unlink('/d/new')
    await fs.release(h)
    assert.equal(daemon.entries.has('/d/new'), false, 'an unlinked new file is never stored')
    await fs.rmdir('/d')
    assert.equal(await errno(fs.chown('/f', 12345, 0xffffffff)), E.EPERM)
    assert.equal(await errno(fs.getattr('/missing')), E.ENOENT)
  })

  it('leaves no trace of a new file whose spool could not be opened', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'spool-parent-'))
    const broken = new CollectiveFilesystem({ daemon: daemon as unknown as DaemonFs, logger: defaultLogger() }, { spoolDir: parent })
    await broken.start()
    // the spool folder goes away under the mount
    await rm(parent, { recursive: true })
    await daemon.mkdir('/d', 0o755)
    assert.equal(await errno(broken.create('/d/new', 0o644)), E.EIO, 'a local failure other than a full disk is an I/O error')
    assert.equal(await errno(broken.getattr('/d/new')), E.ENOENT)
    assert.deepEqual(await broken.readdir('/d'), ['.', '..'])
    await broken.rmdir('/d')
    await broken.stop()
  })

  it('spools in a folder of its own inside a configured spool folder, clears those of dead mounts, and removes its own on stop', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'spool-parent-'))
    try {
      // a folder left by a mount whose process is gone (pid 2^22 + 1 is above any Linux pid_max), and something not ours
      await mkdir(join(parent, `collective-spool-${2 ** 22 + 1}-abc123`))
      await writeFile(join(parent, 'unrelated.txt'), 'keep me')
      const mounted = new CollectiveFilesystem({ daemon: daemon as unknown as DaemonFs, logger: defaultLogger() }, { spoolDir: parent })
      await mounted.start()
      const during = await readdir(parent)
      assert.equal(during.length, 2, `a folder of its own beside the unrelated file, the dead mount's gone: ${during.join(', ')}`)
      assert.ok(during.includes('unrelated.txt'))
      assert.match(during.find(n => n !== 'unrelated.txt') as string, new RegExp(`^collective-spool-${process.pid}-`))
      await mounted.stop()
      assert.deepEqual(await readdir(parent), ['unrelated.txt'])
    } finally {
      await rm(parent, { recursive: true, force: true })
    }
  })

  it('refuses to start on a spool folder it cannot write in, saying where', async () => {
    const fs2 = new CollectiveFilesystem({ daemon: daemon as unknown as DaemonFs, logger: defaultLogger() }, { spoolDir: '/nonexistent/spools' })
    await assert.rejects(fs2.start(), (err: any) => err.name === 'SpoolError' && err.message.includes('/nonexistent/spools'))
  })

  it('reports real capacity divided by the replication factor', async () => {
    (daemon as any).capacity = async () => ({ capacityBytes: 8 * 4096 * 1000, freeBytes: 4 * 4096 * 1000, replication: 2, files: 3, dirs: 1 })
    const s = await fs.statfs()
    assert.equal(s.bsize, 4096)
    assert.equal(s.blocks, 4000)
    assert.equal(s.bavail, 2000)
  })
})
