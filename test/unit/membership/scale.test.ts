import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { runScenario } from '../../../src/membership/simulation.js'
import { TIMING, logger } from './fixtures.js'

// Replay a run with SWIM_SEED=<the printed seed>.
const seed = process.env.SWIM_SEED != null ? Number(process.env.SWIM_SEED) : 20261201

it('500 members with 5% message loss: every crash is detected everywhere, nobody else dies, a joiner is seen by all', async (t) => {
  assert.ok(Number.isSafeInteger(seed), `SWIM_SEED must be an integer, got ${process.env.SWIM_SEED}`)
  t.diagnostic(`seed ${seed} (replay with SWIM_SEED=${seed})`)
  console.log(`# membership scale harness seed ${seed}`)
  const r = await runScenario({ members: 500, seed, lossRate: 0.05, crashes: 3, swim: TIMING }, logger)
  t.diagnostic(JSON.stringify(r))
  const { suspicionTimeoutMs, probeIntervalMs } = TIMING
  for (const [i, d] of r.detections.entries()) {
    assert.ok(d != null, `crash ${i} was not declared dead by every live member`)
    // Once suspected, the suspicion timeout plus two periods to spread the verdict is the bound.
    assert.ok(d.fromSuspicionMs <= suspicionTimeoutMs + 2 * probeIntervalMs, `crash ${i}: dead everywhere ${d.fromSuspicionMs} ms after the first suspicion`)
    // Before that, someone must probe it: each period that happens with probability ~1 - 1/e.
    assert.ok(d.toSuspicionMs <= 10 * probeIntervalMs, `crash ${i}: first suspected ${d.toSuspicionMs} ms after the crash`)
  }
  assert.equal(r.falseDeaths, 0, 'no member that was running got declared dead')
  assert.ok(r.joinConvergenceMs != null && r.joinConvergenceMs <= 5 * probeIntervalMs, `join seen everywhere after ${r.joinConvergenceMs} ms`)
})
