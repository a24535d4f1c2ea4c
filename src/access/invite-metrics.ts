import { inviteState } from './invite-control.js'
import type { InviteStore } from '../permissions/index.js'
import type { CollectiveMetrics } from '../metrics/metrics.js'

export interface InviteMetricsComponents {
  invites: InviteStore
  metrics: Pick<CollectiveMetrics, 'invitesActive' | 'invitesExpired'>
  /** Default: Date.now */
  now?: () => number
}

export interface InviteMetricsInit {
  /** How often expiries are looked for (default 10 s); changes made here refresh at once */
  intervalMs?: number
}

/**
 * Keeps collective_invites_active current and counts collective_invites_expired_total: an invite expiring is
 * an event nothing announces, so the store is looked at periodically. Invites that had already expired when the
 * daemon started are history, not news, and are not counted again.
 */
export class InviteMetrics {
  private readonly components: InviteMetricsComponents
  private readonly intervalMs: number
  private readonly counted = new Set<string>()
  private timer?: ReturnType<typeof setInterval>

  constructor (components: InviteMetricsComponents, init: InviteMetricsInit = {}) {
    this.components = components
    this.intervalMs = init.intervalMs ?? 10_000
  }

  async start (): Promise<void> {
    this.refresh(false)
    this.timer = setInterval(() => { this.refresh() }, this.intervalMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
  }

  refresh (countExpiries = true): void {
    const now = (this.components.now ?? Date.now)()
    let active = 0
    for (const invite of this.components.invites.list()) {
      const state = inviteState(invite, now)
      if (state === 'open') active++
      if (state === 'expired' && invite.uses < invite.maxUses && !this.counted.has(invite.id)) {
        this.counted.add(invite.id)
        if (countExpiries) this.components.metrics.invitesExpired.inc()
      }
    }
    this.components.metrics.invitesActive.set(active)
  }
}
