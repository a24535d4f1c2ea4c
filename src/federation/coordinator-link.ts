import { multiaddr } from '@multiformats/multiaddr'
import { backoffDelay, sleep } from '../util/backoff.js'
import { combineSignals } from '../util/signals.js'
import type { BackoffInit } from '../util/backoff.js'
import type { ComponentLogger, Libp2p, Logger } from '@libp2p/interface'

export interface CoordinatorLinkComponents {
  host: Libp2p
  logger: ComponentLogger
}

export interface CoordinatorLinkInit extends BackoffInit {
  /** The coordinator's multiaddr, ending in /p2p/<peer id> */
  address: string
  /** Told when the link comes up or goes down (status, logs) */
  onChange?: (up: boolean, error?: Error) => void
}

/**
 * Keeps a client daemon connected to its member's coordinator: the connection carries the DataStore
 * announcements (gossipsub) the client routes by, and the client's metadata calls. Redials with exponential
 * backoff and jitter (up to 30 s by default) for as long as the daemon runs: a laptop goes to sleep and off the
 * network, and should simply come back.
 */
export class CoordinatorLink {
  private readonly components: CoordinatorLinkComponents
  private readonly init: CoordinatorLinkInit
  private readonly log: Logger
  private controller?: AbortController
  private loop?: Promise<void>
  private wake?: () => void
  private up = false

  constructor (components: CoordinatorLinkComponents, init: CoordinatorLinkInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('collective:federation:coordinator-link')
  }

  /** The coordinator's peer ID */
  get peerId (): string {
    const id = multiaddr(this.init.address).getComponents().filter(c => c.name === 'p2p').pop()?.value
    if (id == null) throw new TypeError(`${this.init.address} does not end in /p2p/<peer id>`)
    return id
  }

  get connected (): boolean {
    return this.up
  }

  async start (): Promise<void> {
    const controller = this.controller = new AbortController()
    this.components.host.addEventListener('peer:disconnect', this.onDisconnect)
    this.loop = this.run(controller.signal)
  }

  async stop (): Promise<void> {
    this.components.host.removeEventListener('peer:disconnect', this.onDisconnect)
    this.controller?.abort(new Error('stopping'))
    this.wake?.()
    await this.loop
  }

  private readonly onDisconnect = (e: CustomEvent): void => {
    if (e.detail?.toString() !== this.peerId) return
    this.setUp(false)
    this.wake?.()
  }

  private setUp (up: boolean, error?: Error): void {
    if (this.up === up && error == null) return
    this.up = up
    this.init.onChange?.(up, error)
  }

  private async run (signal: AbortSignal): Promise<void> {
    let attempt = 0
    while (!signal.aborted) {
      if (!this.up) {
        const dialling = combineSignals(signal, AbortSignal.timeout(10_000))
        try {
          await this.components.host.dial(multiaddr(this.init.address), { signal: dialling })
          attempt = 0
          this.setUp(true)
        } catch (err: any) {
          if (signal.aborted) return
          this.log('dialling the coordinator failed (attempt %d) - %s', attempt + 1, err.message)
          this.setUp(false, err)
          try { await sleep(backoffDelay(attempt++, this.init), signal) } catch { return }
          continue
        } finally {
          dialling.clear()
        }
      }
      // Connected: wait until the connection goes (onDisconnect wakes us) or the daemon stops.
      await new Promise<void>(resolve => { this.wake = resolve })
    }
  }
}
