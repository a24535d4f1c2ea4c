import '../../../src/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { CircuitBreakers, CircuitOpenError } from '../../../src/net/circuit-breaker.js'
import { ResilientChunkTransport } from '../../../src/transfer/resilient.js'
import type { BreakerState } from '../../../src/net/circuit-breaker.js'
import type { ChunkTransport } from '../../../src/transfer/types.js'
import { Uint8ArrayList } from 'uint8arraylist'

const PEER = '12D3KooWLvjzju9pZbLQGCzTuiRuH2FUUKBNyzxGXUot3EXFrV3G'
const CID_A = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')

function named (name: string, message = name): Error {
  const e = new Error(message)
  e.name = name
  return e
}

describe('circuit breakers', () => {
  it('open after the threshold, refuse during the cool-down, let one probe through, close on its success', () => {
    let now = 0
    const changes: Array<[BreakerState, BreakerState]> = []
    const b = new CircuitBreakers({ failureThreshold: 3, cooldownMs: 1000, now: () => now, onStateChange: (_p, from, to) => changes.push([from, to]) })
    for (let i = 0; i < 2; i++) { b.acquire('p'); b.failure('p') }
    assert.equal(b.state('p'), 'closed')
    b.acquire('p'); b.failure('p')
    assert.equal(b.state('p'), 'open')
    assert.throws(() => { b.acquire('p') }, CircuitOpenError)
    now = 999
    assert.throws(() => { b.acquire('p') }, CircuitOpenError)
    now = 1000
    assert.equal(b.state('p'), 'half_open')
    b.acquire('p')
    // only one probe at a time
    assert.throws(() => { b.acquire('p') }, /half-open/)
    b.success('p')
    assert.equal(b.state('p'), 'closed')
    assert.deepEqual(b.snapshot(), [])
    assert.deepEqual(changes, [['closed', 'open'], ['open', 'half_open'], ['half_open', 'closed']])
  })

  it('a failed probe reopens with a doubled cool-down; other peers are unaffected', () => {
    let now = 0
    const b = new CircuitBreakers({ failureThreshold: 1, cooldownMs: 1000, now: () => now })
    b.acquire('p'); b.failure('p')
    now = 1000
    b.acquire('p'); b.failure('p')
    assert.equal(b.state('p'), 'open')
    now = 2999
    assert.equal(b.state('p'), 'open')
    now = 3000
    assert.equal(b.state('p'), 'half_open')
    b.acquire('q')
    assert.equal(b.state('q'), 'closed')
    // a caller that gave up releases the probe without a verdict
    b.acquire('p'); b.release('p')
    b.acquire('p')
  })
})

describe('resilient chunk transport', () => {
  function transport (script: Array<Error | null>): { t: ChunkTransport, calls: () => number } {
    let calls = 0
    const next = async (): Promise<void> => {
      const step = script[Math.min(calls++, script.length - 1)]
      if (step != null) throw step
    }
    return {
      t: { put: next, delete: next, get: async () => { await next(); return new Uint8ArrayList(new Uint8Array([1])) } },
      calls: () => calls
    }
  }

  it('retries a transient failure with backoff and succeeds', async () => {
    const inner = transport([named('RequestTimeoutError'), null])
    const retries: string[] = []
    const r = new ResilientChunkTransport({ transport: inner.t, onRetry: (op) => retries.push(op) }, { retries: 2, initialBackoffMs: 1 })
    assert.deepEqual((await r.get(peerIdFromString(PEER), CID_A)).subarray(), new Uint8Array([1]))
    assert.equal(inner.calls(), 2)
    assert.deepEqual(retries, ['get'])
  })

  it('never retries a definite answer, and such an answer keeps the breaker closed', async () => {
    const inner = transport([named('NodeFullError')])
    const r = new ResilientChunkTransport({ transport: inner.t }, { retries: 3, failureThreshold: 1, initialBackoffMs: 1 })
    for (let i = 0; i < 5; i++) await assert.rejects(r.put(peerIdFromString(PEER), CID_A, new Uint8Array(1)), { name: 'NodeFullError' })
    assert.equal(inner.calls(), 5)
    assert.equal(r.isOpen(PEER), false)
  })

  it('trips the breaker after repeated failures: later calls fail at once without touching the node', async () => {
    const inner = transport([named('DialError')])
    let opened = 0
    const r = new ResilientChunkTransport({ transport: inner.t, onBreakerChange: (_p, _f, to) => { if (to === 'open') opened++ } }, { retries: 1, failureThreshold: 4, cooldownMs: 60_000, initialBackoffMs: 1 })
    await assert.rejects(r.delete(peerIdFromString(PEER), CID_A), { name: 'DialError' })
    await assert.rejects(r.delete(peerIdFromString(PEER), CID_A), { name: 'DialError' })
    assert.equal(inner.calls(), 4)
    assert.equal(r.isOpen(PEER), true)
    assert.equal(opened, 1)
    await assert.rejects(r.get(peerIdFromString(PEER), CID_A), { name: 'CircuitOpenError' })
    assert.equal(inner.calls(), 4)
  })

  it('a corrupt replica counts against the node and is not asked again', async () => {
    const inner = transport([named('ChunkVerificationError')])
    const r = new ResilientChunkTransport({ transport: inner.t }, { retries: 3, initialBackoffMs: 1 })
    await assert.rejects(r.get(peerIdFromString(PEER), CID_A), { name: 'ChunkVerificationError' })
    assert.equal(inner.calls(), 1)
  })
})
