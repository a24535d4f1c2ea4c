import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TokenBucket } from '../../../src/repair/token-bucket.js'

/** A bucket on a clock the test moves, recording every wait instead of sleeping */
function bucket (bytesPerSecond: number, burstBytes?: number): { bucket: TokenBucket, waits: number[], advance: (ms: number) => void } {
  let now = 0
  const waits: number[] = []
  const b = new TokenBucket({
    bytesPerSecond,
    burstBytes,
    now: () => now,
    sleep: async (ms, signal) => {
      signal?.throwIfAborted()
      waits.push(ms)
      now += ms
    }
  })
  return { bucket: b, waits, advance: ms => { now += ms } }
}

describe('TokenBucket', () => {
  it('lets a burst through at once, then holds the average rate', async () => {
    const { bucket: b, waits } = bucket(1000)
    await b.take(1000)
    assert.deepEqual(waits, [])
    await b.take(500)
    assert.deepEqual(waits, [500])
    await b.take(2000)
    assert.deepEqual(waits, [500, 2000])
  })

  it('refills with time up to the burst size, never beyond', async () => {
    const { bucket: b, waits, advance } = bucket(1000, 1000)
    await b.take(1000)
    advance(10_000)
    await b.take(1000)
    await b.take(100)
    assert.deepEqual(waits, [100])
  })

  it('takes larger than the burst go into debt that later takes pay back', async () => {
    const { bucket: b, waits } = bucket(1000, 100)
    await b.take(4000)
    assert.deepEqual(waits, [3900])
  })

  it('an aborted wait gives its bytes back', async () => {
    let now = 0
    const waits: number[] = []
    const b = new TokenBucket({ bytesPerSecond: 1000, now: () => now, sleep: async (ms, signal) => { signal?.throwIfAborted(); waits.push(ms) } })
    await b.take(1000)
    const controller = new AbortController()
    controller.abort(new Error('cancelled'))
    await assert.rejects(b.take(5000, controller.signal), /cancelled/)
    now += 1000
    await b.take(1000)
    assert.deepEqual(waits, [], 'the aborted 5000 bytes were not charged')
  })

  it('refuses a budget that is not positive', () => {
    assert.throws(() => new TokenBucket({ bytesPerSecond: 0 }), RangeError)
  })
})
