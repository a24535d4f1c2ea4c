import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { readPeerKey, readCertificateChain, TrustStore } from '../identity/index.js'
import { createHost } from '../net/host.js'
import { PeerIdentities } from '../net/peer-identities.js'
import { ControlServer } from '../control/server.js'
import { NodeRegistry } from '../node-registry/registry.js'
import { NodeReporter } from '../node-registry/reporter.js'
import { ChunkStore } from '../storage/chunk-store.js'
import { ChunkServer } from '../chunks/server.js'
import { ChunkClient } from '../chunks/client.js'
import { FileService } from '../files/service.js'
import { registerFileMethods } from '../files/control.js'
import { join } from 'node:path'
import { createMetrics } from '../metrics/metrics.js'
import { MetricsServer } from '../metrics/http-server.js'
import { daemonHealth } from './health.js'
import type { CollectiveMetrics } from '../metrics/metrics.js'
import { ConfigError } from './config.js'
import { IdentityConfigError } from './errors.js'
import type { DaemonConfig } from './config.js'
import type { Host } from '../net/host.js'
import type { VerifiedIdentity } from '../identity/index.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'

export interface DaemonInit {
  config: DaemonConfig
  /** Overrides `coordinator` from the config (how `up` points nodes at a coordinator on an ephemeral port) */
  coordinator?: string
  logger?: ComponentLogger
}

export interface Startable { start: () => Promise<void>, stop: () => Promise<void> }

/**
 * One running peer: loads and self-checks its identity, opens the control socket (which also guards against a
 * second daemon on the same home), starts the libp2p host and the components of its role. Components are
 * started in order and stopped in reverse.
 */
export class Daemon {
  readonly config: DaemonConfig
  private readonly init: DaemonInit
  private readonly logger: ComponentLogger
  private readonly log: Logger
  private readonly started: Startable[] = []
  readonly identities = new PeerIdentities()
  host?: Host
  identity?: VerifiedIdentity
  control?: ControlServer
  registry?: NodeRegistry
  reporter?: NodeReporter
  store?: ChunkStore
  files?: FileService
  readonly startedAt = Date.now()
  readonly metrics: CollectiveMetrics = createMetrics({ collectDefault: true })
  metricsServer?: MetricsServer
  /** The most recent refused handshakes, newest last: what an operator needs to see why a peer cannot connect */
  readonly refusals: Array<{ at: string, direction: string, remotePeer?: string, reason: string }> = []

  constructor (init: DaemonInit) {
    this.init = init
    this.config = init.config
    this.logger = init.logger ?? defaultLogger()
    this.log = this.logger.forComponent('collective:daemon')
  }

  private async loadIdentity (): Promise<{ trustStore: TrustStore, chain: Uint8Array[], key: Awaited<ReturnType<typeof readPeerKey>> }> {
    const { identity } = this.config
    const key = await readPeerKey(identity.key)
    const certs = await readCertificateChain(identity.cert)
    const [root] = await readCertificateChain(identity.root)
    const trustStore = new TrustStore({ root })
    const chain = certs.map(c => new Uint8Array(c.rawData))
    try {
      if (certs.length > 1) await trustStore.addMemberCA(certs[1])
      // A daemon whose own certificate would be refused by everyone should say so now, not on the first dial.
      this.identity = await trustStore.verifyChain(chain, peerIdFromPrivateKey(key))
    } catch (err: any) {
      throw new IdentityConfigError(`this daemon's certificate ${identity.cert} does not verify against ${identity.root} with key ${identity.key}: ${err.name}: ${err.message}`)
    }
    if (this.identity.role !== this.config.role) {
      throw new ConfigError(`config ${this.config.path} says role "${this.config.role}" but the certificate is for a ${this.identity.role}`)
    }
    return { trustStore, chain, key }
  }

  async start (): Promise<void> {
    const { trustStore, chain, key } = await this.loadIdentity()
    const identity = this.identity as VerifiedIdentity

    this.control = new ControlServer({ logger: this.logger }, { path: this.config.controlSocket })
    await this.control.start()
    this.started.push(this.control)

    const host = await createHost({
      privateKey: key,
      role: this.config.role,
      listen: this.config.listen,
      chain,
      trustStore,
      identities: this.identities,
      onRefused: ({ direction, remotePeer, reason }) => {
        this.refusals.push({ at: new Date().toISOString(), direction, remotePeer, reason })
        if (this.refusals.length > 20) this.refusals.shift()
        this.metrics.connectionFailures.inc({ reason: reason === 'HandshakeTimeoutError' ? 'timeout' : reason === 'NoiseHandshakeError' ? 'handshake' : 'certificate' })
      },
      onAccepted: ({ direction }) => { this.metrics.connectionAttempts.inc({ direction }) }
    })
    host.addEventListener('peer:disconnect', (e) => {
      if (host.getConnections(e.detail).length === 0) this.identities.delete(e.detail)
    })
    const countConnections = (): void => { this.metrics.connectionsOpen.set(host.getConnections().length) }
    host.addEventListener('connection:open', countConnections)
    host.addEventListener('connection:close', countConnections)
    await host.start()
    this.host = host
    this.started.push({ start: async () => {}, stop: async () => { await host.stop() } })

    if (this.config.role === 'coordinator') await this.startCoordinator(host, identity)
    if (this.config.role === 'node') await this.startNode(host)

    if (this.config.metrics.enabled) {
      const [mhost, mport] = this.config.metrics.listen.split(':')
      this.metricsServer = await this.startPart(new MetricsServer({ host: mhost, port: Number(mport) }, { metrics: this.metrics, health: async () => await this.health() }))
    }

    this.registerControlMethods()
    this.log('%s %s started as %s, listening on %s', identity.role, identity.name, identity.peerId, host.getMultiaddrs().map(String).join(' '))
  }

