import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ChunkPipeline, DeclaredSize } from '../../../src/transfer/pipeline.js'

const tick = async (ms = 1): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('ChunkPipeline', () => {
  it('keeps at most its slots in flight, a task holding as many slots as it was given', async () => {
    const pipeline = new ChunkPipeline(4)
    let running = 0
    let most = 0
    const settled: number[] = []
    for (let i = 0; i < 20; i++) {
      await pipeline.reserve()
      const weight = i % 3 === 0 ? 2 : 1
      if (weight === 2) await pipeline.reserve()
      running += weight
      most = Math.max(most, running)
      pipeline.run(tick(2).then(() => { running -= weight }), weight, () => { settled.push(i) })
    }
    await pipeline.drain()
    assert.ok(most <= 4, `${most} slots were taken at once`)
    assert.equal(settled.length, 20)
    assert.equal(running, 0)
  })

  it('keeps the first failure, lets the rest settle, and throws it from drain()', async () => {
    const pipeline = new ChunkPipeline(3)
    const done: string[] = []
    await pipeline.reserve()
    pipeline.run(tick(5).then(() => { done.push('slow') }))
    await pipeline.reserve()
    pipeline.run(Promise.reject(new Error('first')))
    await pipeline.reserve()
    pipeline.run(tick(1).then(() => { throw new Error('second') }))
    await tick(2)
    assert.equal(pipeline.failed, true)
    await assert.rejects(pipeline.drain(), { message: 'first' })
    assert.deepEqual(done, ['slow'], 'drain() waited for the task still running')
  })

  it('gives up waiting for a slot when the signal aborts', async () => {
    const controller = new AbortController()
    const pipeline = new ChunkPipeline(1, controller.signal)
    await pipeline.reserve()
    const waiting = pipeline.reserve()
    controller.abort(new Error('stop'))
    await assert.rejects(waiting, { message: 'stop' })
  })
})

describe('DeclaredSize', () => {
  it('refuses bytes beyond the declared size and an upload that ends short of it', () => {
    const exact = new DeclaredSize('/f', 10)
    exact.add(4)
    exact.add(6)
    exact.finish()
    assert.throws(() => exact.add(1), { name: 'SizeMismatchError' })
    const short = new DeclaredSize('/f', 10)
    short.add(9)
    assert.throws(() => short.finish(), { name: 'SizeMismatchError', message: /after 9 of 10 bytes/ })
    const undeclared = new DeclaredSize('/f')
    undeclared.add(1e9)
    undeclared.finish()
    assert.equal(undeclared.total, 1e9)
  })
})
