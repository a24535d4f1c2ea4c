import '../src/polyfill.js'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { defaultLogger } from '@libp2p/logger'
import { runScenario } from '../src/membership/simulation.js'
import type { ScenarioResult } from '../src/membership/simulation.js'

const USAGE = `Usage: npm run bench:membership [-- OPTIONS]

Runs the real SWIM and dissemination code for 50, 200 and 500 members in one process over the in-memory network,
in virtual time (seeded, replayable). For each size, two runs: without loss, and with 5% of all messages lost.
Each run lets the collective settle, crashes members one after another while a new member joins through a
single seed, and measures: time until each crash is declared dead by every live member (from the crash, and
from its first suspicion), messages (requests and replies) per member per second, deaths declared of members
that were running, and time until the joiner is seen alive everywhere. Prints one JSON object on stdout;
progress goes to stderr. The 50-member run is the baseline the larger ones are compared with.

Options:
  --seed N        seed of every run (default: random; printed)
  --sizes LIST    member counts (default 50,200,500)
  --crashes N     members crashed per run (default 5)
  --help          this text

Exit status: 0 when everything was measured, whether or not the targets were met; 1 when a run failed.`

/** Protocol settings measured: the defaults of SwimInit */
const SWIM = { probeIntervalMs: 1000, probeTimeoutMs: 500, suspicionTimeoutMs: 5000, syncIntervalMs: 10_000 }
const LOSS = 0.05
/** The targets */
const TARGETS = { messagesRatio: 1.5, falseDeaths: 0, detectionMs: SWIM.suspicionTimeoutMs + 2 * SWIM.probeIntervalMs }

const startedAt = performance.now()
function log (line: string): void {
  process.stderr.write(`[${((performance.now() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${line}\n`)
}

const round = (n: number | undefined): number | null => n == null ? null : Math.round(n)

function percentile (values: number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
}

function summary (r: ScenarioResult): Record<string, unknown> {
  const found = r.detections.filter(d => d != null)
  const fromCrash = found.map(d => d.fromCrashMs)
  const fromSuspicion = found.map(d => d.fromSuspicionMs)
  return {
    crashes_detected: `${found.length}/${r.detections.length}`,
    dead_everywhere_ms: { p50: round(percentile(fromCrash, 0.5) ?? undefined), max: round(percentile(fromCrash, 1) ?? undefined) },
    dead_everywhere_after_first_suspicion_ms: { p50: round(percentile(fromSuspicion, 0.5) ?? undefined), max: round(percentile(fromSuspicion, 1) ?? undefined) },
    messages_per_member_per_second: Number(r.messagesPerMemberPerSecond.toFixed(2)),
    false_deaths: r.falseDeaths,
    join_convergence_ms: round(r.joinConvergenceMs),
    wall_ms: r.wallMs
  }
}

async function main (argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { seed: { type: 'string' }, sizes: { type: 'string' }, crashes: { type: 'string' }, help: { type: 'boolean' } } })
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const seed = values.seed != null ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31)
  const sizes = (values.sizes ?? '50,200,500').split(',').map(Number)
  const crashes = Number(values.crashes ?? 5)
  if (!Number.isSafeInteger(seed) || sizes.some(n => !Number.isSafeInteger(n) || n < crashes + 3) || !Number.isSafeInteger(crashes) || crashes < 1) {
    process.stderr.write(`bad options\n${USAGE}\n`)
    return 1
  }
  log(`seed ${seed} (replay with --seed ${seed})`)
  const logger = defaultLogger()
  const runs = []
  for (const members of sizes) {
    log(`${members} members, no loss`)
    const clean = await runScenario({ members, seed, crashes, swim: SWIM }, logger)
    log(`${members} members, ${LOSS * 100}% loss`)
    const lossy = await runScenario({ members, seed, crashes, lossRate: LOSS, swim: SWIM }, logger)
    runs.push({ members, clean, lossy })
  }
  const rate = (r: ScenarioResult): number => r.messagesPerMemberPerSecond
  const base = runs[0]
  const biggest = runs[runs.length - 1]
  const ratio = rate(biggest.clean) / rate(base.clean)
  const detectionP50 = runs.map(r => percentile(r.lossy.detections.filter(d => d != null).map(d => d.fromCrashMs), 0.5))
  const fromSuspicionMax = runs.map(r => percentile([...r.clean.detections, ...r.lossy.detections].filter(d => d != null).map(d => d.fromSuspicionMs), 1))
  const allDetected = runs.every(r => [...r.clean.detections, ...r.lossy.detections].every(d => d != null))
  const result = {
    benchmark: 'membership',
    seed,
    settings: { ...SWIM, syncTimeoutMs: 10_000, indirectProbes: 3, gossipIntervalMs: 200, gossipFanout: 3, maxPiggyback: 8, retransmitMult: 4, latencyMs: [1, 10], crashes, loss: LOSS },
    sizes: runs.map(r => ({ members: r.members, no_loss: summary(r.clean), loss_5pct: summary(r.lossy) })),
    messages_per_member_per_second_ratio: { [`${biggest.members}/${base.members}`]: Number(ratio.toFixed(2)) },
    targets: {
      messages_ratio_max: TARGETS.messagesRatio,
      messages_ratio_ok: ratio <= TARGETS.messagesRatio,
      false_deaths_at_5pct_loss_ok: runs.every(r => r.lossy.falseDeaths === TARGETS.falseDeaths),
      all_crashes_detected: allDetected,
      detection_bound_ms: TARGETS.detectionMs,
      // From the crash, a member must first be probed: SWIM's expected wait is about one period, unbounded in theory.
      detection_p50_from_crash_ok: detectionP50.every(p => p != null && p <= TARGETS.detectionMs),
      detection_max_after_first_suspicion_ok: fromSuspicionMax.every(p => p != null && p <= TARGETS.detectionMs)
    },
    machine: { node: process.version }
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  return 0
}

main(process.argv.slice(2)).then(code => { process.exitCode = code }, err => {
  process.stderr.write(`${err?.stack ?? String(err)}\n`)
  process.exitCode = 1
})