  private async startPart<T extends Startable> (part: T): Promise<T> {
    await part.start()
    this.started.push(part)
    return part
  }

  private async startCoordinator (host: Host, identity: VerifiedIdentity): Promise<void> {
    const { storage } = this.config
    const registry = this.registry = await this.startPart(new NodeRegistry({ host, identities: this.identities, identity, logger: this.logger }, { heartbeatIntervalMs: this.config.heartbeatIntervalMs }))
    const chunks = await this.startPart(new ChunkClient({ host, logger: this.logger }))
    this.files = await this.startPart(new FileService({ chunks, nodes: () => registry.list(), logger: this.logger }, {
      path: join(this.config.dataDir, 'metadata.db'),
      replication: storage.replication,
      gcGraceMs: storage.gcGraceMs,
      gcIntervalMs: storage.gcIntervalMs
    }))
    registerFileMethods(this.control as ControlServer, { files: this.files, owner: `${identity.member}@${identity.domain}`, nodes: () => registry.list() })
  }

  private async startNode (host: Host): Promise<void> {
    const coordinator = this.init.coordinator ?? this.config.coordinator
    if (coordinator == null) throw new ConfigError(`config ${this.config.path}: a node needs "coordinator" (the multiaddr of its coordinator, ending in /p2p/<peer id>)`)
    const store = this.store = await this.startPart(new ChunkStore({ path: join(this.config.dataDir, 'chunks'), capacityBytes: this.config.storage.capacityBytes }))
    const m = this.metrics
    await this.startPart(new ChunkServer({ host, identities: this.identities, store, logger: this.logger }, {
      onOperation: (op, result, bytes, seconds) => {
        m.chunkOperations.inc({ op, result: result === 'ok' ? 'ok' : 'error' })
        m.chunkOperationDuration.observe({ op }, seconds)
        if (bytes > 0) m.chunkBytes.inc({ direction: op === 'put' ? 'in' : 'out' }, bytes)
        if (result === 'invalid' && op === 'put') m.chunkVerificationFailures.inc()
      }
    }))
    this.reporter = await this.startPart(new NodeReporter({
      host,
      logger: this.logger,
      capacity: async () => {
        const s = await store.stats()
        return { capacityBytes: s.capacityBytes, usedBytes: s.usedBytes, chunkCount: s.chunkCount }
      }
    }, { coordinator: multiaddr(coordinator), heartbeatIntervalMs: this.config.heartbeatIntervalMs }))
  }

  async stop (): Promise<void> {
    for (const part of this.started.reverse()) {
      await part.stop().catch(err => { this.log.error('error while stopping - %e', err) })
    }
    this.started.length = 0
  }

  /** Connected peers with the identity their certificate proved */
  peers (): Array<{ peerId: string, name?: string, role?: string, member?: string, domain?: string, addrs: string[], direction: string }> {
    const host = this.host
    if (host == null) return []
    const byPeer = new Map<string, { addrs: string[], direction: string }>()
    for (const conn of host.getConnections()) {
      const id = conn.remotePeer.toString()
      const entry = byPeer.get(id) ?? { addrs: [], direction: conn.direction }
      entry.addrs.push(conn.remoteAddr.toString())
      byPeer.set(id, entry)
    }
    return [...byPeer.entries()].map(([peerId, c]) => {
      const v = this.identities.get(peerId)
      return { peerId, name: v?.name, role: v?.role, member: v?.member, domain: v?.domain, addrs: c.addrs, direction: c.direction }
    }).sort((a, b) => (a.name ?? a.peerId).localeCompare(b.name ?? b.peerId))
  }

  /** Refreshes the gauges that are cheaper to read on demand than to keep current, and scores health */
  async health (): Promise<import('../metrics/health.js').HealthReport> {
    if (this.registry != null) {
      const nodes = this.registry.list()
      this.metrics.registeredNodes.set(nodes.length)
      for (const n of nodes) this.metrics.nodeHealthScore.set({ node: n.name }, n.state === 'alive' ? 100 : n.state === 'suspect' ? 50 : 0)
      const live = nodes.filter(n => n.state !== 'dead')
      this.metrics.storageCapacityBytes.set(live.reduce((s, n) => s + n.capacityBytes, 0))
      this.metrics.storageUsedBytes.set(live.reduce((s, n) => s + n.usedBytes, 0))
    }
    if (this.store != null) {
      const s = await this.store.stats()
      this.metrics.storageCapacityBytes.set(s.capacityBytes)
      this.metrics.storageUsedBytes.set(s.usedBytes)
      this.metrics.storageChunks.set(s.chunkCount)
    }
    return await daemonHealth(this)
  }

  status (): Record<string, unknown> {
    const id = this.identity as VerifiedIdentity
    return {
      name: id.name,
      role: id.role,
      member: id.member,
      domain: id.domain,
      peerId: id.peerId,
      certificateExpires: id.notAfter.toISOString(),
      listen: this.host?.getMultiaddrs().map(String) ?? [],
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      config: this.config.path,
      peers: this.peers(),
      nodes: this.registry?.list(),
      registration: this.reporter?.status,
      replication: this.files?.replication,
      refusals: this.refusals,
      metrics: this.metricsServer != null ? `http://${this.metricsServer.address.host}:${this.metricsServer.address.port}/metrics` : undefined
    }
  }

  private registerControlMethods (): void {
    const control = this.control as ControlServer
    control.register('status', async () => this.status())
    control.register('peers', async () => this.peers())
    control.register('nodes', async () => this.registry?.list() ?? [])
  }
}
