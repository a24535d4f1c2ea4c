import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { getEventListeners } from 'node:events'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { combineSignals } from '../../../src/util/signals.js'

const SRC = fileURLToPath(new URL('../../../../src/', import.meta.url))

describe('combineSignals', () => {
  it('aborts with the reason of the source that aborted, and not before', () => {
    const a = new AbortController()
    const b = new AbortController()
    const signal = combineSignals(a.signal, undefined, b.signal)
    assert.equal(signal.aborted, false)
    const reason = new Error('b gave up')
    b.abort(reason)
    assert.equal(signal.aborted, true)
    assert.equal(signal.reason, reason)
    signal.clear()
  })

  it('is aborted at once when a source already is', () => {
    const signal = combineSignals(AbortSignal.abort(new Error('too late')))
    assert.equal(signal.aborted, true)
    signal.clear()
  })

  it('leaves nothing on a long-lived source once cleared, and many at once raise no leak warning', async () => {
    const stopping = new AbortController()
    const warnings: Error[] = []
    const onWarning = (w: Error): void => { warnings.push(w) }
    process.on('warning', onWarning)
    try {
      const inFlight = Array.from({ length: 100 }, () => combineSignals(stopping.signal, AbortSignal.timeout(60_000)))
      assert.equal(getEventListeners(stopping.signal, 'abort').length, 100, 'one listener per operation in flight')
      for (const s of inFlight) s.clear()
      assert.equal(getEventListeners(stopping.signal, 'abort').length, 0)
      // warnings are emitted on the next tick
      await new Promise(resolve => setImmediate(resolve))
      assert.deepEqual(warnings.filter(w => w.name === 'MaxListenersExceededWarning').map(w => w.message), [])
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('is what the daemons use: no AbortSignal.any in src/, whose Node 20 version leaks when a source lives long', async () => {
    const offenders: string[] = []
    const files = (await readdir(SRC, { recursive: true })).filter(f => f.endsWith('.ts'))
    assert.ok(files.length > 100, `${files.length} source files under ${SRC}`)
    for (const file of files) {
      const code = (await readFile(join(SRC, file), 'utf8')).split('\n').filter(line => !/^\s*(\/\/|\*|\/\*)/.test(line))
      if (code.some(line => line.includes('AbortSignal.any('))) offenders.push(file)
    }
    assert.deepEqual(offenders, [])
  })
})
