import '../../../src/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parseSize, parseDuration, formatBytes } from '../../../src/util/units.js'
import { KeyedMutex } from '../../../src/util/keyed-mutex.js'
import { Semaphore } from '../../../src/util/semaphore.js'
import { backoffDelay } from '../../../src/util/backoff.js'

describe('units', () => {
  it('parses sizes and durations people write', () => {
    assert.equal(parseSize('512MiB'), 512 * 1024 * 1024)
    assert.equal(parseSize('10GB'), 10e9)
    assert.equal(parseSize(4096), 4096)
    assert.throws(() => parseSize('lots'), { name: 'InvalidSizeError' })
    assert.equal(parseDuration('90m'), 90 * 60_000)
    assert.equal(parseDuration('36h'), 36 * 3_600_000)
    assert.equal(parseDuration('7d'), 7 * 86_400_000)
    assert.equal(parseDuration('1h30m'), 90 * 60_000)
    for (const bad of ['', '7', 'd7', '7 days', '1h 30m']) assert.throws(() => parseDuration(bad), { name: 'InvalidDurationError' }, bad)
    assert.equal(formatBytes(1536), '1.5 KiB')
  })
})

describe('concurrency helpers', () => {
  it('KeyedMutex serialises one key and leaves others free', async () => {
    const m = new KeyedMutex()
    const order: string[] = []
    const slow = m.run('a', async () => { await new Promise(resolve => setTimeout(resolve, 30)); order.push('a1') })
    const queued = m.run('a', () => { order.push('a2') })
    const other = m.run('b', () => { order.push('b') })
    await Promise.all([slow, queued, other])
    assert.deepEqual(order, ['b', 'a1', 'a2'])
  })

  it('Semaphore bounds concurrency', async () => {
    const s = new Semaphore(2)
    let running = 0
    let peak = 0
    await Promise.all(Array.from({ length: 10 }, async () => {
      await s.acquire()
      running++
      peak = Math.max(peak, running)
      await new Promise(resolve => setTimeout(resolve, 5))
      running--
      s.release()
    }))
    assert.equal(peak, 2)
  })

  it('backoff grows exponentially with full jitter and a cap', () => {
    assert.equal(backoffDelay(0, { random: () => 0.999999 }), 250)
    assert.equal(backoffDelay(3, { random: () => 0.999999 }), 2000)
    assert.equal(backoffDelay(30, { random: () => 0.999999 }), 30_000)
    assert.equal(backoffDelay(5, { random: () => 0 }), 0)
  })
})
