import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, readdirSync, statSync } from 'node:fs'
import { writeFile, open } from 'node:fs/promises'
import { join } from 'node:path'
import { call } from '../../src/control/client.js'
import { Cleanup, TestFederation, cli, startDaemon, waitFor } from '../helpers/daemons.js'
import type { RunningDaemon } from '../helpers/daemons.js'

const cleanup = new Cleanup()
let fed: TestFederation
let work: string
let coordinatorDir: string
let coordinator: RunningDaemon
const nodeDirs: string[] = []
const nodes: RunningDaemon[] = []
const written = new Map<string, string>() // remote path -> sha256

const KiB = 1024
const MiB = 1024 * 1024

async function sha256File (path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path)) h.update(chunk)
  return h.digest('hex')
}

/** Writes a random file of `size` bytes without holding it in memory */
async function randomFile (name: string, size: number): Promise<string> {
  const path = join(work, name)
  const fh = await open(path, 'w')
  let left = size
  while (left > 0) {
    const n = Math.min(left, 4 * MiB)
    await fh.write(randomBytes(n))
    left -= n
  }
  await fh.close()
  return path
}

function home (): string { return coordinatorDir }

async function put (local: string, remote: string): Promise<void> {
  const r = await cli(['put', local, remote, '--home', home()], { timeoutMs: 300_000 })
  assert.equal(r.code, 0, r.stderr)
  written.set(remote, await sha256File(local))
}

async function assertReadsBack (remote: string): Promise<void> {
  const out = join(work, `out-${randomBytes(4).toString('hex')}`)
  const r = await cli(['get', remote, out, '--home', home()], { timeoutMs: 300_000 })
  assert.equal(r.code, 0, `get ${remote}: ${r.stderr}`)
  assert.equal(await sha256File(out), written.get(remote), `${remote} must read back byte-identical`)
}

async function startCoordinator (): Promise<void> {
  coordinator = await startDaemon(cleanup, coordinatorDir)
}

async function startNode (i: number): Promise<void> {
  nodes[i] = await startDaemon(cleanup, nodeDirs[i], ['--coordinator', coordinator.status.listen[0]])
}

async function waitForAliveNodes (n: number): Promise<void> {
  await waitFor(`${n} alive nodes`, async () => (await call(coordinator.socket, 'nodes')).filter((x: any) => x.state === 'alive').length === n, 30_000)
}

function chunkFiles (dir: string): string[] {
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap(e => e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)])
  return walk(join(dir, 'data')).filter(f => f.endsWith('.data'))
}

