// The polyfill must run before libp2p is loaded (provisioning pulls in @libp2p/crypto).
import '../src/polyfill.js'
import { loadavg, cpus } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { call } from '../src/control/client.js'
import { Cleanup, TestFederation, cli, startDaemon, waitFor } from '../test/helpers/daemons.js'
import { writeRandomFile } from './lib/files.js'
import type { RunningDaemon } from '../test/helpers/daemons.js'
import { log, positive, round, UsageError } from './lib/args.js'

const USAGE = `Usage: npm run bench:repair [-- OPTIONS]

Starts an unequal federation of four members (alice, bob, carol, dave), each with a coordinator and one storage
node of 1, 2, 3 and 4 GiB, replication 2, all separate processes on 127.0.0.1. Alice writes a mixed workload
(small, medium and large files); the benchmark reports each node's fill ratio (used / capacity) after the writes
and again once rebalancing has settled (the ratio checked against the target), then kills bob's
node with SIGKILL and times how long alice's coordinator takes to bring every chunk back to its replication factor
on live nodes, and the repair throughput against the configured budget. Prints one JSON object on stdout;
progress goes to stderr. 1 MB = 10^6 bytes.

Options:
  --mb MB           data volume written (default 200)
  --budget MIB      repair.bandwidth in MiB/s (default 20)
  --help            this text

Exit status: 0 when everything was measured, whether or not the target was met; 1 when a measurement failed.`

/** The target: the fullest node at most 1.5 times as full as the emptiest */
const FILL_RATIO_TARGET = 1.5
const MEMBERS = [
  { name: 'alice', domain: 'home.collective.local', capacityGiB: 1 },
  { name: 'bob', domain: 'garage.collective.local', capacityGiB: 2 },
  { name: 'carol', domain: 'office.collective.local', capacityGiB: 3 },
  { name: 'dave', domain: 'cabin.collective.local', capacityGiB: 4 }
]
const HEARTBEAT_MS = 1_500
// SWIM only suspects here: a node's death is its coordinator's call (6 missed heartbeats), announced to the
// others. On a loaded shared machine SWIM declared live nodes dead, which would time phantom repairs.
const FEDERATION = { probeInterval: '2s', probeTimeout: '1500ms', suspicionTimeout: '10m', syncInterval: '3s', announceInterval: '1s' }


/** Sizes of the mixed workload adding up to `total` bytes: a third in 200 KB files, a third in 8 MB, the rest large */
function workload (total: number): number[] {
  const sizes: number[] = []
  for (let left = Math.floor(total / 3); left > 0; left -= 200_000) sizes.push(Math.min(left, 200_000))
  for (let left = Math.floor(total / 3); left > 0; left -= 8_000_000) sizes.push(Math.min(left, 8_000_000))
  sizes.push(total - sizes.reduce((s, n) => s + n, 0))
  return sizes.filter(n => n > 0)
}

interface Peers { coordinators: Map<string, RunningDaemon>, nodes: Map<string, RunningDaemon> }

async function startFederation (cleanup: Cleanup, budgetMiB: number): Promise<Peers> {
  const fed = await TestFederation.create(cleanup)
  for (const m of MEMBERS) await fed.member(m.name, m.domain)
  const peers: Peers = { coordinators: new Map(), nodes: new Map() }
  let bootstrap: string[] = []
  for (const m of MEMBERS) {
    const dir = await fed.component(m.name, 'coordinator', 'coordinator', {
      heartbeatIntervalMs: HEARTBEAT_MS,
      federation: { ...FEDERATION, bootstrap },
      storage: { replication: 2, gcGrace: '1h', gcInterval: '1m' },
      repair: { interval: '2s', startDelay: '1s', bandwidth: `${budgetMiB}MiB`, concurrency: 4 }
    })
    log(`starting ${m.name}'s coordinator`)
    const d = await startDaemon(cleanup, dir, [], {}, 120_000)
    peers.coordinators.set(m.name, d)
    // The others join through alice's coordinator, at the address it reports (its listen address has /p2p/).
    if (bootstrap.length === 0) bootstrap = [(d.status.listen as string[])[0]]
  }
  for (const m of MEMBERS) {
    const dir = await fed.component(m.name, 'node-01', 'node', {
      heartbeatIntervalMs: HEARTBEAT_MS,
      federation: FEDERATION,
      storage: { capacity: `${m.capacityGiB}GiB` }
    })
    const c = peers.coordinators.get(m.name) as RunningDaemon
    const addr = (c.status.listen as string[])[0]
    log(`starting ${m.name}'s node (${m.capacityGiB} GiB)`)
    peers.nodes.set(m.name, await startDaemon(cleanup, dir, ['--coordinator', addr], {}, 120_000))
  }
  const alice = peers.coordinators.get('alice') as RunningDaemon
  await waitFor('alice to know all four nodes alive', async () =>
    (await call(alice.socket, 'federation.nodes')).filter((n: any) => n.state !== 'dead').length === MEMBERS.length, 180_000, 500)
  return peers
}

async function fills (peers: Peers): Promise<Record<string, { usedBytes: number, capacityBytes: number, fill: number }>> {
  const out: Record<string, { usedBytes: number, capacityBytes: number, fill: number }> = {}
  for (const [member, d] of peers.nodes) {
    if (d.proc.exitCode != null || d.proc.signalCode != null) continue
    const { storage } = await call(d.socket, 'status')
    out[member] = { usedBytes: storage.usedBytes, capacityBytes: storage.capacityBytes, fill: round(storage.usedBytes / storage.capacityBytes, 5) }
  }
  return out
}

