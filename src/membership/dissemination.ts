import type { MemberUpdate } from '../gen/swim.js'

interface Pending {
  update: MemberUpdate
  transmits: number
}

/**
 * The queue of updates waiting to ride on outgoing messages. Each update goes out a bounded number of times
 * (retransmitMult * log10(n+1), the epidemic bound that reaches every member with high probability), least-sent
 * first, so fresh news overtakes old news when a message has no room for both.
 */
export class Dissemination {
  private readonly pending = new Map<string, Pending>()
  private readonly retransmitMult: number

  constructor (retransmitMult: number) {
    this.retransmitMult = retransmitMult
  }

  /** A newer update about the same member replaces the queued one and starts its count again */
  enqueue (update: MemberUpdate): void {
    this.pending.set(update.id, { update, transmits: 0 })
  }

  get size (): number {
    return this.pending.size
  }

  /** Whether some update has gone out fewer than `transmits` times */
  hasFresh (transmits: number): boolean {
    for (const p of this.pending.values()) if (p.transmits < transmits) return true
    return false
  }

  /**
   * Takes up to `max` updates for one message to a cluster of `members`; with `fresherThan`, only updates sent
   * fewer times than that (push gossip forwards each update once, probes carry the rest of its budget).
   */
  select (max: number, members: number, fresherThan = Infinity): MemberUpdate[] {
    if (this.pending.size === 0 || max <= 0) return []
    const limit = this.retransmitMult * Math.max(1, Math.ceil(Math.log10(members + 1)))
    const chosen = [...this.pending.values()].filter(p => p.transmits < fresherThan).sort((a, b) => a.transmits - b.transmits).slice(0, max)
    for (const p of chosen) {
      p.transmits++
      if (p.transmits >= limit) this.pending.delete(p.update.id)
    }
    return chosen.map(p => p.update)
  }

  clear (): void {
    this.pending.clear()
  }
}
