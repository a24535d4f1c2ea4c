export type BreakerState = 'closed' | 'open' | 'half_open'

export class CircuitOpenError extends Error {
  static name = 'CircuitOpenError'
  name = 'CircuitOpenError'
}

export interface CircuitBreakersInit {
  /** Consecutive failures that trip a peer's breaker open (default 5) */
  failureThreshold?: number
  /** How long an open breaker refuses calls before one probe call is let through (default 10 s) */
  cooldownMs?: number
  /** Longest cool-down after repeated failed probes; each failed probe doubles it (default 60 s) */
  maxCooldownMs?: number
  now?: () => number
  /** Told whenever a breaker changes state (metrics, operator logs) */
  onStateChange?: (peer: string, from: BreakerState, to: BreakerState) => void
}

interface Breaker {
  state: BreakerState
  failures: number
  openedAt: number
  cooldownMs: number
  /** A half-open breaker lets exactly one call through; the others are refused until it reports back */
  probing: boolean
}

/**
 * One circuit breaker per peer. A peer that keeps failing is refused at once for a cool-down instead of costing
 * every caller a dial timeout; then a single probe call decides whether it closes again or stays open longer.
 * Peers with a closed breaker and no failures hold no state.
 */
export class CircuitBreakers {
  private readonly breakers = new Map<string, Breaker>()
  private readonly failureThreshold: number
  private readonly cooldownMs: number
  private readonly maxCooldownMs: number
  private readonly now: () => number
  private readonly onStateChange?: CircuitBreakersInit['onStateChange']

  constructor (init: CircuitBreakersInit = {}) {
    this.failureThreshold = init.failureThreshold ?? 5
    this.cooldownMs = init.cooldownMs ?? 10_000
    this.maxCooldownMs = init.maxCooldownMs ?? 60_000
    this.now = init.now ?? Date.now
    this.onStateChange = init.onStateChange
  }

  /** The state a call to `peer` would meet now (an open breaker past its cool-down reads as half-open) */
  state (peer: string): BreakerState {
    const b = this.breakers.get(peer)
    if (b == null) return 'closed'
    if (b.state === 'open' && this.now() - b.openedAt >= b.cooldownMs) return 'half_open'
    return b.state
  }

  /** Takes permission for one call, or throws CircuitOpenError; every permitted call must end in success() or failure() */
  acquire (peer: string): void {
    const b = this.breakers.get(peer)
    if (b == null || b.state === 'closed') return
    if (b.state === 'open') {
      const waited = this.now() - b.openedAt
      if (waited < b.cooldownMs) throw new CircuitOpenError(`circuit to ${peer} is open after ${b.failures} failures; next try in ${Math.ceil((b.cooldownMs - waited) / 1000)} s`)
      this.move(peer, b, 'half_open')
    }
    if (b.probing) throw new CircuitOpenError(`circuit to ${peer} is half-open and a probe call is already under way`)
    b.probing = true
  }

  success (peer: string): void {
    const b = this.breakers.get(peer)
    if (b == null) return
    if (b.state !== 'closed') this.move(peer, b, 'closed')
    this.breakers.delete(peer)
  }

  /** Forgets a peer's failures: other evidence (it is back in membership, it sent a heartbeat) says it is up */
  reset (peer: string): void {
    const b = this.breakers.get(peer)
    if (b == null) return
    if (b.state !== 'closed') this.move(peer, b, 'closed')
    this.breakers.delete(peer)
  }

  /** Ends a permitted call without a verdict (the caller gave up): a half-open breaker may let another probe through */
  release (peer: string): void {
    const b = this.breakers.get(peer)
    if (b != null) b.probing = false
  }

  failure (peer: string): void {
    let b = this.breakers.get(peer)
    if (b == null) {
      b = { state: 'closed', failures: 0, openedAt: 0, cooldownMs: this.cooldownMs, probing: false }
      this.breakers.set(peer, b)
    }
    b.failures++
    if (b.state === 'half_open') {
      // The probe failed: stay away longer this time.
      b.cooldownMs = Math.min(this.maxCooldownMs, b.cooldownMs * 2)
      b.probing = false
      b.openedAt = this.now()
      this.move(peer, b, 'open')
    } else if (b.state === 'closed' && b.failures >= this.failureThreshold) {
      b.openedAt = this.now()
      this.move(peer, b, 'open')
    }
  }

  /** Peers whose breaker is not closed, with their state (status pages and metrics) */
  snapshot (): Array<{ peer: string, state: BreakerState, failures: number }> {
    return [...this.breakers.entries()]
      .map(([peer, b]) => ({ peer, state: this.state(peer), failures: b.failures }))
      .filter(s => s.state !== 'closed')
  }

  private move (peer: string, b: Breaker, to: BreakerState): void {
    const from = b.state
    b.state = to
    if (to !== 'half_open') b.probing = false
    this.onStateChange?.(peer, from, to)
  }
}
