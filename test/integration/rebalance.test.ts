import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { call } from '../../src/control/client.js'
import { Cleanup, cli, startOneMember, waitFor } from '../helpers/daemons.js'
import { sample, scrape } from '../helpers/metrics.js'
import type { OneMember, RunningDaemon } from '../helpers/daemons.js'

/**
 * Rebalancing toward a node that joins, with real daemons: one member, a coordinator and two 64 MiB storage nodes
 * as separate processes on 127.0.0.1, replication 2. 40 MB are written (each node 60 % full), then a third node
 * starts. The repairer moves chunks onto it within its bandwidth budget (4 MiB/s here, so the move is gradual and
 * observable) until no node is more than 10 % above the average fill; every chunk keeps its 2 copies throughout.
 */

const MB = 1_000_000
const FILES = 4
const FILE_MB = 10
const BUDGET_MIB = 4

const cleanup = new Cleanup()
let coordinator: RunningDaemon
let nodes: RunningDaemon[]
let addNode: OneMember['addNode']
let work: string

/** What each node's own store holds */
async function fills (): Promise<Array<{ used: number, fill: number, chunks: number }>> {
  return await Promise.all(nodes.map(async n => {
    const { storage } = await call(n.socket, 'status')
    return { used: storage.usedBytes, fill: storage.usedBytes / storage.capacityBytes, chunks: storage.chunks }
  }))
}

async function copiesPerChunk (): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < FILES; i++) {
    for (const c of await call(coordinator.socket, 'fs.locate', { path: `/f${i}` })) out.push(c.nodes.length)
  }
  return out
}

