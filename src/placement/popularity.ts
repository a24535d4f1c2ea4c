export interface PopularityInit {
  /** Time for a read count to halve when nothing is read (default 1 hour) */
  halfLifeMs?: number
  /** Decayed reads at which content is hot and gains its first extra replica (default 20) */
  hotReads?: number
  /** Content tracked at most; the coldest are forgotten beyond it (default 10,000) */
  maxTracked?: number
  now?: () => number
}

interface Counter { value: number, at: number }

/**
 * Read counts with exponential time decay, per file (or chunk): what makes content hot, and how many replicas it
 * deserves. Each doubling of the reads above the hot threshold earns one more replica, up to a cap; as reads stop,
 * the count decays and the extra replicas are given back.
 */
export class Popularity {
  private readonly counters = new Map<string, Counter>()
  readonly halfLifeMs: number
  readonly hotReads: number
  private readonly maxTracked: number
  private readonly now: () => number

  constructor (init: PopularityInit = {}) {
    this.halfLifeMs = init.halfLifeMs ?? 3_600_000
    this.hotReads = init.hotReads ?? 20
    this.maxTracked = init.maxTracked ?? 10_000
    this.now = init.now ?? Date.now
  }

  record (key: string, reads = 1): void {
    const now = this.now()
    const c = this.counters.get(key)
    this.counters.set(key, { value: (c == null ? 0 : this.decayed(c, now)) + reads, at: now })
    if (this.counters.size > this.maxTracked * 1.1) this.forgetColdest(now)
  }

  /** Decayed read count now */
  score (key: string): number {
    const c = this.counters.get(key)
    return c == null ? 0 : this.decayed(c, this.now())
  }

  /** Replicas `key` deserves: `base`, plus one per doubling of reads above the hot threshold, at most `max` */
  desiredReplicas (key: string, base: number, max: number): number {
    return this.replicasFor(this.score(key), base, max)
  }

  /**
   * Replicas `key` keeps once it has them: each extra one is given up only when the reads fall to half the level
   * that earned it. Without that margin, a count hovering at a doubling (steady reads, each decaying a little
   * before the next) earned a replica, lost it and earned it again, copying and deleting the same chunk over and over.
   */
  keptReplicas (key: string, base: number, max: number): number {
    return this.replicasFor(2 * this.score(key), base, max)
  }

  /** Keys read often enough now to deserve at least one replica above any base, hottest first */
  hotKeys (): string[] {
    return this.hot(0, 1).map(h => h.key)
  }

  /** Keys whose replica count differs from base right now, hottest first */
  hot (base: number, max: number): Array<{ key: string, score: number, replicas: number }> {
    const out = []
    for (const key of this.counters.keys()) {
      const replicas = this.desiredReplicas(key, base, max)
      if (replicas > base) out.push({ key, score: this.score(key), replicas })
    }
    return out.sort((a, b) => b.score - a.score)
  }

  /** Keys tracked right now, hot or not */
  get size (): number {
    return this.counters.size
  }

  private replicasFor (score: number, base: number, max: number): number {
    if (score < this.hotReads) return base
    return Math.min(Math.max(base, max), base + 1 + Math.floor(Math.log2(score / this.hotReads)))
  }

  private decayed (c: Counter, now: number): number {
    return c.value * Math.pow(2, -Math.max(0, now - c.at) / this.halfLifeMs)
  }

  private forgetColdest (now: number): void {
    const byScore = [...this.counters.entries()].sort((a, b) => this.decayed(a[1], now) - this.decayed(b[1], now))
    for (const [key] of byScore.slice(0, this.counters.size - this.maxTracked)) this.counters.delete(key)
  }
}