describe('storage: chunks, replication, persistent metadata and the file commands', () => {
  before(async () => {
    work = await cleanup.tempDir('collective-work-')
    fed = await TestFederation.create(cleanup)
    await fed.member('alice', 'home.collective.local')
    // Repair stays idle here (it has its own tests in interop/faults): a dead node's chunks must stay counted as
    // under-replicated until it returns, not be copied elsewhere while the test reads.
    coordinatorDir = await fed.component('alice', 'coordinator', 'coordinator', { storage: { replication: 2, gcGrace: '2s', gcInterval: '1s' }, repair: { startDelay: '1h' }, heartbeatIntervalMs: 1000 })
    await startCoordinator()
    for (let i = 0; i < 3; i++) {
      nodeDirs.push(await fed.component('alice', `node-0${i + 1}`, 'node', { storage: { capacity: '2GiB' }, heartbeatIntervalMs: 1000 }))
      await startNode(i)
    }
    await waitForAliveNodes(3)
  })

  after(async () => { await cleanup.run() })

  it('round-trips files of every chunking boundary byte for byte', async () => {
    assert.equal((await cli(['mkdir', '/docs', '--home', home()])).code, 0)
    for (const size of [0, 1, 64 * KiB - 1, 64 * KiB + 1, MiB + 1, 150 * MiB + 1]) {
      const local = await randomFile(`f-${size}`, size)
      await put(local, `/docs/f-${size}`)
      await assertReadsBack(`/docs/f-${size}`)
      const st = JSON.parse((await cli(['stat', `/docs/f-${size}`, '--json', '--home', home()])).stdout)
      assert.equal(st.size, size)
      assert.equal(st.chunkSize, size < MiB ? 64 * KiB : size <= 100 * MiB ? MiB : 4 * MiB)
      assert.equal(st.replicas.min >= 2 || size === 0, true)
    }
  })

  it('write reads stdin and cat writes stdout', async () => {
    const text = 'hello, collective\n'.repeat(1000)
    const w = await cli(['write', '/docs/hello.txt', '--home', home()], { input: text })
    assert.equal(w.code, 0, w.stderr)
    const c = await cli(['cat', '/docs/hello.txt', '--home', home()])
    assert.equal(c.stdout, text)
  })

  it('deduplicates: the same bytes written twice are stored once', async () => {
    const local = await randomFile('dup', 3 * MiB + 7)
    const before = await call(coordinator.socket, 'df')
    await put(local, '/docs/dup-1')
    const once = await call(coordinator.socket, 'df')
    await put(local, '/docs/dup-2')
    const twice = await call(coordinator.socket, 'df')
    const stored1 = once.usage.storedBytes - before.usage.storedBytes
    assert.ok(stored1 >= 2 * (3 * MiB + 7), 'the first copy is stored at replication 2')
    assert.equal(twice.usage.storedBytes, once.usage.storedBytes, 'the second copy adds nothing')
    await assertReadsBack('/docs/dup-2')
  })

  it('concurrent writers of one path never produce a mixed file', async () => {
    const a = await randomFile('race-a', 5 * MiB)
    const b = await randomFile('race-b', 5 * MiB)
    const [ra, rb] = await Promise.all([
      cli(['put', a, '/docs/race', '--home', home()]),
      cli(['put', b, '/docs/race', '--home', home()])
    ])
    assert.equal(ra.code, 0, ra.stderr)
    assert.equal(rb.code, 0, rb.stderr)
    const out = join(work, 'race-out')
    assert.equal((await cli(['get', '/docs/race', out, '--home', home()])).code, 0)
    const got = await sha256File(out)
    assert.ok([await sha256File(a), await sha256File(b)].includes(got), 'the file is one writer\'s version, whole')
  })

  it('refuses bad input with a clear error and changes nothing', async () => {
    const local = await randomFile('small', 100)
    const cases: Array<[string[], RegExp]> = [
      [['put', local, '/missing/dir/x'], /NotFoundError/],
      [['put', local, '/docs/../etc/x'], /InvalidPathError/],
      [['put', local, `/docs/${'n'.repeat(300)}`], /InvalidPathError/],
      [['get', '/docs/nope', join(work, 'nope')], /NotFoundError/],
      [['cat', '/docs/nope'], /NotFoundError/],
      [['rm', '/docs'], /NotEmptyError/],
      [['mkdir', '/docs'], /AlreadyExistsError/],
      [['put', join(work, 'absent-local'), '/docs/x'], /LocalFileError|no such file/i]
    ]
    for (const [args, expected] of cases) {
      const r = await cli([...args, '--home', home()])
      assert.notEqual(r.code, 0, `${args.join(' ')} must fail`)
      assert.match(r.stderr, expected, `${args.join(' ')}: ${r.stderr}`)
    }
    await assert.rejects(call(coordinator.socket, 'fs.mkdir', { path: '/docs/a\u0000b' }), { remoteName: 'InvalidPathError' })
    const ls = JSON.parse((await cli(['ls', '/docs', '--json', '--home', home()])).stdout)
    assert.ok(!ls.entries.some((e: any) => e.name === 'x' || e.name.startsWith('nnnn')))
  })

  it('the daemon reads and writes local files itself, with clear errors, and a failed get leaves no partial file', async () => {
    const local = await randomFile('by-daemon', 3 * MiB + 5)
    const put = await call(coordinator.socket, 'fs.putLocal', { path: '/docs/by-daemon', localPath: local })
    assert.equal(put.size, 3 * MiB + 5)
    written.set('/docs/by-daemon', await sha256File(local))
    await assertReadsBack('/docs/by-daemon')

    const dest = join(work, 'by-daemon.out')
    const got = await call(coordinator.socket, 'fs.getLocal', { path: '/docs/by-daemon', localPath: dest, mode: 0o600 })
    assert.equal(got.destination, dest)
    assert.equal(await sha256File(dest), written.get('/docs/by-daemon'))
    assert.equal(statSync(dest).mode & 0o777, 0o600)

    const other = statSync(join(work, 'small'))
    const refusals: Array<[string, Record<string, unknown>, string, RegExp]> = [
      ['fs.putLocal', { path: '/docs/x', localPath: 'relative/file' }, 'TypeError', /absolute path/],
      ['fs.putLocal', { path: '/docs/x', localPath: join(work, 'absent-local') }, 'LocalPathUnavailableError', /no such file/],
      ['fs.putLocal', { path: '/docs/x', localPath: work }, 'LocalFileError', /is a directory/],
      ['fs.putLocal', { path: '/docs/x', localPath: local, file: { dev: other.dev, ino: other.ino } }, 'LocalPathUnavailableError', /not the file/],
      ['fs.getLocal', { path: '/docs/nope', localPath: join(work, 'nope') }, 'NotFoundError', /nope/],
      ['fs.getLocal', { path: '/docs/by-daemon', localPath: join(work, 'no-dir', 'x') }, 'LocalFileError', /cannot write .*no such file or directory/]
    ]
    for (const [method, params, name, message] of refusals) {
      await assert.rejects(call(coordinator.socket, method, params), (err: any) => {
        assert.equal(err.remoteName, name, `${method} ${JSON.stringify(params)}: ${String(err.message)}`)
        assert.match(err.message, message)
        return true
      })
    }
    const ls = JSON.parse((await cli(['ls', '/docs', '--json', '--home', home()])).stdout)
    assert.ok(!ls.entries.some((e: any) => e.name === 'x'))

    // A client that goes away mid-download: the daemon stops and removes what it wrote.
    const big = '/docs/f-157286401'
    const cut = join(work, 'cut-short')
    const client = new AbortController()
    let partialSeen = false
    await assert.rejects(call(coordinator.socket, 'fs.getLocal', { path: big, localPath: cut }, {
      signal: client.signal,
      onProgress: () => {
        partialSeen ||= readdirSync(work).some(f => f.startsWith('cut-short.partial-'))
        client.abort()
      }
    }))
    assert.ok(partialSeen, 'the download was under way when the client went away')
    await waitFor('the partial download to be removed', async () => !readdirSync(work).some(f => f.startsWith('cut-short')), 20_000)
    assert.ok(!readdirSync(work).some(f => f.startsWith('cut-short')))
  })

  it('mkdir -p, ls, mv and rm -r work on the namespace', async () => {
    assert.equal((await cli(['mkdir', '-p', '/a/b/c', '--home', home()])).code, 0)
    await put(await randomFile('tree', 10), '/a/b/c/file')
    assert.equal((await cli(['mv', '/a/b', '/a/moved', '--home', home()])).code, 0)
    written.set('/a/moved/c/file', written.get('/a/b/c/file') as string)
    await assertReadsBack('/a/moved/c/file')
    const ls = JSON.parse((await cli(['ls', '/a', '--json', '--home', home()])).stdout)
    assert.deepEqual(ls.entries.map((e: any) => e.name), ['moved'])
    assert.equal((await cli(['rm', '-r', '/a', '--home', home()])).code, 0)
    written.delete('/a/b/c/file')
    written.delete('/a/moved/c/file')
    assert.match((await cli(['stat', '/a', '--home', home()])).stderr, /NotFoundError/)
  })

  it('garbage-collects chunks no file references after the grace period, and only those', async () => {
    const nodeBytes = async (): Promise<number> => (await call(coordinator.socket, 'nodes')).reduce((s: number, n: any) => s + n.usedBytes, 0)
    // Earlier tests left garbage (a losing racer's chunks, a removed tree): let it be collected and reported first.
    await new Promise(resolve => setTimeout(resolve, 6000))
    const baseline = await nodeBytes()
    const local = await randomFile('garbage', 3 * MiB)
    await put(local, '/docs/garbage')
    await waitFor('nodes to report the new chunks', async () => await nodeBytes() >= baseline + 2 * 3 * MiB)
    const st = JSON.parse((await cli(['stat', '/docs/garbage', '--json', '--home', home()])).stdout)
    const before = await call(coordinator.socket, 'df')
    assert.equal((await cli(['rm', '/docs/garbage', '--home', home()])).code, 0)
    written.delete('/docs/garbage')
    const after = await waitFor('the chunks to be collected', async () => {
      const df = await call(coordinator.socket, 'df')
      // Other garbage (the losing racer's chunks, the removed tree) may go in the same sweep.
      return df.usage.chunks <= before.usage.chunks - st.chunks ? df : undefined
    }, 30_000)
    assert.ok(before.usage.storedBytes - after.usage.storedBytes >= 2 * 3 * MiB, 'both replicas of every chunk are gone')
    // The nodes report the space back once they deleted the chunks.
    await waitFor('nodes to report the freed space', async () => await nodeBytes() <= baseline, 30_000)
    for (const remote of written.keys()) await assertReadsBack(remote)
  })

  it('reads survive kill -9 of a node', async () => {
    nodes[1].proc.kill('SIGKILL')
    await new Promise(resolve => nodes[1].proc.once('exit', resolve))
    for (const remote of written.keys()) await assertReadsBack(remote)
    // Once the node is declared dead, its copies no longer count: status reports the chunks that lack one.
    const degraded = await waitFor('the dead node\'s chunks to count as under-replicated', async () => {
      const s = JSON.parse((await cli(['status', '--json', '--home', home()])).stdout)
      return s.storage.underReplicatedChunks > 0 ? s : undefined
    }, 30_000)
    assert.ok(degraded.storage.underReplicatedChunks <= degraded.storage.chunks)
    await startNode(1)
    await waitForAliveNodes(3)
    const healed = JSON.parse((await cli(['status', '--json', '--home', home()])).stdout)
    assert.equal(healed.storage.underReplicatedChunks, 0)
  })

  it('reads survive a corrupted chunk file on one node', async () => {
    const local = await randomFile('corrupt-me', 2 * MiB + 3)
    await put(local, '/docs/corrupt-me')
    // Corrupt every chunk this node holds: each read of its replicas must fail over to the other copy.
    const files = chunkFiles(nodeDirs[0])
    assert.ok(files.length > 0)
    for (const f of files) {
      const fh = await open(f, 'r+')
      const { size } = statSync(f)
      const at = Math.floor(size / 2)
      const byte = Buffer.alloc(1)
      await fh.read(byte, 0, 1, at)
      byte[0] ^= 0xff
      await fh.write(byte, 0, 1, at)
      await fh.close()
    }
    for (const remote of written.keys()) await assertReadsBack(remote)
  })

  it('a full node disk: writes go to nodes with room, or fail clearly when none has any', async () => {
    const tinyDir = await fed.component('alice', 'node-tiny', 'node', { storage: { capacity: '300KiB' }, heartbeatIntervalMs: 1000 })
    const tiny = await startDaemon(cleanup, tinyDir, ['--coordinator', coordinator.status.listen[0]])
    await waitFor('tiny node registered', async () => (await call(coordinator.socket, 'nodes')).some((n: any) => n.name.startsWith('node-tiny') && n.state === 'alive'))
    // With room elsewhere, a write whose placement hits the full node goes to another node.
    for (let i = 0; i < 4; i++) await put(await randomFile(`spill-${i}`, MiB + 1), `/docs/spill-${i}`)
    // With only node-01 and the tiny node alive, replication 2 of 1 MiB chunks cannot be met.
    await nodes[1].stop()
    await nodes[2].stop()
    await waitFor('node-02 and node-03 no longer alive', async () =>
      (await call(coordinator.socket, 'nodes')).filter((n: any) => n.state !== 'dead').length === 2, 30_000)
    const big = await randomFile('too-big', 4 * MiB)
    const r = await cli(['put', big, '/docs/too-big', '--home', home()])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /ReplicationError/)
    assert.match((await cli(['stat', '/docs/too-big', '--home', home()])).stderr, /NotFoundError/, 'a failed write leaves nothing visible')
    await tiny.stop()
  })

  it('restarting every daemon loses nothing', async () => {
    for (const n of nodes) await n.stop()
    await coordinator.stop()
    await startCoordinator()
    for (let i = 0; i < 3; i++) await startNode(i)
    await waitForAliveNodes(3)
    for (const remote of written.keys()) await assertReadsBack(remote)
    const df = await cli(['df', '--home', home()])
    assert.equal(df.code, 0)
    assert.match(df.stdout, /node-01@home\.collective\.local/)
  })
})
