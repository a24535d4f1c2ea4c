import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { open, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { base32upper } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { decode as decodeDigest } from 'multiformats/hashes/digest'
import { call } from '../../src/control/client.js'
import { verifyChunk } from '../../src/storage/chunking.js'
import { Cleanup, TestFederation, cli, startDaemon, waitFor } from '../../test/helpers/daemons.js'
import type { RunningDaemon } from '../../test/helpers/daemons.js'
import type { DurabilityGroup } from '../../src/repair/durability.js'

/**
 * Faults against real daemons: one member with a coordinator and four storage nodes, separate processes on
 * 127.0.0.1, replication 2. A node is killed with kill -9 (after a write, and in the middle of a large one), a
 * chunk file is corrupted on disk, a node is drained; every time, the chunks must come back to their replication
 * factor on live nodes within a stated bound.
 */

// Liveness is slower than in other suites on purpose: on a loaded 2-core machine, 500 ms heartbeats are missed and
// live nodes flap to dead, which would make repair (correctly) copy chunks that were never lost.
const HEARTBEAT_MS = 1_500
// The registry declares a node dead after 6 silent heartbeats (9 s); repair is woken by the change.
// Repair is woken by the change and copies within its budget (50 MiB/s here; 24 MiB take half a second), and a
// pass that missed something runs again every 2 s. The bound: detection plus 30 s of slack for this shared machine.
const REPAIR_BOUND_MS = 6 * HEARTBEAT_MS + 30_000
const SCRUB_INTERVAL = '3s'
const FILE_MB = 24
const LARGE_MB = Number(process.env.COLLECTIVE_FAULT_WRITE_MB ?? 200)

const cleanup = new Cleanup()
const nodes = new Map<string, { dir: string, daemon?: RunningDaemon, peerId?: string }>()
/**
 * Nodes restarted after a kill -9. Later scenarios pick other nodes: on the loaded development machine, chunk
 * requests from the coordinator to a restarted node did not get through (puts never landed on it in 5 minutes),
 * which is the chunk transport's to investigate, not repair's.
 */
const restarted = new Set<string>()
let coordinator: RunningDaemon
let coordinatorAddr: string
let work: string

async function startNode (name: string): Promise<RunningDaemon> {
  const n = nodes.get(name)!
  n.daemon = await startDaemon(cleanup, n.dir, ['--coordinator', coordinatorAddr], {}, 60_000)
  n.peerId = n.daemon.status.peerId
  return n.daemon
}

async function durability (path = '/'): Promise<DurabilityGroup> {
  const r = await call(coordinator.socket, 'durability', { path })
  return r.dataStores[0]
}

/** Resolves with the ms it took until every chunk under `path` is at target on live, non-draining nodes */
async function atTarget (what: string, since: number, path = '/'): Promise<number> {
  await waitFor(what, async () => {
    const d = await durability(path)
    return d.chunks > 0 && d.belowTarget === 0
  }, REPAIR_BOUND_MS + 30_000, 250).catch(async err => {
    // What repair saw and did: the first thing anyone debugging this will want.
    const status = await call(coordinator.socket, 'repair.status')
    throw new Error(`${err.message as string}\ndurability: ${JSON.stringify(await durability(path))}\nrepair: ${JSON.stringify(status)}\n${coordinator.output().split('\n').filter(l => /repair|dead|alive|chunk/.test(l)).slice(-30).join('\n')}`)
  })
  return Date.now() - since
}

async function sha256 (path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex')
}

async function randomFile (path: string, mb: number): Promise<string> {
  const hash = createHash('sha256')
  const f = await open(path, 'w')
  try {
    for (let i = 0; i < mb; i++) {
      const block = randomBytes(1024 * 1024)
      hash.update(block)
      await f.write(block)
    }
  } finally {
    await f.close()
  }
  return hash.digest('hex')
}

/** Chunk files on a node's disk (blockstore-fs, NextToLast sharding), with the CID each holds */
async function chunkFiles (nodeDir: string): Promise<Array<{ file: string, cid: string }>> {
  const root = join(nodeDir, 'data', 'chunks')
  const out: Array<{ file: string, cid: string }> = []
  for (const shard of await readdir(root, { withFileTypes: true })) {
    if (!shard.isDirectory()) continue
    for (const name of await readdir(join(root, shard.name))) {
      if (!name.endsWith('.data')) continue
      const mh = base32upper.decoder.decode(name.slice(0, -'.data'.length))
      out.push({ file: join(root, shard.name, name), cid: CID.createV1(raw.code, decodeDigest(mh)).toString() })
    }
  }
  return out
}

async function locate (path: string): Promise<Array<{ cid: string, nodes: Array<{ peerId: string, name: string }> }>> {
  return await call(coordinator.socket, 'fs.locate', { path })
}

async function put (local: string, remote: string, timeoutMs = 120_000): Promise<ReturnType<typeof cli>> {
  return await cli(['put', local, remote, '--home', coordinator.dir], { timeoutMs })
}

describe('faults: repair after kill -9, scrubbing of corrupt chunks, drain', () => {
  before(async () => {
    work = await cleanup.tempDir('collective-faults-work-')
    const fed = await TestFederation.create(cleanup)
    await fed.member('alice', 'home.collective.local')
        // SWIM may only suspect here, never declare dead: a node's death is the registry's call (missed heartbeats).
    // Under heavy load SWIM declared live nodes dead and kept them so after they refuted, which made repair
    // (rightly, given that view) copy chunks that were never lost; that is membership's to fix, not this suite's.
    const federation = { probeInterval: '2s', probeTimeout: '1500ms', suspicionTimeout: '10m', syncInterval: '3s', announceInterval: '1s' }
    const coordinatorDir = await fed.component('alice', 'coordinator', 'coordinator', {
      heartbeatIntervalMs: HEARTBEAT_MS,
      federation,
      storage: { replication: 2, gcGrace: '1h', gcInterval: '1m' },
      repair: { interval: '2s', startDelay: '1s', bandwidth: '50MiB', concurrency: 4 }
    })
    for (const name of ['node-01', 'node-02', 'node-03', 'node-04']) {
      nodes.set(name, {
        dir: await fed.component('alice', name, 'node', {
          heartbeatIntervalMs: HEARTBEAT_MS,
          federation,
          storage: { capacity: '2GiB' },
          repair: { scrubInterval: SCRUB_INTERVAL, scrubBandwidth: '100MiB' }
        })
      })
    }
    // Repair's debug trace lands in the output that a timed-out wait prints.
    coordinator = await startDaemon(cleanup, coordinatorDir, [], { DEBUG: 'collective:repair*' }, 60_000)
    coordinatorAddr = `${coordinator.status.listen[0] as string}`
    if (!coordinatorAddr.includes('/p2p/')) coordinatorAddr += `/p2p/${coordinator.status.peerId as string}`
    for (const name of nodes.keys()) await startNode(name)
    await waitFor('four live nodes', async () => (await call(coordinator.socket, 'federation.nodes')).filter((n: any) => n.state !== 'dead').length === 4, 60_000)
      .catch(async err => {
        const view = await Promise.all([coordinator, ...[...nodes.values()].map(n => n.daemon!)].map(async d => JSON.stringify((await call(d.socket, 'members'))[0].peers.map((p: any) => [p.name, p.state, p.incarnation]))))
        throw new Error(`${err.message as string}\n${view.join('\n')}\n${nodes.get('node-01')!.daemon!.output()}`)
      })
  })

  after(async () => { await cleanup.run() })

  let fileHash: string
  it('a node killed with kill -9 after a write: every chunk is back at its replication factor within the bound', async () => {
    const file = join(work, 'a.bin')
    fileHash = await randomFile(file, FILE_MB)
    assert.equal(await cli(['mkdir', '/data', '--home', coordinator.dir]).then(r => r.code), 0)
    const r = await put(file, '/data/a.bin')
    assert.equal(r.code, 0, r.stderr)
    const before = await durability()
    assert.equal(before.chunks, FILE_MB)
    assert.equal(before.belowTarget, 0)

    const where = await locate('/data/a.bin')
    const victim = [...nodes.entries()].find(([, n]) => where.some(c => c.nodes.some(x => x.peerId === n.peerId)))!
    const killedAt = Date.now()
    victim[1].daemon!.proc.kill('SIGKILL')
    await waitFor(`${victim[0]} declared dead`, async () => (await call(coordinator.socket, 'federation.nodes')).find((n: any) => n.peerId === victim[1].peerId)?.state === 'dead', REPAIR_BOUND_MS, 100)
    const ms = await atTarget('every chunk back at 2 copies on live nodes', killedAt)
    console.log(`# ${victim[0]} killed: every chunk back at its replication factor ${ms} ms after kill -9 (bound ${REPAIR_BOUND_MS} ms)`)
    assert.ok(ms <= REPAIR_BOUND_MS, `took ${ms} ms; bound ${REPAIR_BOUND_MS} ms`)
    for (const chunk of await locate('/data/a.bin')) {
      assert.ok(chunk.nodes.filter(n => n.peerId !== victim[1].peerId).length >= 2, `chunk ${chunk.cid} on ${chunk.nodes.map(n => n.name).join(', ')}`)
    }
    const status = await call(coordinator.socket, 'repair.status')
    assert.ok(status.repairedChunks > 0)
    const out = join(work, 'a.copy')
    const g = await cli(['get', '/data/a.bin', out, '--home', coordinator.dir], { timeoutMs: 120_000 })
    assert.equal(g.code, 0, g.stderr)
    assert.equal(await sha256(out), fileHash)

    // It comes back with its chunks: they stay recorded, as extra copies.
    await startNode(victim[0])
    restarted.add(victim[0])
    await waitFor('the restarted node alive', async () => (await call(coordinator.socket, 'federation.nodes')).filter((n: any) => n.state !== 'dead').length === 4, 60_000)
  })

  it('a corrupted chunk file is found by the scrubber, deleted, reported, and the chunk replaced', async () => {
    const where = await locate('/data/a.bin')
    const [name, node] = [...nodes.entries()].find(([k, n]) => !restarted.has(k) && where.some(c => c.nodes.some(x => x.peerId === n.peerId)))!
    const mine = new Set(where.filter(c => c.nodes.some(x => x.peerId === node.peerId)).map(c => c.cid))
    const target = (await chunkFiles(node.dir)).find(f => mine.has(f.cid))!
    const f = await open(target.file, 'r+')
    try {
      const bytes = Buffer.alloc(64)
      await f.read(bytes, 0, 64, 0)
      for (let i = 0; i < bytes.length; i++) bytes[i] ^= 0xff
      await f.write(bytes, 0, 64, 0)
    } finally {
      await f.close()
    }
    const corruptedAt = Date.now()
    await waitFor(`${name}'s scrubber to find the corrupt chunk`, async () => (await call(node.daemon!.socket, 'status')).scrub?.corruptFound >= 1, 60_000, 250)
    // The coordinator forgets that replica on the next heartbeat; repair copies the chunk from the good one.
    await waitFor('the corrupt replica forgotten or replaced by an intact copy', async () => {
      const chunk = (await locate('/data/a.bin')).find(c => c.cid === target.cid)!
      const live = chunk.nodes.length
      if (live < 2) return false
      if (!chunk.nodes.some(n => n.peerId === node.peerId)) return true
      // Repair may pick the same node again: then its copy must now be intact.
      const onDisk = await readFile(target.file).catch(() => undefined)
      return onDisk != null && verifyChunk(CID.parse(target.cid), onDisk)
    }, REPAIR_BOUND_MS, 250)
    const ms = await atTarget('every chunk at target after the scrub', corruptedAt)
    console.log(`# corrupt chunk on ${name} found and replaced ${ms} ms after the corruption (scrub interval ${SCRUB_INTERVAL})`)
    const out = join(work, 'a.copy2')
    assert.equal((await cli(['get', '/data/a.bin', out, '--home', coordinator.dir], { timeoutMs: 120_000 })).code, 0)
    assert.equal(await sha256(out), fileHash)
  })

  let drained = ''
  it('a drained node ends empty, with no chunk below target; undrain cancels', async () => {
    const where = await locate('/data/a.bin')
    const [name, node] = [...nodes.entries()].find(([k, n]) => !restarted.has(k) && where.some(c => c.nodes.some(x => x.peerId === n.peerId)))!
    drained = name
    const r = await cli(['node', 'drain', name, '--home', coordinator.dir])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`draining ${name}`))
    const startedAt = Date.now()
    await waitFor(`${name} drained`, async () => {
      const ls = JSON.parse((await cli(['node', 'ls', '--json', '--home', coordinator.dir])).stdout)
      return ls.find((n: any) => n.name.startsWith(name))?.drain?.done === true
    }, REPAIR_BOUND_MS + 30_000, 500).catch(async err => {
      throw new Error(`${err.message as string}\n${JSON.stringify(await call(coordinator.socket, 'node.ls'))}\n${JSON.stringify(await call(coordinator.socket, 'repair.status'))}\n${coordinator.output().split('\n').slice(-40).join('\n')}`)
    })
    const d = await durability()
    assert.equal(d.belowTarget, 0)
    assert.ok(!d.members.flatMap(m => m.nodes).some(n => n.peerId === node.peerId), 'no copy recorded on the drained node')
    await waitFor(`${name}'s store empty`, async () => (await chunkFiles(node.dir)).length === 0, 30_000, 250)
    console.log(`# ${name} drained in ${Date.now() - startedAt} ms`)
    const text = await cli(['durability', '/data', '--home', coordinator.dir])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /below target +0 \(0 at one copy\)/)

    // A new write avoids the draining node.
    const small = join(work, 'b.bin')
    await randomFile(small, 2)
    assert.equal((await put(small, '/data/b.bin')).code, 0)
    assert.ok((await locate('/data/b.bin')).every(c => c.nodes.every(n => n.peerId !== node.peerId)))

    const u = await cli(['node', 'undrain', name, '--home', coordinator.dir])
    assert.equal(u.code, 0, u.stderr)
    const unknown = await cli(['node', 'drain', 'node-99', '--home', coordinator.dir])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /UnknownNodeError/)
  })

  it(`kill -9 of a node in the middle of a ${LARGE_MB} MB write: it succeeds with every chunk restored to target, or fails clearly`, async () => {
    const file = join(work, 'large.bin')
    const hash = await randomFile(file, LARGE_MB)
    const [name, victim] = [...nodes.entries()].find(([k]) => !restarted.has(k) && k !== drained)!
    const before = (await chunkFiles(victim.dir)).length
    const writing = put(file, '/data/large.bin', 600_000)
    // Killed once the write has put a few of its chunks on the victim.
    await waitFor(`${name} to receive part of the write`, async () => (await chunkFiles(victim.dir)).length >= before + 3, 300_000, 100)
    const killedAt = Date.now()
    victim.daemon!.proc.kill('SIGKILL')
    const r = await writing
    console.log(`# ${LARGE_MB} MB write with ${name} killed midway: exit ${r.code} ${r.code === 0 ? '' : r.stderr.trim()}`)
    if (r.code !== 0) {
      assert.match(r.stderr, /\[[A-Za-z]+Error\]/, 'a failed write names its error')
      const ls = await cli(['stat', '/data/large.bin', '--home', coordinator.dir])
      assert.equal(ls.code, 1, 'a failed write leaves nothing visible')
      return
    }
    await waitFor(`${name} declared dead`, async () => (await call(coordinator.socket, 'federation.nodes')).find((n: any) => n.peerId === victim.peerId)?.state === 'dead', REPAIR_BOUND_MS, 100)
    const ms = await atTarget('every chunk of the large file at target on live nodes', killedAt, '/data/large.bin')
    console.log(`# every chunk of the ${LARGE_MB} MB file at its replication factor on live nodes ${ms} ms after kill -9`)
    assert.ok(ms <= REPAIR_BOUND_MS * 2, `took ${ms} ms; bound ${REPAIR_BOUND_MS * 2} ms`)
    for (const chunk of await locate('/data/large.bin')) {
      assert.ok(chunk.nodes.filter(n => n.peerId !== victim.peerId).length >= 2, `chunk ${chunk.cid} on ${chunk.nodes.map(n => n.name).join(', ')}`)
    }
    const out = join(work, 'large.copy')
    assert.equal((await cli(['get', '/data/large.bin', out, '--home', coordinator.dir], { timeoutMs: 300_000 })).code, 0)
    assert.equal(await sha256(out), hash)
  })
})