async function main (): Promise<number> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { mb: { type: 'string' }, budget: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true })
  if (values.help === true) { console.log(USAGE); return 0 }
  const totalBytes = Math.round(positive('mb', values.mb, 200) * 1e6)
  const budgetMiB = positive('budget', values.budget, 20)
  const cleanup = new Cleanup()
  const onSignal = (): void => { void cleanup.run().finally(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const peers = await startFederation(cleanup, budgetMiB)
    const alice = peers.coordinators.get('alice') as RunningDaemon
    const work = await cleanup.tempDir('collective-bench-repair-')
    const sizes = workload(totalBytes)
    log(`writing ${sizes.length} files, ${round(totalBytes / 1e6, 1)} MB`)
    const writeStart = performance.now()
    for (const [i, size] of sizes.entries()) {
      const local = join(work, `f${i}`)
      await writeRandomFile(local, size)
      const r = await cli(['put', local, `/f${i}`, '--home', alice.dir], { timeoutMs: 600_000 })
      if (r.code !== 0) throw new Error(`put of ${size} bytes failed: ${r.stderr}`)
    }
    const writeSeconds = (performance.now() - writeStart) / 1000
    const ratioOf = (f: Awaited<ReturnType<typeof fills>>): number => {
      const ratios = Object.values(f).map(x => x.fill)
      return round(Math.max(...ratios) / Math.min(...ratios), 3)
    }
    const written = await fills(peers)
    log(`fill ratios after the writes ${JSON.stringify(written)}: largest / smallest ${ratioOf(written)}`)
    // Rebalancing evens out what placement left uneven: measured once alice's repairer has a pass that moved
    // nothing, begun after the writes ended.
    const writesEnded = Date.now()
    const rebalanceStart = performance.now()
    const movedBefore = (await call(alice.socket, 'repair.status')).rebalance?.movedBytes ?? 0
    await waitFor('rebalancing to settle', async () => {
      const s = await call(alice.socket, 'repair.status')
      return s.running === false && s.last?.moved === 0 && s.last.endedAt - s.last.seconds * 1000 > writesEnded
    }, 600_000, 500)
    const rebalanceSeconds = (performance.now() - rebalanceStart) / 1000
    const rebalancedBytes = ((await call(alice.socket, 'repair.status')).rebalance?.movedBytes ?? 0) - movedBefore
    // The nodes report their fill with their heartbeat; the moves' deletes land within one.
    await new Promise(resolve => setTimeout(resolve, 2 * HEARTBEAT_MS))
    const before = await fills(peers)
    const fillRatio = ratioOf(before)
    log(`fill ratios after rebalancing ${round(rebalancedBytes / 1e6, 1)} MB in ${round(rebalanceSeconds, 1)} s ${JSON.stringify(before)}: largest / smallest ${fillRatio}`)

    const victim = peers.nodes.get('bob') as RunningDaemon
    const lost = (await call(alice.socket, 'durability', { path: '/' })).dataStores[0].members
      .find((m: any) => m.domain === MEMBERS[1].domain)?.bytes ?? 0
    const repairedBefore = (await call(alice.socket, 'repair.status')).repairedBytes as number
    log(`killing bob's node (SIGKILL), which holds ${round(lost / 1e6, 1)} MB of alice's chunks`)
    const killedAt = performance.now()
    victim.proc.kill('SIGKILL')
    let detectedAt = 0
    await waitFor('every chunk back at its replication factor', async () => {
      const d = (await call(alice.socket, 'durability', { path: '/' })).dataStores[0]
      if (detectedAt === 0 && d.belowTarget > 0) detectedAt = performance.now()
      return detectedAt > 0 && d.belowTarget === 0
    }, 900_000, 200)
    const restoredAt = performance.now()
    const repairedBytes = (await call(alice.socket, 'repair.status')).repairedBytes as number - repairedBefore
    const repairSeconds = (restoredAt - detectedAt) / 1000
    const throughput = repairedBytes / 1e6 / repairSeconds
    const budgetMBps = budgetMiB * 1024 * 1024 / 1e6
    console.log(JSON.stringify({
      machine: { cpus: cpus().length, loadavg_1m: round(loadavg()[0], 2) },
      members: MEMBERS.map(m => ({ member: m.name, node_capacity_gib: m.capacityGiB })),
      replication: 2,
      death_detection: `${6 * HEARTBEAT_MS} ms of missed heartbeats`,
      data_mb: round(totalBytes / 1e6, 1),
      files: sizes.length,
      write_seconds: round(writeSeconds, 2),
      fill_after_writes: written,
      fill_ratio_after_writes: ratioOf(written),
      rebalanced_mb: round(rebalancedBytes / 1e6, 1),
      rebalance_seconds: round(rebalanceSeconds, 2),
      fill: before,
      fill_ratio_largest_to_smallest: fillRatio,
      lost_node_mb: round(lost / 1e6, 1),
      detection_seconds: round((detectedAt - killedAt) / 1000, 2),
      restore_seconds_after_kill: round((restoredAt - killedAt) / 1000, 2),
      repair_seconds_after_detection: round(repairSeconds, 2),
      repaired_mb: round(repairedBytes / 1e6, 1),
      repair_throughput_mb_s: round(throughput, 2),
      repair_budget_mb_s: round(budgetMBps, 2),
      repair_throughput_of_budget: round(throughput / budgetMBps, 3),
      targets: { fill_ratio_max: FILL_RATIO_TARGET, fill_ratio_ok: fillRatio <= FILL_RATIO_TARGET }
    }, null, 2))
    return 0
  } catch (err: any) {
    log(`failed: ${err instanceof UsageError ? err.message : String(err.stack ?? err)}`)
    return err instanceof UsageError ? 2 : 1
  } finally {
    await cleanup.run()
  }
}

process.exitCode = await main()
