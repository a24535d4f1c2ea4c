import '../../src/polyfill.js'
import 'reflect-metadata'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { readPeerKey, readCertificateChain, TrustStore } from '../../src/identity/index.js'
import { call } from '../../src/control/client.js'
import { createHost } from '../../src/net/host.js'
import { PeerIdentities } from '../../src/net/peer-identities.js'
import { waitFor } from '../../test/helpers/daemons.js'
import { TestCollective, cpuSeconds, rssKiB } from '../helpers/collective.js'
import { CASE_KINDS, generateCase } from './frames.js'
import { Prng, randomSeed } from './prng.js'
import { FUZZ_TARGETS } from './protocols.js'
import { runCase } from './runner.js'
import type { Outcome, StreamResult } from './runner.js'
import type { FuzzTarget } from './protocols.js'
import type { Host } from '../../src/net/host.js'
import type { RunningDaemon } from '../../test/helpers/daemons.js'

// An authenticated peer (a client certified by the member's own CA) sends malformed, truncated, oversized and
// out-of-order frames on every /collective/ protocol of a real coordinator and storage node. Seeded: the seed is
// printed, FUZZ_SEED=<seed> replays the run, FUZZ_CASE=<index> replays one case; FUZZ_CASES sets how many.

const SEED = process.env.FUZZ_SEED != null ? Number(process.env.FUZZ_SEED) >>> 0 : randomSeed()
const CASES = Number(process.env.FUZZ_CASES ?? 2000)
const ONLY = process.env.FUZZ_CASE != null ? Number(process.env.FUZZ_CASE) : undefined
/**
 * Wall-clock budget: no case starts after it, so a slow machine runs fewer cases instead of overrunning CI. The
 * run still fails below MIN_CASES (when more were asked for): thousands of cases is the point.
 */
const BUDGET_MS = Number(process.env.FUZZ_BUDGET_S ?? 100) * 1000
const MIN_CASES = 1000
/** Cases in flight at once: enough to keep the daemons busy, few enough for a shared 2-core machine */
const CONCURRENCY = 8
/** How long a server may take to deal with one stream before the case counts as a hang */
const CASE_TIMEOUT_MS = 15_000
/**
 * The stated memory bound: a daemon's resident memory after the run may exceed what it was before by at most this.
 * A node legitimately buffers up to 16 streams × 4 MiB per connection while frames arrive, and V8 returns freed
 * memory to the system lazily, so the bound leaves room for that but not for anything kept per case.
 */
const RSS_BOUND_KIB = 96 * 1024

const collective = new TestCollective()
let fuzzer: Host
let targets: Array<{ daemon: RunningDaemon, role: 'coordinator' | 'node' }>

async function fuzzerHost (): Promise<Host> {
  const dir = await collective.fed.component('alice', 'fuzzer', 'client')
  const [root] = await readCertificateChain(join(dir, 'root.crt'))
  const chain = await readCertificateChain(join(dir, 'peer.crt'))
  const host = await createHost({
    privateKey: await readPeerKey(join(dir, 'peer.key')),
    role: 'client',
    chain: chain.map(c => new Uint8Array(c.rawData)),
    trustStore: new TrustStore({ root }),
    identities: new PeerIdentities()
  })
  await host.start()
  return host
}

async function storedChunks (): Promise<number[]> {
  return await Promise.all([collective.coordinator, ...collective.nodes].map(async d => (await call(d.socket, 'status')).storage.chunks))
}

function alive (d: RunningDaemon): boolean { return d.proc.exitCode == null && d.proc.signalCode == null }

