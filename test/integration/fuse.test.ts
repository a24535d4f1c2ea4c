import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readFile, readdir, rename, rmdir, stat, truncate, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { constants, tmpdir } from 'node:os'
import { promisify } from 'node:util'
import { call } from '../../src/control/client.js'
import { findMount } from '../../src/fuse/mount.js'
import { BIN, Cleanup, TestFederation, cli, startDaemon, waitFor } from '../helpers/daemons.js'
import type { ChildProcess } from 'node:child_process'
import type { FileHandle } from 'node:fs/promises'
import type { RunningDaemon } from '../helpers/daemons.js'

const exec = promisify(execFile)
const MiB = 1024 * 1024
const BIG_BYTES = 300 * 1000 * 1000

const cleanup = new Cleanup()
let work: string
let mnt: string
let coordinatorDir: string
let coordinator: RunningDaemon
const nodeDirs: string[] = []
const nodes: RunningDaemon[] = []
let mountProc: ChildProcess | undefined
let mountOutput = ''

/** A shell tool on the mount; rejects with its stderr on a non-zero exit */
async function sh (cmd: string, args: string[], timeoutMs = 300_000): Promise<string> {
  const { stdout } = await exec(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * MiB })
  return stdout
}

async function sha256File (path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path)) h.update(chunk)
  return h.digest('hex')
}

async function mount (): Promise<void> {
  mountOutput = ''
  const proc = mountProc = cleanup.track(spawn(process.execPath, [BIN, 'mount', mnt, '--home', coordinatorDir], { stdio: ['ignore', 'pipe', 'pipe'] }))
  proc.stdout?.on('data', d => { mountOutput += String(d) })
  proc.stderr?.on('data', d => { mountOutput += String(d) })
  // No FUSE here means this fails, loudly, with the mount command's own explanation.
  await waitFor('the mount', async () => {
    if (proc.exitCode != null) throw new Error(`mount exited with ${proc.exitCode}: ${mountOutput}`)
    return mountOutput.includes('mounted the collective on')
  }, 30_000)
  assert.equal((await findMount(mnt))?.fstype, 'fuse.collective-p2p')
}

async function unmount (): Promise<void> {
  const r = await cli(['unmount', mnt, '--home', coordinatorDir])
  assert.equal(r.code, 0, r.stderr)
  await waitFor('the mount process to exit', async () => mountProc?.exitCode != null, 30_000)
  assert.equal(mountProc?.exitCode, 0, mountOutput)
  assert.equal(await findMount(mnt), undefined)
}

async function startNodes (): Promise<void> {
  for (let i = 0; i < nodeDirs.length; i++) nodes[i] = await startDaemon(cleanup, nodeDirs[i], ['--coordinator', coordinator.status.listen[0]])
  await waitFor('alive nodes', async () => (await call(coordinator.socket, 'nodes')).filter((x: any) => x.state === 'alive').length === nodeDirs.length, 30_000)
}

/** Random bytes from a seeded generator, so a failing run can be replayed */
function prng (seed: number): { int: (n: number) => number, bytes: (n: number) => Buffer } {
  let s = seed >>> 0
  const next = (): number => {
    // xorshift32
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    return s
  }
  return {
    int: (n) => next() % n,
    bytes: (n) => {
      const b = Buffer.alloc(n + 3)
      for (let i = 0; i < n; i += 4) b.writeUInt32LE(next(), i)
      return b.subarray(0, n)
    }
  }
}

async function expectErrno (what: string, fn: () => Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(fn, (err: any) => { assert.equal(err.code, code, `${what}: got ${String(err.code)} (${String(err.message)})`); return true })
}

