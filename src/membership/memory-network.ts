import { SwimRequest, SwimResponse } from '../gen/swim.js'
import { SyncRequest, SyncResponse } from '../gen/sync.js'
import { ProtocolError } from '../net/errors.js'
import { SWIM_PROTOCOL_LIMITS, SYNC_PROTOCOL_LIMITS } from './protocol.js'
import type { MessageType, ProtocolLimits } from '../net/rpc.js'
import type { Scheduler, SwimHandler, SwimTransport } from './types.js'
import type { AbortOptions } from '@libp2p/interface'

/** Thrown when virtual time cannot make progress: a timer loop that keeps rescheduling itself at zero delay */
export class RunawayTimersError extends Error {
  static name = 'RunawayTimersError'
  name = 'RunawayTimersError'
}

interface Timer { at: number, seq: number, fn: () => void }

/**
 * Virtual time: timers fire only when the test advances the clock, in time order, with all promise work of
 * one timer settled before the next fires. Deterministic for a given sequence of calls, and as fast as the CPU.
 */
export class VirtualClock implements Scheduler {
  private time: number
  private seq = 0
  private readonly heap: Timer[] = []
  private readonly cancelled = new Set<number>()

  constructor (start = 0) {
    this.time = start
  }

  now (): number {
    return this.time
  }

  setTimeout (fn: () => void, ms: number): unknown {
    const t = { at: this.time + Math.max(0, ms), seq: this.seq++, fn }
    this.push(t)
    return t.seq
  }

  clearTimeout (handle: unknown): void {
    if (typeof handle === 'number') this.cancelled.add(handle)
  }

  /** Runs every timer due within the next `ms`, then leaves the clock at now + ms */
  async advance (ms: number, maxTimers = 50_000_000): Promise<void> {
    const until = this.time + ms
    let fired = 0
    while (this.heap.length > 0 && this.heap[0].at <= until) {
      const t = this.pop()
      if (this.cancelled.delete(t.seq)) continue
      this.time = t.at
      t.fn()
      // Lets the promise chains this timer started run to their next timer before time moves on.
      await new Promise(resolve => setImmediate(resolve))
      if (++fired > maxTimers) throw new RunawayTimersError(`more than ${maxTimers} timers within ${ms} ms`)
    }
    this.time = until
  }

  private push (t: Timer): void {
    const h = this.heap
    h.push(t)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(h[i], h[p])) break
      ;[h[i], h[p]] = [h[p], h[i]]
      i = p
    }
  }

  private pop (): Timer {
    const h = this.heap
    const top = h[0]
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l], h[m])) m = l
        if (r < h.length && before(h[r], h[m])) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m], h[i]]
        i = m
      }
    }
    return top
  }
}

function before (a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}

/** Mulberry32: a tiny seeded PRNG, so that a harness run is replayable from its seed */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface MemoryNetworkInit {
  clock: VirtualClock
  /** Decides latency and loss (seeded in tests) */
  random: () => number
  /** One-way latency is uniform in [min, max] ms (default [1, 10]) */
  latencyMs?: [number, number]
  /** Probability that any one message (request or reply) is lost (default 0) */
  lossRate?: number
  /**
   * Encode and decode every message, enforcing the protocols' size limits as libp2p would (default true).
   * Costs a little CPU; catches messages that would not survive the wire.
   */
  codec?: boolean
}

export interface NetworkStats {
  /** Requests and replies sent, lost ones included */
  messages: number
  lost: number
  bytes: number
}

/**
 * An in-memory network between Swim instances: every request and reply is a timer on the virtual clock, subject
 * to latency, loss, partitions and crashes. A lost message never arrives; the sender finds out by its own timeout.
 */
export class MemoryNetwork {
  private readonly clock: VirtualClock
  private readonly random: () => number
  private readonly latency: [number, number]
  private readonly codec: boolean
  private readonly handlers = new Map<string, SwimHandler>()
  private readonly crashed = new Set<string>()
  private readonly group = new Map<string, number>()
  lossRate: number
  readonly stats: NetworkStats = { messages: 0, lost: 0, bytes: 0 }

  constructor (init: MemoryNetworkInit) {
    this.clock = init.clock
    this.random = init.random
    this.latency = init.latencyMs ?? [1, 10]
    this.lossRate = init.lossRate ?? 0
    this.codec = init.codec ?? true
  }

  /** Where `id`'s inbound requests go */
  attach (id: string, handler: SwimHandler): void {
    this.handlers.set(id, handler)
    this.crashed.delete(id)
  }

  /** The transport `id` sends through */
  transport (id: string): SwimTransport {
    return {
      probe: async (to, req, options) => await this.exchange(id, to, req, SwimRequest, SwimResponse, SWIM_PROTOCOL_LIMITS,
        async (h, r) => await h.handle(id, r), options),
      sync: async (to, req, options) => await this.exchange(id, to, req, SyncRequest, SyncResponse, SYNC_PROTOCOL_LIMITS,
        async (h, r) => await h.handleSync(id, r), options)
    }
  }

  /** From now on `id` neither sends nor receives anything (stop its Swim too, as a crashed process would) */
  crash (id: string): void {
    this.crashed.add(id)
  }

  /** Members in different groups cannot reach each other; members in no group reach everyone in no group */
  partition (groups: string[][]): void {
    this.group.clear()
    groups.forEach((g, i) => { for (const id of g) this.group.set(id, i + 1) })
  }

  heal (): void {
    this.group.clear()
  }

  resetStats (): void {
    this.stats.messages = 0
    this.stats.lost = 0
    this.stats.bytes = 0
  }

  private delay (): number {
    const [min, max] = this.latency
    return min + this.random() * (max - min)
  }

  /** Whether a message from `from` to `to` sent now arrives */
  private passes (from: string, to: string): boolean {
    this.stats.messages++
    const ok = !this.crashed.has(from) && !this.crashed.has(to) && this.handlers.has(to) &&
      (this.group.get(from) ?? 0) === (this.group.get(to) ?? 0) && this.random() >= this.lossRate
    if (!ok) this.stats.lost++
    return ok
  }

  private wire<T> (msg: T, type: MessageType<T>, limits: ProtocolLimits): T {
    if (!this.codec) return msg
    const bytes = type.encode(msg)
    this.stats.bytes += bytes.length
    if (bytes.length > limits.maxMessageBytes) throw new ProtocolError('message larger than the protocol allows')
    return type.decode(bytes)
  }

  private async exchange<Req, Res> (
    from: string, to: string, req: Req, reqType: MessageType<Req>, resType: MessageType<Res>, limits: ProtocolLimits,
    serve: (h: SwimHandler, req: Req) => Promise<Res>, options: AbortOptions
  ): Promise<Res> {
    options.signal?.throwIfAborted()
    const sent = this.wire(req, reqType, limits)
    return await new Promise<Res>((resolve, reject) => {
      const onAbort = (): void => { reject(options.signal?.reason) }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      const settle = (fn: () => void): void => { options.signal?.removeEventListener('abort', onAbort); fn() }
      if (!this.passes(from, to)) return
      this.clock.setTimeout(() => {
        const handler = this.handlers.get(to)
        if (handler == null || this.crashed.has(to)) return
        serve(handler, sent).then(res => {
          let reply: Res
          try {
            reply = this.wire(res, resType, limits)
          } catch (err) {
            settle(() => { reject(err) })
            return
          }
          if (!this.passes(to, from)) return
          this.clock.setTimeout(() => { settle(() => { resolve(reply) }) }, this.delay())
        }, (err) => { settle(() => { reject(err) }) })
      }, this.delay())
    })
  }
}
