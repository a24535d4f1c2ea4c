import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { call } from '../../src/control/client.js'
import { Cleanup, cli, waitFor } from '../../test/helpers/daemons.js'
import { MemberFederation } from '../../test/helpers/members.js'

/**
 * A federation of three members — alice, bob and carol — each with a coordinator and two storage nodes, all
 * separate processes on 127.0.0.1 with real certificates. Bob and carol know only alice's coordinator; everything
 * else is discovered through SWIM and gossip.
 */

const PROBE_INTERVAL_MS = 1_000
const PROBE_TIMEOUT_MS = 600
const SUSPICION_TIMEOUT_MS = 3_000
const SYNC_INTERVAL_MS = 2_000
// The bound: declared dead everywhere within the suspicion timeout plus two probe periods of the first
// suspicion. Detection itself waits for a probe of the dead peer: with 8 others probing round-robin, one of them
// reaches it within about one period, but on this shared 2-core machine allow a few more.
const DETECTION_BOUND_MS = SUSPICION_TIMEOUT_MS + 2 * PROBE_INTERVAL_MS + 5 * PROBE_INTERVAL_MS

const cleanup = new Cleanup()
let fed: MemberFederation
let work: string

function allNames (): string[] {
  return [...fed.peers.values()].map(p => p.name)
}

async function sha256 (path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex')
}