describe('FUSE mount', () => {
  let tree: string
  let big: string
  let bigSum: string

  before(async () => {
    work = await cleanup.tempDir('collective-fuse-')
    mnt = join(work, 'mnt')
    await mkdir(mnt)
    const fed = await TestFederation.create(cleanup)
    await fed.member('alice', 'home.collective.local')
    coordinatorDir = await fed.component('alice', 'coordinator', 'coordinator', { storage: { replication: 2 }, heartbeatIntervalMs: 1000 })
    coordinator = await startDaemon(cleanup, coordinatorDir)
    for (let i = 0; i < 3; i++) nodeDirs.push(await fed.component('alice', `node-0${i + 1}`, 'node', { storage: { capacity: '4GiB' }, heartbeatIntervalMs: 1000 }))
    await startNodes()
    await mount()

    // 1,000 small files in 10 directories (empty ones included), and a big file streamed to disk.
    tree = join(work, 'tree')
    for (let d = 0; d < 10; d++) {
      await mkdir(join(tree, `d${d}`), { recursive: true })
      await Promise.all(Array.from({ length: 100 }, async (_, f) => { await writeFile(join(tree, `d${d}`, `f${f}.bin`), randomBytes((d * 100 + f) % 7 === 0 ? 0 : 1 + ((d * 7919 + f * 104729) % 8192))) }))
    }
    big = join(work, 'big.bin')
    const fh = await open(big, 'w')
    for (let left = BIG_BYTES; left > 0; left -= 4 * MiB) await fh.write(randomBytes(Math.min(left, 4 * MiB)))
    await fh.close()
    bigSum = await sha256File(big)
  })

  after(async () => {
    if (mountProc?.exitCode == null && mountProc != null) mountProc.kill('SIGTERM')
    await waitFor('the mount process to exit', async () => mountProc?.exitCode != null || mountProc?.signalCode != null, 30_000).catch(() => {})
    // Whatever happened, no mount may outlive the test: a stale one would break every later run on this path.
    if (await findMount(mnt) != null) await exec('fusermount', ['-uz', mnt]).catch(() => {})
    await cleanup.run()
  })

  async function assertTreeAndBig (): Promise<void> {
    await sh('diff', ['-r', tree, join(mnt, 'tree')])
    await sh('cmp', [big, join(mnt, 'big.bin')])
  }

  it('copies in a tree of 1,000 small files and a 300 MB file with cp -r, byte for byte', async () => {
    await sh('cp', ['-r', tree, join(mnt, 'tree')])
    await sh('cp', [big, join(mnt, 'big.bin')])
    await assertTreeAndBig()
    const found = (await sh('find', [join(mnt, 'tree'), '-type', 'f'])).trim().split('\n')
    assert.equal(found.length, 1000)
    // The checksum the CLI path computes agrees with what the mount wrote.
    const st = await call(coordinator.socket, 'fs.stat', { path: '/big.bin' })
    assert.equal(st.size, BIG_BYTES)
    assert.ok(st.replicas.min >= 2, 'every chunk reached the replication factor at close')
    assert.equal((await sh('sha256sum', [join(mnt, 'big.bin')])).split(' ')[0], bigSum)
  })

  it('ordinary tools work: tar x, rsync, editor-style rename, mv, chmod, touch -d, truncate, du, df', async () => {
    // Tools that keep times set an access time other than the modification time: only the latter is stored.
    const dated = join(tree, 'd1', 'f1.bin')
    await sh('touch', ['-m', '-d', '2019-05-06T07:08:09Z', dated])
    await sh('touch', ['-a', '-d', '2021-01-01T00:00:00Z', dated])
    const archive = join(work, 'd1.tar')
    await sh('tar', ['cf', archive, '-C', tree, 'd1'])
    await mkdir(join(mnt, 'tools'))
    await sh('tar', ['xf', archive, '-C', join(mnt, 'tools')])
    await sh('diff', ['-r', join(tree, 'd1'), join(mnt, 'tools', 'd1')])
    assert.equal((await stat(join(mnt, 'tools', 'd1', 'f1.bin'))).mtime.toISOString(), '2019-05-06T07:08:09.000Z', 'tar x kept the modification time')
    await sh('rsync', ['-r', join(tree, 'd2') + '/', join(mnt, 'tools', 'd2')])
    await sh('diff', ['-r', join(tree, 'd2'), join(mnt, 'tools', 'd2')])
    await sh('rsync', ['-t', dated, join(mnt, 'tools', 'rsynced.bin')])
    assert.equal((await stat(join(mnt, 'tools', 'rsynced.bin'))).mtime.toISOString(), '2019-05-06T07:08:09.000Z', 'rsync -t kept the modification time')
    await unlink(join(mnt, 'tools', 'rsynced.bin'))

    // An editor: write a temporary file, fsync it, rename it over the original.
    const doc = join(mnt, 'tools', 'doc.txt')
    await writeFile(doc, 'first version\n')
    const tmp = `${doc}.swp`
    const fh = await open(tmp, 'w')
    await fh.write('second version\n')
    await fh.sync()
    await fh.close()
    await rename(tmp, doc)
    assert.equal(await readFile(doc, 'utf8'), 'second version\n')
    assert.deepEqual((await readdir(join(mnt, 'tools'))).sort(), ['d1', 'd2', 'doc.txt'])

    await mkdir(join(mnt, 'tools', 'moved'))
    await sh('mv', [join(mnt, 'tools', 'd1', 'f1.bin'), join(mnt, 'tools', 'moved', 'f1.bin')])
    await sh('cmp', [join(tree, 'd1', 'f1.bin'), join(mnt, 'tools', 'moved', 'f1.bin')])
    await sh('mv', [join(mnt, 'tools', 'd2'), join(mnt, 'tools', 'moved', 'd2')])
    await sh('diff', ['-r', join(tree, 'd2'), join(mnt, 'tools', 'moved', 'd2')])

    await sh('chmod', ['640', doc])
    assert.equal((await stat(doc)).mode & 0o777, 0o640)
    await sh('touch', ['-d', '2020-02-03T04:05:06Z', doc])
    assert.equal((await stat(doc)).mtime.toISOString(), '2020-02-03T04:05:06.000Z')
    // touch -a changes only the access time, which is not kept: the modification time stays
    await sh('touch', ['-a', '-d', '2022-01-01T00:00:00Z', doc])
    assert.equal((await stat(doc)).mtime.toISOString(), '2020-02-03T04:05:06.000Z')
    await sh('touch', ['-m', '-d', '2018-07-08T09:10:11Z', doc])
    assert.equal((await stat(doc)).mtime.toISOString(), '2018-07-08T09:10:11.000Z')

    await sh('truncate', ['-s', '6', doc])
    assert.equal(await readFile(doc, 'utf8'), 'second')
    await sh('truncate', ['-s', '10', doc])
    assert.deepEqual(await readFile(doc), Buffer.concat([Buffer.from('second'), Buffer.alloc(4)]))
    // Rewritten from a 0600 spool file, which the daemon reads itself: the file keeps its own mode.
    assert.equal((await stat(doc)).mode & 0o777, 0o640)

    const du = Number((await sh('du', ['-sb', join(mnt, 'tools', 'moved', 'd2')])).split('\t')[0])
    const expected = Number((await sh('du', ['-sb', '--apparent-size', join(tree, 'd2')])).split('\t')[0])
    assert.ok(Math.abs(du - expected) < 64 * 1024, `du ${du} vs ${expected}`)

    // df shows the nodes' real capacity, divided by the replication factor, not an invented number.
    const df = await call(coordinator.socket, 'df')
    const [, size, , avail] = (await sh('df', ['-B1', mnt])).trim().split('\n')[1].split(/\s+/)
    const expectSize = Math.floor(df.total.capacityBytes / df.replication / 4096) * 4096
    assert.equal(Number(size), expectSize)
    assert.ok(Number(avail) > 0 && Number(avail) <= expectSize)
  })

  it('maps failures to the right errno', async () => {
    const base = join(mnt, 'errors')
    await mkdir(join(base, 'full'), { recursive: true })
    await writeFile(join(base, 'full', 'x'), 'x')
    await mkdir(join(base, 'empty'))
    await writeFile(join(base, 'file'), 'f')
    await expectErrno('rmdir of a non-empty directory', async () => await rmdir(join(base, 'full')), 'ENOTEMPTY')
    await expectErrno('rmdir of a file', async () => await rmdir(join(base, 'file')), 'ENOTDIR')
    await expectErrno('rename of a file over a directory', async () => await rename(join(base, 'file'), join(base, 'empty')), 'EISDIR')
    await expectErrno('rename of a directory over a non-empty one', async () => await rename(join(base, 'empty'), join(base, 'full')), 'ENOTEMPTY')
    await expectErrno('rename of a directory over a file', async () => await rename(join(base, 'empty'), join(base, 'file')), 'ENOTDIR')
    await expectErrno('mkdir of an existing name', async () => await mkdir(join(base, 'file')), 'EEXIST')
    await expectErrno('open of a missing file', async () => await readFile(join(base, 'missing')), 'ENOENT')
    await expectErrno('unlink of a directory', async () => await unlink(join(base, 'empty')), 'EISDIR')
    await expectErrno('a name too long', async () => await writeFile(join(base, 'n'.repeat(300)), 'x'), 'ENAMETOOLONG')
    // Nothing was lost on the way.
    assert.equal(await readFile(join(base, 'full', 'x'), 'utf8'), 'x')
    assert.equal(await readFile(join(base, 'file'), 'utf8'), 'f')
    // The directory rename over an empty one is allowed, as rename(2) says.
    await mkdir(join(base, 'empty2'))
    await rename(join(base, 'empty'), join(base, 'empty2'))
  })

  it('an open file replaced by another client goes stale (ESTALE) rather than mixing two files; a new open reads the new one', async () => {
    const [oldBytes, newBytes] = [randomBytes(24 * MiB), randomBytes(24 * MiB)]
    const [oldLocal, newLocal] = [join(work, 'stale-old.bin'), join(work, 'stale-new.bin')]
    await writeFile(oldLocal, oldBytes)
    await writeFile(newLocal, newBytes)
    const put = async (...args: string[]): Promise<void> => {
      const r = await cli([...args, '--home', coordinatorDir])
      assert.equal(r.code, 0, r.stderr)
    }
    await put('put', oldLocal, '/stale.bin')
    const fh = await open(join(mnt, 'stale.bin'), 'r')
    try {
      const buf = Buffer.alloc(MiB)
      await fh.read(buf, 0, MiB, 0)
      assert.ok(buf.equals(oldBytes.subarray(0, MiB)))
      // Saved the way editors do, by the CLI (another client of the daemon): a new file moved over the old name
      await put('put', newLocal, '/stale.new')
      await put('mv', '/stale.new', '/stale.bin')
      // Far past what the first read fetched ahead, so the mount asks the daemon again
      // libuv has no name for ESTALE: Node reports it by number
      const stale = (what: string) => (err: any): boolean => { assert.equal(err.errno, -constants.errno.ESTALE, `${what}: ${String(err.message)}`); return true }
      await assert.rejects(fh.read(buf, 0, MiB, 20 * MiB), stale('a read of the replaced file'))
      await assert.rejects(fh.read(buf, 0, MiB, 12 * MiB), stale('the old handle, again'))
      // (Once a new open has read the new file, the kernel's page cache of the name holds its pages, and the old
      // handle's reads of those pages are answered from there without asking the mount.)
      assert.ok((await readFile(join(mnt, 'stale.bin'))).equals(newBytes), 'a new open reads the new file whole')
    } finally {
      await fh.close()
    }
  })

  it('applies random writes, truncates, renames and reads in lockstep with a local directory', async () => {
    const seed = Number(process.env.FUSE_TEST_SEED ?? randomBytes(4).readUInt32LE(0))
    console.log(`# lockstep seed ${seed} (replay with FUSE_TEST_SEED=${seed})`)
    const rnd = prng(seed)
    const model = join(work, 'model')
    const remote = join(mnt, 'lockstep')
    await mkdir(model)
    await mkdir(remote)
    const names = ['a', 'b', 'c', 'd']
    // Some handles stay open across operations, so reads through other handles must see unflushed writes.
    const held = new Map<string, { m: FileHandle, r: FileHandle }>()
    const closeHeld = async (name: string): Promise<void> => {
      const h = held.get(name)
      if (h == null) return
      held.delete(name)
      await h.m.close()
      await h.r.close()
    }
    const handles = async (name: string): Promise<{ m: FileHandle, r: FileHandle }> => {
      const h = held.get(name)
      if (h != null) return h
      return { m: await open(join(model, name), 'r+').catch(async () => await open(join(model, name), 'w+')), r: await open(join(remote, name), 'r+').catch(async () => await open(join(remote, name), 'w+')) }
    }
    const steps = 1000
    for (let step = 0; step < steps; step++) {
      const name = names[rnd.int(names.length)]
      const touched = new Set([name])
      const op = rnd.int(100)
      const where = `step ${step} (seed ${seed})`
      if (op < 60) {
        const h = await handles(name)
        const size = (await h.m.stat()).size
        const offset = rnd.int(size + 64 * 1024)
        const data = rnd.bytes(1 + rnd.int(rnd.int(10) === 0 ? 300 * 1024 : 8 * 1024))
        await h.m.write(data, 0, data.length, offset)
        await h.r.write(data, 0, data.length, offset)
        if (!held.has(name)) {
          if (rnd.int(4) === 0) held.set(name, h)
          else { await h.m.close(); await h.r.close() }
        }
      } else if (op < 75) {
        const size = rnd.int(400 * 1024)
        const h = held.get(name)
        if (h != null) {
          await h.m.truncate(size)
          await h.r.truncate(size)
        } else {
          await truncate(join(model, name), size).catch(() => {})
          const exists = await stat(join(model, name)).then(() => true, () => false)
          if (exists) await truncate(join(remote, name), size)
        }
      } else if (op < 85) {
        const to = names[rnd.int(names.length)]
        touched.add(to)
        await closeHeld(name)
        await closeHeld(to)
        const exists = await stat(join(model, name)).then(() => true, () => false)
        if (exists && to !== name) {
          await rename(join(model, name), join(model, to))
          await rename(join(remote, name), join(remote, to))
        }
      } else if (op < 92) {
        await closeHeld(name)
      } else {
        const exists = await stat(join(model, name)).then(() => true, () => false)
        if (exists) {
          const size = (await stat(join(model, name))).size
          const offset = rnd.int(size + 10)
          const length = 1 + rnd.int(200 * 1024)
          const m = await open(join(model, name), 'r')
          const r = await open(join(remote, name), 'r')
          const bm = Buffer.alloc(length)
          const br = Buffer.alloc(length)
          const nm = (await m.read(bm, 0, length, offset)).bytesRead
          const nr = (await r.read(br, 0, length, offset)).bytesRead
          await m.close()
          await r.close()
          assert.equal(nr, nm, `${where}: read length of ${name}`)
          assert.ok(br.subarray(0, nr).equals(bm.subarray(0, nm)), `${where}: read of ${name} at ${offset}`)
        }
      }
      // After every step: the same names, and the same bytes through a fresh handle for every name the step
      // touched; every 25 steps, for every name.
      const listed = (await readdir(model)).sort()
      assert.deepEqual((await readdir(remote)).sort(), listed, `${where}: directory listing`)
      for (const n of step % 25 === 0 ? listed : listed.filter(n => touched.has(n))) {
        const [m, r] = await Promise.all([readFile(join(model, n)), readFile(join(remote, n))])
        assert.equal(r.length, m.length, `${where}: size of ${n}`)
        assert.ok(r.equals(m), `${where}: content of ${n}`)
      }
    }
    for (const name of [...held.keys()]) await closeHeld(name)
    // Closed, everything reached the daemon: the CLI sees the same bytes.
    for (const n of (await readdir(model)).sort()) {
      const r = await cli(['stat', `/lockstep/${n}`, '--json', '--home', coordinatorDir])
      assert.equal(JSON.parse(r.stdout).size, (await stat(join(model, n))).size, `${n} as stored`)
    }
  })

  it('keeps everything across unmount, a restart of the daemons, and a new mount', async () => {
    await unmount()
    for (const n of nodes) await n.stop()
    await coordinator.stop()
    coordinator = await startDaemon(cleanup, coordinatorDir)
    await startNodes()
    await mount()
    await assertTreeAndBig()
  })

  it('clears a stale mount left by a killed mount process, and the spool folder it left', async () => {
    const killed = mountProc?.pid as number
    const spoolsOf = async (pid: number): Promise<string[]> => (await readdir(tmpdir())).filter(n => n.startsWith(`collective-spool-${pid}-`))
    assert.equal((await spoolsOf(killed)).length, 1, 'the running mount has its spool folder')
    mountProc?.kill('SIGKILL')
    await waitFor('the mount process to die', async () => mountProc?.signalCode != null)
    await assert.rejects(stat(join(mnt, 'tree')), (err: any) => err.code === 'ENOTCONN')
    assert.equal((await spoolsOf(killed)).length, 1, 'a killed mount cannot remove its own')
    await mount()
    assert.equal((await stat(join(mnt, 'big.bin'))).size, BIG_BYTES)
    assert.deepEqual(await spoolsOf(killed), [], 'the next mount removed it')
  })

  it('refuses a spool folder inside the mount point, which it writes to synchronously', async () => {
    const other = join(work, 'mnt-spool-inside')
    await mkdir(join(other, 'spool'), { recursive: true })
    const r = await cli(['mount', other, '--spool-dir', join(other, 'spool'), '--home', coordinatorDir])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /inside the mount point/)
    assert.equal(await findMount(other), undefined)
  })

  it('a storage node killed during a write: success at the replication factor or EIO, never a corrupt file', async () => {
    const target = join(mnt, 'during-kill.bin')
    const fh = await open(target, 'w')
    const data = randomBytes(8 * MiB)
    for (let i = 0; i < 12; i++) await fh.write(data, 0, data.length, i * data.length)
    // close() uploads; the node dies while chunks are on their way.
    const closing = fh.close().then(() => 'ok', (err: any) => String(err.code))
    await new Promise(resolve => setTimeout(resolve, 300))
    nodes[2].proc.kill('SIGKILL')
    const outcome = await closing
    assert.ok(outcome === 'ok' || outcome === 'EIO', `close: ${outcome}`)
    const expected = createHash('sha256')
    for (let i = 0; i < 12; i++) expected.update(data)
    const st = await call(coordinator.socket, 'fs.stat', { path: '/during-kill.bin' })
    if (outcome === 'ok') {
      assert.equal(st.size, 12 * data.length)
      assert.equal(await sha256File(target), expected.digest('hex'))
      assert.ok(st.replicas.min >= 2, 'at the replication factor')
    } else {
      // The version before the failed close is the empty file create() committed.
      assert.equal(st.size, 0)
    }
  })
})
