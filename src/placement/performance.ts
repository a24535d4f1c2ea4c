export interface PeerPerformanceInit {
  /** Weight of the newest sample in the moving averages (default 0.2) */
  alpha?: number
  /** Transfers smaller than this only count for latency, not throughput (default 256 KiB) */
  minThroughputBytes?: number
  /** Peers with no sample for this long are forgotten (default 1 hour) */
  forgetAfterMs?: number
  now?: () => number
}

export interface PeerStats {
  /** Moving average of the time to complete small exchanges, in ms */
  latencyMs?: number
  /** Moving average of bytes per second of large transfers */
  throughputBps?: number
  samples: number
  lastSampleAt: number
}

/**
 * What each storage node has actually delivered lately: latency of small exchanges and throughput of large ones,
 * as exponentially weighted moving averages of real transfers. Placement ranks nodes by measurement, never by a
 * configured guess.
 */
export class PeerPerformance {
  private readonly peers = new Map<string, PeerStats>()
  private readonly alpha: number
  private readonly minThroughputBytes: number
  private readonly forgetAfterMs: number
  private readonly now: () => number

  constructor (init: PeerPerformanceInit = {}) {
    this.alpha = init.alpha ?? 0.2
    this.minThroughputBytes = init.minThroughputBytes ?? 256 * 1024
    this.forgetAfterMs = init.forgetAfterMs ?? 3_600_000
    this.now = init.now ?? Date.now
  }

  /** One finished exchange with `peer` that moved `bytes` in `ms` */
  record (peer: string, bytes: number, ms: number): void {
    const now = this.now()
    const s = this.peers.get(peer) ?? { samples: 0, lastSampleAt: now }
    const avg = (old: number | undefined, sample: number): number => old == null ? sample : old + this.alpha * (sample - old)
    if (bytes >= this.minThroughputBytes) {
      s.throughputBps = avg(s.throughputBps, bytes / Math.max(ms, 0.001) * 1000)
    } else {
      s.latencyMs = avg(s.latencyMs, ms)
    }
    s.samples++
    s.lastSampleAt = now
    this.peers.delete(peer)
    this.peers.set(peer, s)
    this.forgetStale(now)
  }

  get (peer: string): PeerStats | undefined {
    const s = this.peers.get(peer)
    return s == null ? undefined : { ...s }
  }

  /**
   * A 0..1 score relative to the best peer measured: 1 for the fastest, lower for slower ones, and 0.5 for a
   * peer never measured (neither favoured nor shunned until it has been tried).
   */
  score (peer: string): number {
    const s = this.peers.get(peer)
    const best = this.best()
    if (s == null || (s.throughputBps == null && s.latencyMs == null)) return 0.5
    const parts: number[] = []
    if (s.throughputBps != null && best.throughputBps > 0) parts.push(s.throughputBps / best.throughputBps)
    if (s.latencyMs != null && best.latencyMs < Infinity) parts.push(best.latencyMs / Math.max(s.latencyMs, 0.001))
    return parts.length === 0 ? 0.5 : Math.min(1, parts.reduce((a, b) => a + b, 0) / parts.length)
  }

  private best (): { throughputBps: number, latencyMs: number } {
    let throughputBps = 0
    let latencyMs = Infinity
    for (const s of this.peers.values()) {
      if (s.throughputBps != null) throughputBps = Math.max(throughputBps, s.throughputBps)
      if (s.latencyMs != null) latencyMs = Math.min(latencyMs, s.latencyMs)
    }
    return { throughputBps, latencyMs }
  }

  /** Oldest samples first in map order, so the scan stops at the first fresh one */
  private forgetStale (now: number): void {
    for (const [peer, s] of this.peers) {
      if (now - s.lastSampleAt <= this.forgetAfterMs) break
      this.peers.delete(peer)
    }
  }
}
