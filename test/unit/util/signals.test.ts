import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { getEventListeners } from 'node:events'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { combineSignals } from '../../../src/util/signals.js'

const SRC = fileURLToPath(new URL('../../../../src/', import.meta.url))

async function sources (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...await sources(path))
    else if (entry.name.endsWith('.ts')) out.push(path)
  }
  return out
}

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
    for (const path of await sources(SRC)) {
      const code = (await readFile(path, 'utf8')).split('\n').filter(line => !/^\s*(\/\/|\*|\/\*)/.test(line))
      if (code.some(line => line.includes('AbortSignal.any('))) offenders.push(path.slice(SRC.length))
    }
    assert.deepEqual(offenders, [])
  })
})
