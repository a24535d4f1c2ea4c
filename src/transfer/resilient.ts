import { backoffDelay, sleep } from '../util/backoff.js'
import { CircuitBreakers } from '../net/circuit-breaker.js'
import type { CircuitBreakersInit } from '../net/circuit-breaker.js'
import type { ChunkTransport } from './types.js'
import type { PeerPerformance } from '../placement/performance.js'
import type { ChunkRequestOptions } from '../chunks/client.js'
import type { AbortOptions, PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * Answers a node gives on purpose: the node is up and talking, so they close its breaker and are never retried
 * (asking again gets the same answer). Anything else — timeouts, refused dials, reset streams, a node failing on
 * its own — is the node's trouble.
 */
const DEFINITE_ANSWERS = new Set(['ChunkNotFoundError', 'NodeFullError', 'ChunkAccessDeniedError', 'ChunkRejectedError'])
/** The node answered, but with bytes that do not match the CID: counts against it, and asking again will not help */
const NOT_RETRIED = new Set([...DEFINITE_ANSWERS, 'ChunkVerificationError', 'CircuitOpenError'])

export interface ResilientTransportInit extends Omit<CircuitBreakersInit, 'onStateChange'> {
  /** Further attempts after a transient failure, with exponential backoff and full jitter (default 1) */
  retries?: number
  /** First backoff delay (default 100 ms); each retry doubles the ceiling, up to maxBackoffMs (default 2 s) */
  initialBackoffMs?: number
  maxBackoffMs?: number
}

export interface ResilientTransportComponents {
  transport: ChunkTransport
  /** Fed with the duration and size of every successful exchange (placement ranks nodes by it) */
  performance?: PeerPerformance
  onRetry?: (op: string, peer: string, error: Error) => void
  onBreakerChange?: CircuitBreakersInit['onStateChange']
}

/**
 * Wraps the chunk transport with what the seed calls connection resilience: bounded retries with exponential
 * backoff and jitter for transient failures, and a circuit breaker per node, so that a node that keeps failing
 * costs callers nothing until a probe finds it back. Failover stays with the callers (another replica for a
 * read, another node for a write): an open breaker makes them move on at once.
 */
export class ResilientChunkTransport implements ChunkTransport {
  readonly breakers: CircuitBreakers
  private readonly components: ResilientTransportComponents
  private readonly retries: number
  private readonly initialBackoffMs: number
  private readonly maxBackoffMs: number

  constructor (components: ResilientTransportComponents, init: ResilientTransportInit = {}) {
    this.components = components
    this.retries = init.retries ?? 1
    this.initialBackoffMs = init.initialBackoffMs ?? 100
    this.maxBackoffMs = init.maxBackoffMs ?? 2_000
    this.breakers = new CircuitBreakers({ ...init, onStateChange: components.onBreakerChange })
  }

  async put (peer: PeerId, cid: CID, bytes: Uint8Array | Uint8ArrayList, options: ChunkRequestOptions = {}): Promise<void> {
    await this.call('put', peer, options, async () => { await this.components.transport.put(peer, cid, bytes, options) }, () => bytes.byteLength)
  }

  async get (peer: PeerId, cid: CID, options: ChunkRequestOptions = {}): Promise<Uint8ArrayList> {
    return await this.call('get', peer, options, async () => await this.components.transport.get(peer, cid, options), got => got.byteLength)
  }

  async delete (peer: PeerId, cid: CID, options: ChunkRequestOptions = {}): Promise<void> {
    await this.call('delete', peer, options, async () => { await this.components.transport.delete(peer, cid, options) }, () => 0)
  }

  /** Requests the wrapped transport has in flight to or waiting for the node */
  load (peer: string): number {
    return this.components.transport.load?.(peer) ?? 0
  }

  /** True while calls to this node are being refused: placement should look elsewhere */
  isOpen (peer: string): boolean {
    return this.breakers.state(peer) === 'open'
  }

  private async call<T> (op: string, peerId: PeerId, options: AbortOptions, fn: () => Promise<T>, size: (result: T) => number): Promise<T> {
    const peer = peerId.toString()
    for (let attempt = 0; ; attempt++) {
      this.breakers.acquire(peer)
      const started = performance.now()
      try {
        const result = await fn()
        this.breakers.success(peer)
        this.components.performance?.record(peer, size(result), performance.now() - started)
        return result
      } catch (err: any) {
        if (options.signal?.aborted === true) {
          // The caller gave up; that says nothing about the node.
          this.breakers.release(peer)
          throw err
        }
        if (DEFINITE_ANSWERS.has(err?.name)) {
          this.breakers.success(peer)
          throw err
        }
        this.breakers.failure(peer)
        if (NOT_RETRIED.has(err?.name) || attempt >= this.retries || this.isOpen(peer)) throw err
        this.components.onRetry?.(op, peer, err)
        await sleep(backoffDelay(attempt, { initialMs: this.initialBackoffMs, maxMs: this.maxBackoffMs }), options.signal)
      }
    }
  }
}
