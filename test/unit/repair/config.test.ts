import '../../../src/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../../src/daemon/config.js'

const CONFIG_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'config')
const BASE = 'role: coordinator\nidentity: { key: k, cert: c, root: r }\n'

describe('daemon config: repair', () => {
  it('documents the repair keys in the examples, with the documented defaults', async () => {
    const coordinator = await loadConfig(join(CONFIG_DIR, 'coordinator.yaml'))
    assert.deepEqual(coordinator.repair, {
      intervalMs: 30_000, startDelayMs: 30_000, bandwidthBytesPerSecond: 20 * 1024 ** 2, concurrency: 4, scrubIntervalMs: 86_400_000, scrubBandwidthBytesPerSecond: 50 * 1024 ** 2,
      rebalance: true, rebalanceTolerance: 0.1, rebalanceMinGap: 0.005
    })
    assert.deepEqual(coordinator.popularity, { maxReplicas: 4, halfLifeMs: 3_600_000, hotThreshold: 20 })
    const node = await loadConfig(join(CONFIG_DIR, 'node.yaml'))
    assert.equal(node.repair.scrubIntervalMs, 86_400_000)
    assert.equal(node.repair.scrubBandwidthBytesPerSecond, 50 * 1024 ** 2)
  })

  it('names a bad repair key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'config-repair-test-'))
    try {
      const file = join(dir, 'c.yaml')
      await writeFile(file, BASE)
      assert.equal((await loadConfig(file)).repair.bandwidthBytesPerSecond, 20 * 1024 ** 2)
      await writeFile(file, `${BASE}repair: { bandwidth: 0 }\n`)
      await assert.rejects(loadConfig(file), /repair\.bandwidth: must be more than 0 bytes per second/)
      await writeFile(file, `${BASE}repair: { scrubInterval: often }\n`)
      await assert.rejects(loadConfig(file), /repair\.scrubInterval: invalid duration "often"/)
      await writeFile(file, `${BASE}repair: { concurrency: 0 }\n`)
      await assert.rejects(loadConfig(file), /repair\.concurrency/)
      await writeFile(file, `${BASE}repair: { rebalanceTolerance: -1 }\n`)
      await assert.rejects(loadConfig(file), /repair\.rebalanceTolerance/)
      await writeFile(file, `${BASE}popularity: { halfLife: 0s }\n`)
      await assert.rejects(loadConfig(file), /popularity\.halfLife: must be longer than 0/)
      await writeFile(file, `${BASE}popularity: { maxReplicas: 0 }\n`)
      await assert.rejects(loadConfig(file), /popularity\.maxReplicas/)
      await writeFile(file, `${BASE}popularity: { hotThreshold: 5, halfLife: 2m }\n`)
      assert.deepEqual((await loadConfig(file)).popularity, { maxReplicas: 4, halfLifeMs: 120_000, hotThreshold: 5 })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