describe('rebalancing: chunks move gradually toward a node that joined', () => {
  before(async () => {
    work = await cleanup.tempDir('collective-rebalance-work-')
    ;({ coordinator, nodes, addNode } = await startOneMember(cleanup, {
      coordinator: {
        heartbeatIntervalMs: 1000,
        storage: { replication: 2, gcGrace: '1h', gcInterval: '1m' },
        repair: { interval: '1s', startDelay: '1s', bandwidth: `${BUDGET_MIB}MiB`, concurrency: 4 }
      },
      coordinatorEnv: { DEBUG: 'collective:repair*' },
      node: { heartbeatIntervalMs: 1000, storage: { capacity: '64MiB' } },
      nodes: 2
    }))
  })

  after(async () => { await cleanup.run() })

  it('a third node receives chunks until fills even out; every chunk stays at 2 copies', async () => {
    const contents: Buffer[] = []
    for (let i = 0; i < FILES; i++) {
      const local = join(work, `f${i}`)
      contents.push(randomBytes(FILE_MB * MB))
      await writeFile(local, contents[i])
      const r = await cli(['put', local, `/f${i}`, '--home', coordinator.dir], { timeoutMs: 120_000 })
      assert.equal(r.code, 0, r.stderr)
    }
    const before = await fills()
    assert.ok(before.every(f => f.fill > 0.55), `both nodes hold every chunk: ${JSON.stringify(before)}`)
    const chunks = (await copiesPerChunk()).length

    const joined = await addNode('node-03')
    const joinedAt = Date.now()
    const samples: number[][] = []
    let receivingSince: number | undefined
    let moves = -1
    let movesSince = Date.now()
    // Polled while the moves go on: a chunk must never drop below its 2 copies, and the moves must be gradual.
    await waitFor('fills even out', async () => {
      const copies = await copiesPerChunk()
      samples.push(copies)
      assert.ok(copies.every(c => c >= 2), `a chunk fell below 2 copies: ${copies.join(',')}`)
      const d = (await call(coordinator.socket, 'durability', { path: '/' })).dataStores[0]
      assert.equal(d.belowTarget, 0)
      const f = await fills()
      const avg = f.reduce((s, x) => s + x.used, 0) / (3 * 64 * 1024 * 1024)
      // Done: a pass that moved nothing ended after node-03 received chunks, and the nodes' stores hold exactly the
      // copies the metadata records (a move copies, then deletes). Not "node-03 holds every chunk moved": once it
      // has its share, a move between the two old nodes is as legitimate as one toward it.
      // And no move for 3 s, a few heartbeats: a pass can find nothing to move while the nodes' reports still lag
      // the last moves, and move one or two more once they come in.
      const status = await call(coordinator.socket, 'repair.status')
      if (status.rebalance.movedChunks !== moves) {
        moves = status.rebalance.movedChunks
        movesSince = Date.now()
      }
      if (f[2].chunks === 0) return false
      receivingSince ??= Date.now()
      const stored = f.reduce((s, x) => s + x.chunks, 0)
      const recorded = copies.reduce((s, c) => s + c, 0)
      if (status.running === true || status.last?.moved !== 0 || status.last.endedAt <= receivingSince || stored !== recorded) return false
      if (Date.now() - movesSince < 3000) return false
      // Within the tolerance (10 % of the average), give or take the one 1 MiB chunk a move is made of.
      assert.ok(f.every(x => x.fill <= avg * 1.1 + 1 / 64), `rebalancing stopped short: ${JSON.stringify(f)}`)
      return true
    }, 120_000, 250).catch(async err => {
      throw new Error(`${err.message as string}\nfills ${JSON.stringify(await fills())}\nrepair ${JSON.stringify(await call(coordinator.socket, 'repair.status'))}\n${coordinator.output().split('\n').filter(l => /rebalance|moved|repair/.test(l)).slice(-20).join('\n')}`)
    })
    const ms = Date.now() - joinedAt
    const after = await fills()
    console.log(`# node-03 joined: fills ${after.map(f => f.fill.toFixed(3)).join(' / ')} after ${ms} ms (budget ${BUDGET_MIB} MiB/s)`)
    const moved = after[2].used
    // Gradual: the budget bounds the pace (one second's burst on top).
    assert.ok(ms >= (moved / (BUDGET_MIB * 1024 * 1024) - 1) * 1000, `${moved} bytes moved in ${ms} ms is faster than the budget`)
    assert.ok(samples.length >= 3, 'observed in the middle of the moves')
    const ratio = Math.max(...after.map(f => f.fill)) / Math.min(...after.map(f => f.fill))
    assert.ok(ratio <= 1.5, `largest / smallest fill ${ratio}`)
    assert.ok(after[2].fill > 0.3, `node-03 took its share: ${after[2].fill}`)

    // Copy then delete: each chunk on exactly 2 nodes again, and the old copies really gone from the givers' disks.
    await waitFor('exactly 2 copies of every chunk, on disk too', async () => {
      const copies = await copiesPerChunk()
      const f = await fills()
      return copies.every(c => c === 2) && f.reduce((s, x) => s + x.chunks, 0) === 2 * chunks
    }, 30_000, 250)
    const status = await call(coordinator.socket, 'repair.status')
    // node-03 started empty, so each chunk it holds is a move; moves between the old nodes count too
    assert.ok(status.rebalance.movedChunks >= after[2].chunks, `${String(status.rebalance.movedChunks)} moves for the ${after[2].chunks} chunks node-03 holds`)
    await new Promise(resolve => setTimeout(resolve, 3000))
    assert.equal((await call(coordinator.socket, 'repair.status')).rebalance.movedChunks, status.rebalance.movedChunks, 'once even, it stops')
    assert.equal(status.repairedChunks, 0, 'nothing was lost, so nothing was repaired')
    assert.equal(sample(await scrape(coordinator), 'collective_repair_rebalanced_chunks_total'), status.rebalance.movedChunks)
    assert.ok(joined.proc.exitCode == null)

    for (let i = 0; i < FILES; i++) {
      const out = join(work, `out${i}`)
      assert.equal((await cli(['get', `/f${i}`, out, '--home', coordinator.dir], { timeoutMs: 120_000 })).code, 0)
      assert.ok((await readFile(out)).equals(contents[i]), `/f${i} reads back byte-identical`)
    }
  })
})
