import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { call } from '../../src/control/client.js'
import { Cleanup, cli, startOneMember, waitFor } from '../helpers/daemons.js'
import { sample, scrape } from '../helpers/metrics.js'
import type { RunningDaemon } from '../helpers/daemons.js'

/**
 * Popularity-based replication with real daemons: one member, a coordinator and four storage nodes as separate
 * processes on 127.0.0.1, replication 2, at most 4 copies of a hot chunk. A file read again and again gets its
 * chunks copied to 4 nodes by the repairer; once the reads stop and the counts decay (a 10 s half-life here), the
 * extra copies are deleted again, from the nodes' disks too, and every chunk is back at exactly 2.
 */

const HALF_LIFE_S = 10
// Hot at 4 decayed reads; 4 copies (2 + 2) from 8. A dozen reads in a few seconds is well past it.
const HOT_THRESHOLD = 4
const READS = 12
const FILE_BYTES = 300_000 // 64 KiB chunks: 5 of them

const cleanup = new Cleanup()
let coordinator: RunningDaemon
let nodes: RunningDaemon[]
let work: string

async function locate (path: string): Promise<Array<{ cid: string, nodes: Array<{ peerId: string, name: string }> }>> {
  return await call(coordinator.socket, 'fs.locate', { path })
}

/** Chunks each node's store holds, from the nodes themselves */
async function storedChunks (): Promise<number> {
  let total = 0
  for (const n of nodes) total += (await call(n.socket, 'status')).storage.chunks as number
  return total
}

async function explain (err: Error): Promise<never> {
  const status = await call(coordinator.socket, 'repair.status').catch(() => undefined)
  throw new Error(`${err.message}\nrepair: ${JSON.stringify(status)}\nlocations: ${JSON.stringify((await locate('/hot.bin')).map(c => c.nodes.length))}\n${coordinator.output().split('\n').filter(l => /repair|hot/.test(l)).slice(-30).join('\n')}`)
}

describe('popularity: hot content gains replicas up to the maximum and gives them back as it cools', () => {
  before(async () => {
    work = await cleanup.tempDir('collective-popularity-work-')
    ;({ coordinator, nodes } = await startOneMember(cleanup, {
      coordinator: {
        heartbeatIntervalMs: 1000,
        storage: { replication: 2, gcGrace: '1h', gcInterval: '1m' },
        repair: { interval: '1s', startDelay: '1s', bandwidth: '50MiB', concurrency: 4 },
        popularity: { maxReplicas: 4, halfLife: `${HALF_LIFE_S}s`, hotThreshold: HOT_THRESHOLD }
      },
      coordinatorEnv: { DEBUG: 'collective:repair*' },
      node: { heartbeatIntervalMs: 1000, storage: { capacity: '1GiB' } },
      nodes: 4
    }))
  })

  after(async () => { await cleanup.run() })

  it('a file read repeatedly reaches 4 copies per chunk; after the reads stop it falls back to 2, on disk too', async () => {
    const local = join(work, 'hot.bin')
    const bytes = randomBytes(FILE_BYTES)
    await writeFile(local, bytes)
    const put = await cli(['put', local, '/hot.bin', '--home', coordinator.dir])
    assert.equal(put.code, 0, put.stderr)
    const chunks = (await locate('/hot.bin')).length
    assert.equal(chunks, 5)
    assert.ok((await locate('/hot.bin')).every(c => c.nodes.length === 2))
    await waitFor('every chunk on the nodes\' disks twice', async () => await storedChunks() === 2 * chunks, 20_000, 200)
    const readsBefore = sample(await scrape(coordinator), 'collective_popularity_chunk_reads_total')

    for (let i = 0; i < READS; i++) {
      const out = join(work, `copy-${i}`)
      const r = await cli(['get', '/hot.bin', out, '--home', coordinator.dir])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(createHash('sha256').update(await readFile(out)).digest('hex'), createHash('sha256').update(bytes).digest('hex'))
    }
    const hotAt = Date.now()
    const reads = await scrape(coordinator)
    assert.equal(sample(reads, 'collective_popularity_chunk_reads_total') - readsBefore, READS * chunks, 'every chunk read is counted once')

    await waitFor('every chunk at 4 copies', async () => (await locate('/hot.bin')).every(c => c.nodes.length === 4), 30_000, 200).catch(explain)
    console.log(`# ${READS} reads: every chunk at 4 copies ${Date.now() - hotAt} ms after the last read`)
    assert.equal(await storedChunks(), 4 * chunks, 'the extra copies are on the nodes\' disks')
    const hot = await call(coordinator.socket, 'repair.status')
    assert.equal(hot.popularity.maxReplicas, 4)
    assert.equal(hot.popularity.hotChunks, chunks)
    assert.equal(hot.repairedChunks, 0, 'extra copies of hot chunks are not counted as repairs')
    const afterHot = await scrape(coordinator)
    assert.equal(sample(afterHot, 'collective_repair_hot_replicas_total'), 2 * chunks)
    assert.equal(sample(afterHot, 'collective_popularity_hot_chunks'), chunks)
    const hotReport = (await call(coordinator.socket, 'durability', { path: '/' })).dataStores[0]
    assert.equal(hotReport.belowTarget, 0)
    assert.equal(hotReport.hot, chunks)
    const text = await cli(['durability', '--home', coordinator.dir])
    assert.match(text.stdout, new RegExp(`hot +${chunks} \\(read often`))

    // The reads stop. Each extra copy goes once the count is down to half the level that earned it: ~12 decayed
    // reads fall below 4 (3 copies) after ~16 s and below 2 (2 copies) after ~26 s.
    await waitFor('every chunk back at 2 copies', async () => (await locate('/hot.bin')).every(c => c.nodes.length === 2), 90_000, 250).catch(explain)
    const cooledMs = Date.now() - hotAt
    console.log(`# cooled: every chunk back at 2 copies ${cooledMs} ms after the last read (half-life ${HALF_LIFE_S} s)`)
    assert.ok(cooledMs >= HALF_LIFE_S * 1000, `not before the counts decayed (${cooledMs} ms)`)
    await waitFor('the extra copies gone from the nodes\' disks', async () => await storedChunks() === 2 * chunks, 20_000, 200)
    const cooled = await scrape(coordinator)
    assert.equal(sample(cooled, 'collective_repair_trimmed_replicas_total'), 2 * chunks)
    assert.equal(sample(cooled, 'collective_popularity_hot_chunks'), 0)
    for (const c of await locate('/hot.bin')) assert.equal(new Set(c.nodes.map(n => n.peerId)).size, 2)
    // Still readable, and never below the replication factor on the way down.
    const d = await call(coordinator.socket, 'durability', { path: '/' })
    assert.equal(d.dataStores[0].belowTarget, 0)
    assert.equal(d.dataStores[0].hot, 0)
    const out = join(work, 'after')
    assert.equal((await cli(['get', '/hot.bin', out, '--home', coordinator.dir])).code, 0)
    assert.deepEqual(await readFile(out), bytes)
  })
})
