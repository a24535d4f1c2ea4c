import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { call } from '../../src/control/client.js'
import { Cleanup, cli, startOneMember, waitFor } from '../../test/helpers/daemons.js'
import { sample, scrape } from '../../test/helpers/metrics.js'
import type { RunningDaemon } from '../../test/helpers/daemons.js'

/**
 * The per-peer circuit breaker with real daemons: one member, a coordinator and three storage nodes as separate
 * processes on 127.0.0.1, replication 2. One node keeps running, heartbeating and accepting connections, but
 * fails every chunk it is asked to store: its chunk folder is swapped for a plain file, so its store answers each
 * put with an error (a disk gone bad under a live process). The coordinator's breaker for that node must open
 * after repeated failures, and writes and reads must keep succeeding on the other two nodes, with the failing
 * node asked at most for the occasional half-open probe instead of for every chunk.
 */

const FILE_BYTES = 500_000 // 64 KiB chunks: 8 per file
const FILES_AFTER_OPEN = 6
// Default breaker: open after 5 consecutive failures, half-open probe after 10 s (doubling up to 60 s).
const COOLDOWN_MS = 10_000

const cleanup = new Cleanup()
let coordinator: RunningDaemon
let nodes: RunningDaemon[]
let work: string
let written = 0

async function put (): Promise<{ path: string, bytes: Buffer }> {
  const bytes = randomBytes(FILE_BYTES)
  const path = `/f${written++}`
  const local = join(work, path.slice(1))
  await writeFile(local, bytes)
  const r = await cli(['put', local, path, '--home', coordinator.dir], { timeoutMs: 120_000 })
  assert.equal(r.code, 0, `put ${path}: ${r.stderr}`)
  return { path, bytes }
}

async function locate (path: string): Promise<Array<{ cid: string, nodes: Array<{ peerId: string }> }>> {
  return await call(coordinator.socket, 'fs.locate', { path })
}

/** Failed puts the node itself counted */
async function failedPuts (node: RunningDaemon): Promise<number> {
  return sample(await scrape(node), 'collective_chunk_operations_total{op="put",result="error"}')
}

describe('faults: a node that keeps failing trips its circuit breaker and traffic goes elsewhere', () => {
  before(async () => {
    work = await cleanup.tempDir('collective-breaker-work-')
    ;({ coordinator, nodes } = await startOneMember(cleanup, {
      coordinator: {
        heartbeatIntervalMs: 1000,
        storage: { replication: 2, gcGrace: '1h', gcInterval: '1m' },
        // Repair stays out of the way: this is about the write and read paths.
        repair: { interval: '1h', startDelay: '1h', bandwidth: '50MiB', concurrency: 4, rebalance: false }
      },
      node: { heartbeatIntervalMs: 1000, storage: { capacity: '1GiB' } },
      nodes: 3
    }))
  })

  after(async () => { await cleanup.run() })

  it('the breaker opens, writes and reads succeed on the other nodes, and the failing node is left alone', async () => {
    // Written while every node is healthy: some of its chunks live on the node about to fail.
    const early = await put()
    const victim = nodes[2]
    const victimId: string = victim.status.peerId
    assert.ok((await locate(early.path)).some(c => c.nodes.some(n => n.peerId === victimId)), 'the victim holds part of the first file')

    const chunkDir = join(victim.dir, 'data', 'chunks')
    await rename(chunkDir, `${chunkDir}.away`)
    await writeFile(chunkDir, 'not a folder any more\n')
    const failedBefore = await failedPuts(victim)

    // Writes go on; the victim is picked for some chunks and fails them until its breaker opens.
    await waitFor('the victim\'s breaker open', async () => {
      await put()
      const s = await call(coordinator.socket, 'status')
      return (s.circuitBreakers as Array<{ peer: string, state: string }>).some(b => b.peer === victimId && b.state === 'open')
    }, 120_000, 0)
    const openedAt = Date.now()
    const status = await call(coordinator.socket, 'status')
    const breaker = status.circuitBreakers.find((b: any) => b.peer === victimId)
    assert.ok(breaker.failures >= 5, `opened after repeated failures: ${JSON.stringify(breaker)}`)
    const metrics = await scrape(coordinator)
    assert.ok(sample(metrics, 'collective_circuit_breaker_opens_total{peer_role="node"}') >= 1)
    assert.equal(sample(metrics, 'collective_circuit_breakers{peer_role="node",state="open"}'), 1)
    assert.ok(await failedPuts(victim) - failedBefore >= 5, 'the failures were the node\'s own: it answered with errors')
    // Not dead, not even suspect: it is the breaker that keeps traffic away.
    assert.ok(victim.proc.exitCode == null && victim.proc.signalCode == null, 'the failing node still runs')
    assert.equal((await call(coordinator.socket, 'nodes')).find((n: any) => n.peerId === victimId).state, 'alive')

    // With the breaker open, writes succeed on the two others and the victim is hardly asked.
    const failedAtOpen = await failedPuts(victim)
    const later: Array<{ path: string, bytes: Buffer }> = []
    for (let i = 0; i < FILES_AFTER_OPEN; i++) later.push(await put())
    const elapsed = Date.now() - openedAt
    for (const f of later) {
      for (const c of await locate(f.path)) {
        assert.equal(c.nodes.length, 2, `${f.path} chunk ${c.cid} has 2 copies`)
        assert.ok(!c.nodes.some(n => n.peerId === victimId), `${f.path} chunk ${c.cid} is not on the failing node`)
      }
    }
    const asked = await failedPuts(victim) - failedAtOpen
    // At most one half-open probe per cool-down (each failed probe doubles it) plus one in flight at the opening;
    // without the breaker the victim would be picked for about two thirds of the 48 chunks.
    const probes = Math.ceil(elapsed / COOLDOWN_MS) + 1
    console.log(`# breaker open after ${breaker.failures as number} failures; ${FILES_AFTER_OPEN * 8} chunks written in ${elapsed} ms, the failing node asked ${asked} times (bound ${probes})`)
    assert.ok(asked <= probes, `the failing node was asked ${asked} times in ${elapsed} ms with its breaker open`)

    // Reads: the first file, part of which is on the failing node, comes back whole from the other replicas, and
    // the node whose breaker is open is not even asked (it is tried last, and the others answer).
    const gets = async (): Promise<number> => { const t = await scrape(victim); return sample(t, 'collective_chunk_operations_total{op="get",result="ok"}') + sample(t, 'collective_chunk_operations_total{op="get",result="error"}') }
    const getsBefore = await gets()
    for (const f of [early, ...later]) {
      const out = join(work, `${f.path.slice(1)}.out`)
      const r = await cli(['get', f.path, out, '--home', coordinator.dir], { timeoutMs: 120_000 })
      assert.equal(r.code, 0, `get ${f.path}: ${r.stderr}`)
      assert.ok((await readFile(out)).equals(f.bytes), `${f.path} reads back byte-identical`)
    }
    assert.equal(await gets() - getsBefore, 0, 'no read went to the failing node')
    const end = await call(coordinator.socket, 'status')
    assert.ok(end.circuitBreakers.some((b: any) => b.peer === victimId && ['open', 'half_open'].includes(b.state)), `still not closed: ${JSON.stringify(end.circuitBreakers)}`)
  })
})
