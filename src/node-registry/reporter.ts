import { request } from '../net/rpc.js'
import { NodeReport, NodeReportResponse } from '../gen/node.js'
import { backoffDelay, sleep } from '../util/backoff.js'
import { NODE_PROTOCOL, NODE_PROTOCOL_LIMITS, MAX_CORRUPT_PER_REPORT } from './protocol.js'
import type { Host } from '../net/host.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface CapacityReport {
  capacityBytes: number
  usedBytes: number
  chunkCount: number
}

export interface RegistrationStatus {
  state: 'registering' | 'registered' | 'refused' | 'unreachable'
  coordinator: string
  lastReportAt?: number
  /** Stable error name of the last failure */
  error?: string
  message?: string
}

export interface NodeReporterInit {
  /** The coordinator to register with, including its /p2p/ peer ID */
  coordinator: Multiaddr
  /** Used until the coordinator tells us its own interval (default 5 s) */
  heartbeatIntervalMs?: number
}

/** Chunks found corrupt (a node's scrubber) that the coordinator has not been told of yet */
export interface CorruptChunkSource {
  /** At most `limit` CIDs, oldest first */
  pending: (limit: number) => string[]
  /** The coordinator accepted a report carrying these */
  acknowledge: (cids: string[]) => void
}

export interface NodeReporterComponents {
  host: Host
  logger: ComponentLogger
  capacity: () => Promise<CapacityReport>
  corrupt?: CorruptChunkSource
}

/**
 * A storage node's side of registration: reports capacity and addresses to its coordinator on every heartbeat,
 * backing off (with jitter) while the coordinator is unreachable. A refusal is kept visible in `status` and
 * retried slowly, because it is usually fixed by an operator, not by time.
 */
export class NodeReporter {
  private readonly components: NodeReporterComponents
  private readonly init: NodeReporterInit
  private readonly log: Logger
  private controller?: AbortController
  private loop?: Promise<void>
  private intervalMs: number
  status: RegistrationStatus

  constructor (components: NodeReporterComponents, init: NodeReporterInit) {
    this.components = components
    this.init = init
    this.intervalMs = init.heartbeatIntervalMs ?? 5_000
    this.log = components.logger.forComponent('collective:node-reporter')
    this.status = { state: 'registering', coordinator: init.coordinator.toString() }
  }

  async start (): Promise<void> {
    this.controller = new AbortController()
    this.loop = this.run(this.controller.signal)
  }

  async stop (): Promise<void> {
    this.controller?.abort(new Error('stopping'))
    await this.loop
  }

  /** Sends one report now; resolves once the coordinator answered */
  async report (signal?: AbortSignal): Promise<void> {
    const capacity = await this.components.capacity()
    const corruptCids = this.components.corrupt?.pending(MAX_CORRUPT_PER_REPORT) ?? []
    const res = await request(this.components.host, this.init.coordinator, NODE_PROTOCOL, {
      capacityBytes: capacity.capacityBytes,
      usedBytes: capacity.usedBytes,
      chunkCount: capacity.chunkCount,
      addrs: this.components.host.getMultiaddrs().map(a => a.bytes),
      corruptCids
    }, NodeReport, NodeReportResponse, NODE_PROTOCOL_LIMITS, { signal })
    if (res.heartbeatIntervalMs > 0) this.intervalMs = res.heartbeatIntervalMs
    if (!res.accepted) {
      if (this.status.state !== 'refused') this.log.error('coordinator refused registration - %s: %s', res.error, res.message)
      this.status = { state: 'refused', coordinator: this.status.coordinator, error: res.error, message: res.message }
      return
    }
    if (corruptCids.length > 0) this.components.corrupt?.acknowledge(corruptCids)
    if (this.status.state !== 'registered') this.log('registered with coordinator %s', this.status.coordinator)
    this.status = { state: 'registered', coordinator: this.status.coordinator, lastReportAt: Date.now() }
  }

  private async run (signal: AbortSignal): Promise<void> {
    let failures = 0
    while (!signal.aborted) {
      try {
        await this.report(signal)
        failures = this.status.state === 'refused' ? failures + 1 : 0
      } catch (err: any) {
        if (signal.aborted) return
        failures++
        this.status = { ...this.status, state: this.status.state === 'refused' ? 'refused' : 'unreachable', error: err.name, message: err.message }
        this.log('report to coordinator failed (%d in a row) - %s', failures, err.message)
      }
      const delay = failures === 0 ? this.intervalMs : Math.max(200, backoffDelay(failures, { initialMs: 500, maxMs: this.intervalMs * 6 }))
      try { await sleep(delay, signal) } catch { return }
    }
  }
}