describe('protocol fuzzer: an authenticated peer sends malformed frames on every /collective/ protocol', () => {
  before(async () => {
    await collective.start()
    targets = [{ daemon: collective.coordinator, role: 'coordinator' }, { daemon: collective.nodes[0], role: 'node' }]
    // data to protect: one file of a single chunk, one of several
    await collective.put('/docs/small', 50_000)
    await collective.put('/docs/large', 1_500_000)
    fuzzer = await fuzzerHost()
    for (const { daemon } of targets) await fuzzer.dial(multiaddr(daemon.status.listen[0]))
  })

  after(async () => {
    await fuzzer?.stop()
    await collective.stop()
  })

  it('has an entry for every /collective/ protocol the daemons serve', async () => {
    for (const { daemon, role } of targets) {
      const peer = peerIdFromString(daemon.status.peerId)
      const served = await waitFor(`identify with ${role}`, async () => {
        const protocols = (await fuzzer.peerStore.get(peer)).protocols.filter(p => p.startsWith('/collective/'))
        return protocols.length > 0 ? protocols.sort() : undefined
      })
      const fuzzed = FUZZ_TARGETS.filter(t => t.servedBy.includes(role)).map(t => t.protocol).sort()
      assert.deepEqual(served, fuzzed, `the ${role} serves ${served.join(', ')}; the fuzz table covers ${fuzzed.join(', ')}`)
    }
  })

  it(`answers thousands of malformed cases with an error or a closed stream, and loses nothing (seed ${SEED})`, async () => {
    console.log(`# fuzz seed ${SEED}: replay with FUZZ_SEED=${SEED} (one case: FUZZ_CASE=<index>)`)
    const plan: Array<{ target: FuzzTarget, daemon: RunningDaemon }> = FUZZ_TARGETS.flatMap(target =>
      targets.filter(t => target.servedBy.includes(t.role)).map(t => ({ target, daemon: t.daemon })))
    const chunksBefore = await storedChunks()
    const rssBefore = await Promise.all(targets.map(async t => await rssKiB(t.daemon.proc.pid as number)))

    const tally = new Map<string, number>()
    const kindMs = new Map<string, { n: number, ms: number }>()
    const failures: string[] = []
    let streams = 0
    const indices = ONLY != null ? [ONLY] : Array.from({ length: CASES }, (_, i) => i)
    let next = 0
    const stopAt = performance.now() + BUDGET_MS
    const worker = async (): Promise<void> => {
      while (next < indices.length && performance.now() < stopAt) {
        const index = indices[next++]
        const rng = Prng.forCase(SEED, index)
        const { target, daemon } = rng.pick(plan)
        const kind = rng.pick(CASE_KINDS)
        const c = generateCase(rng, kind, target)
        const t0 = performance.now()
        const results = await runCase(fuzzer, peerIdFromString(daemon.status.peerId), target.protocol, c, CASE_TIMEOUT_MS)
        streams += results.length
        const k = kindMs.get(kind) ?? { n: 0, ms: 0 }
        kindMs.set(kind, { n: k.n + 1, ms: k.ms + performance.now() - t0 })
        for (const r of results) {
          const key = `${target.protocol} ${r.outcome}`
          tally.set(key, (tally.get(key) ?? 0) + 1)
          const problem = judge(target, r)
          if (problem != null && failures.length < 20) failures.push(`case ${index} (${kind} on ${target.protocol} at ${daemon.status.name}): ${problem}`)
        }
        if (!alive(daemon)) failures.push(`case ${index} (${kind} on ${target.protocol}): ${daemon.status.name} exited`)
      }
    }
    const started = performance.now()
    const cpuBefore = await Promise.all(targets.map(async t => await cpuSeconds(t.daemon.proc.pid as number)))
    const ownCpuBefore = process.cpuUsage()
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    const seconds = (performance.now() - started) / 1000
    const cpuAfter = await Promise.all(targets.map(async t => await cpuSeconds(t.daemon.proc.pid as number)))
    const ownCpu = process.cpuUsage(ownCpuBefore)

    const ran = Math.min(next, indices.length)
    for (const { daemon } of targets) assert.ok(alive(daemon), `${daemon.status.name} must still run`)
    assert.ok(ran >= Math.min(MIN_CASES, indices.length), `only ${ran} cases ran within ${BUDGET_MS / 1000} s`)
    assert.deepEqual(failures, [], `replay with FUZZ_SEED=${SEED} FUZZ_CASE=<index>`)

    // Memory: after the run settles, within the stated bound of where it started.
    await new Promise(resolve => setTimeout(resolve, 2_000))
    const rssAfter = await Promise.all(targets.map(async t => await rssKiB(t.daemon.proc.pid as number)))
    for (const [i, { daemon }] of targets.entries()) {
      assert.ok(rssAfter[i] <= rssBefore[i] + RSS_BOUND_KIB, `${daemon.status.name}: VmRSS ${rssBefore[i]} KiB before, ${rssAfter[i]} KiB after (bound +${RSS_BOUND_KIB} KiB)`)
    }

    // Stored data: the same chunks, the same bytes, and the daemons still serve the member.
    assert.deepEqual(await storedChunks(), chunksBefore, 'chunk counts of the coordinator and both nodes are unchanged')
    await collective.assertReadsBack('/docs/small')
    await collective.assertReadsBack('/docs/large')
    await collective.put('/docs/after', 300_000)
    await collective.assertReadsBack('/docs/after')
    assert.equal(await collective.aliveNodes(), 2)

    const summary = [...tally.entries()].sort().map(([k, n]) => `${k}=${n}`).join(' ')
    console.log(`# fuzz: ${ran} cases, ${streams} streams in ${seconds.toFixed(1)} s; ${summary}`)
    console.log(`# fuzz CPU seconds: ${targets.map((t, i) => `${t.daemon.status.name} ${(cpuAfter[i] - cpuBefore[i]).toFixed(1)}`).join(', ')}, fuzzer ${((ownCpu.user + ownCpu.system) / 1e6).toFixed(1)}`)
    console.log(`# fuzz time per case: ${[...kindMs.entries()].map(([k, v]) => `${k} ${Math.round(v.ms / v.n)} ms`).join(', ')}`)
    console.log(`# fuzz memory (VmRSS KiB, before -> after): ${targets.map((t, i) => `${t.daemon.status.name} ${rssBefore[i]} -> ${rssAfter[i]}`).join(', ')}`)
  })
})

const ACCEPTABLE: ReadonlySet<Outcome> = new Set(['answered', 'closed', 'reset', 'refused', 'ended'])

/** Why a stream's outcome is wrong, or undefined when it is one a server may give to bad input */
function judge (target: FuzzTarget, r: StreamResult): string | undefined {
  if (!ACCEPTABLE.has(r.outcome)) return `${r.outcome} (the server neither answered nor closed the stream${r.error != null ? `; ${r.error}` : ""})`
  if (r.outcome === 'answered' && target.isRefusal != null && !target.isRefusal(r.response)) {
    return `answered ${r.response.byteLength} bytes that are not a refusal`
  }
  return undefined
}