describe('federation: three members, SWIM membership, gossip and cross-member replication', () => {
  before(async () => {
    work = await cleanup.tempDir('collective-fed-work-')
    fed = await MemberFederation.create(cleanup, {
      nodes: 2,
      federation: { probeInterval: `${PROBE_INTERVAL_MS}ms`, probeTimeout: `${PROBE_TIMEOUT_MS}ms`, suspicionTimeout: `${SUSPICION_TIMEOUT_MS}ms`, syncInterval: `${SYNC_INTERVAL_MS}ms`, announceInterval: '1s' }
    })
    await fed.startAll()
  })

  after(async () => { await cleanup.run() })

  it('all members converge: every coordinator sees all nine peers alive, with certified names', async () => {
    const ms = await fed.converge('all nine peers alive', view => allNames().every(n => view.get(n)?.state === 'alive'), 60_000)
    console.log(`converged in ${ms} ms`)
    const view = await fed.members('coordinator.carol')
    assert.equal(view.get('node-02@home.collective.local')?.member, 'alice')
    assert.equal(view.get('coordinator@garage.collective.local')?.role, 'coordinator')
    const r = await cli(['members', '--home', fed.peer('coordinator.bob').dir])
    assert.equal(r.code, 0, r.stderr)
    for (const n of allNames()) assert.ok(r.stdout.includes(n), `members lists ${n}:\n${r.stdout}`)
    // Membership shows in the metrics: members by state, probes answered, anti-entropy exchanges.
    const url = String((await call(fed.socket('coordinator.bob'), 'status')).metrics)
    await waitFor('the metrics to count nine live members, answered probes and an anti-entropy exchange', async () => {
      const metrics = await (await fetch(url)).text()
      return /collective_members\{state="alive"\} 9\n/.test(metrics) &&
        /collective_probe_duration_seconds_count\{kind="direct"\} [1-9]/.test(metrics) &&
        /collective_anti_entropy_runs_total\{result="ok"\} [1-9]/.test(metrics)
    }, 20_000)
  })

  it('resolve maps a federated name to its peer ID and addresses, and a peer ID back to its name', async () => {
    const target = fed.peer('node-01.carol')
    const byName = await cli(['resolve', target.name, '--json', '--home', fed.peer('coordinator.alice').dir])
    assert.equal(byName.code, 0, byName.stderr)
    const r = JSON.parse(byName.stdout)
    assert.equal(r.peerId, target.peerId)
    assert.ok(r.addrs.some((a: string) => a.includes(`/tcp/${target.port}`)), `addresses of ${target.key}: ${String(r.addrs)}`)
    const byId = JSON.parse((await cli(['resolve', target.peerId!, '--json', '--home', fed.peer('coordinator.bob').dir])).stdout)
    assert.equal(byId.name, target.name)
    const unknown = await cli(['resolve', 'node-09@garage.collective.local', '--home', fed.peer('coordinator.bob').dir])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /UnknownPeerNameError/)
  })

  let fileHash: string
  it('a file alice writes is replicated on other members\' nodes', async () => {
    // Alice's coordinator must know the other members' nodes with their capacity, or it has nowhere else to place.
    await waitFor('alice to know six live nodes', async () => (await call(fed.socket('coordinator.alice'), 'federation.nodes')).filter((n: any) => n.state === 'alive').length === 6, 30_000)
    const file = join(work, 'photos.bin')
    await writeFile(file, randomBytes(12 * 1024 * 1024 + 17))
    fileHash = await sha256(file)
    const r = await cli(['put', file, '/photos.bin', '--home', fed.peer('coordinator.alice').dir], { timeoutMs: 120_000 })
    assert.equal(r.code, 0, r.stderr)
    const where = await call(fed.socket('coordinator.alice'), 'fs.locate', { path: '/photos.bin' }) as Array<{ cid: string, nodes: Array<{ name: string }> }>
    assert.equal(where.length, 13)
    for (const chunk of where) {
      assert.equal(chunk.nodes.length, 2, `chunk ${chunk.cid} has ${chunk.nodes.length} replicas`)
      const domains = new Set(chunk.nodes.map(n => n.name.split('@')[1]))
      assert.equal(domains.size, 2, `the two replicas of ${chunk.cid} are on distinct members: ${chunk.nodes.map(n => n.name).join(', ')}`)
    }
  })

  it('DataStore strategies decide where replicas land: backup one per member, media on the writer\'s own nodes first', async () => {
    const home = fed.peer('coordinator.alice').dir
    for (const args of [['datastore', 'create', '/vault', '--strategy', 'backup', '--replicas', '3'], ['datastore', 'create', '/films', '--strategy', 'media', '--replicas', '2']]) {
      const r = await cli([...args, '--home', home])
      assert.equal(r.code, 0, r.stderr)
    }
    for (const remote of ['/vault/mixed.bin', '/films/mixed.bin']) {
      // Different bytes for each: the same chunks would be deduplicated, keeping the first file's placement.
      const file = join(work, remote.replace(/\//g, '_'))
      await writeFile(file, randomBytes(6 * 1024 * 1024 + 5))
      const r = await cli(['put', file, remote, '--home', home], { timeoutMs: 120_000 })
      assert.equal(r.code, 0, r.stderr)
    }
    const vault = await call(fed.socket('coordinator.alice'), 'fs.locate', { path: '/vault/mixed.bin' }) as Array<{ nodes: Array<{ name: string }> }>
    for (const chunk of vault) {
      assert.deepEqual(chunk.nodes.map(n => n.name.split('@')[1]).sort(), ['garage.collective.local', 'home.collective.local', 'office.collective.local'], 'backup: exactly one replica per member')
    }
    const films = await call(fed.socket('coordinator.alice'), 'fs.locate', { path: '/films/mixed.bin' }) as Array<{ nodes: Array<{ name: string }> }>
    for (const chunk of films) {
      assert.equal(chunk.nodes.length, 2)
      // Alice has two nodes of her own, both far below the group's fill: media keeps both copies at home.
      assert.ok(chunk.nodes.every(n => n.name.endsWith('@home.collective.local')), `media: alice's own nodes first, got ${chunk.nodes.map(n => n.name).join(', ')}`)
    }
    const metrics = await (await fetch(String((await call(fed.socket('coordinator.alice'), 'status')).metrics))).text()
    assert.match(metrics, /collective_placement_operations_total\{strategy="media"\} [1-9]/)
    assert.match(metrics, /collective_placement_operations_total\{strategy="backup"\} [1-9]/)
  })

  it('a node killed with kill -9 is suspected, then declared dead everywhere in time; alice still reads her file', async () => {
    // The victim: a node of bob or carol that holds replicas of the file.
    const where = await call(fed.socket('coordinator.alice'), 'fs.locate', { path: '/photos.bin' }) as Array<{ nodes: Array<{ name: string }> }>
    const victim = ['node-01.bob', 'node-02.bob', 'node-01.carol', 'node-02.carol'].map(k => fed.peer(k)).find(p => where.some(c => c.nodes.some(x => x.name === p.name)))
    assert.ok(victim != null)
    const killedAt = Date.now()
    victim.daemon!.proc.kill('SIGKILL')
    await fed.converge(`${victim.name} suspect or dead`, view => ['suspect', 'dead'].includes(view.get(victim.name)?.state), DETECTION_BOUND_MS)
    await fed.converge(`${victim.name} dead`, view => view.get(victim.name)?.state === 'dead', DETECTION_BOUND_MS)
    const elapsed = Date.now() - killedAt
    console.log(`${victim.name} declared dead at every coordinator ${elapsed} ms after kill -9 (bound ${DETECTION_BOUND_MS} ms)`)
    assert.ok(elapsed <= DETECTION_BOUND_MS, `declared dead everywhere after ${elapsed} ms; bound ${DETECTION_BOUND_MS} ms`)

    const out = join(work, 'photos.copy')
    const r = await cli(['get', '/photos.bin', out, '--home', fed.peer('coordinator.alice').dir], { timeoutMs: 120_000 })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(await sha256(out), fileHash, 'the file reads back byte-identical from the surviving replicas')

    await fed.start(victim.key)
    const backIn = await fed.converge(`${victim.name} alive again`, view => view.get(victim.name)?.state === 'alive', 30_000)
    console.log(`${victim.name} alive again everywhere ${backIn} ms after restart`)
  })

  it('a restarted coordinator catches up with the whole federation', async () => {
    const carol = fed.peer('coordinator.carol')
    assert.equal(await carol.daemon!.stop(), 0)
    // Bob's node killed while carol's coordinator is down: carol can only learn of it from the others.
    const bobNode = fed.peer('node-02.bob')
    bobNode.daemon!.proc.kill('SIGKILL')
    await fed.converge('node-02 of bob dead', view => view.get(bobNode.name)?.state === 'dead', DETECTION_BOUND_MS + 20_000, ['coordinator.alice', 'coordinator.bob'])
    await fed.start('coordinator.carol')
    const ms = await fed.converge('the whole federation, with bob\'s node-02 dead', view =>
      allNames().filter(n => n !== bobNode.name).every(n => view.get(n)?.state === 'alive') && view.get(bobNode.name)?.state === 'dead',
    30_000, ['coordinator.carol'])
    console.log(`restarted coordinator caught up in ${ms} ms`)
  })
})
