import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { readPeerKey, readCertificateChain, TrustStore, X509Certificate } from '../identity/index.js'
import { createHost } from '../net/host.js'
import { PeerIdentities } from '../net/peer-identities.js'
import { NodeRegistry } from '../node-registry/registry.js'
import { NodeReporter } from '../node-registry/reporter.js'
import { DrainList } from '../node-registry/drains.js'
import { Repairer } from '../repair/repairer.js'
import { HotContent } from '../repair/hot-content.js'
import { Scrubber } from '../repair/scrubber.js'
import { registerRepairMethods } from '../repair/control.js'
import { ChunkOwners } from '../storage/chunk-owners.js'
import { ChunkStore } from '../storage/chunk-store.js'
import { ChunkServer } from '../chunks/server.js'
import { ChunkClient } from '../chunks/client.js'
import { FileService } from '../files/service.js'
import type { FileServiceComponents } from '../files/service.js'
import { MetadataError } from '../metadata/errors.js'
import { registerFileMethods } from '../files/control.js'
import { LocalFileError, LocalPathUnavailableError } from '../files/local-files.js'
import { join } from 'node:path'
import { createMetrics, RESULTS } from '../metrics/metrics.js'
import { MetricsServer } from '../metrics/http-server.js'
import { InstrumentedControlServer } from '../metrics/control.js'
import type { ControlOutcome } from '../metrics/control.js'
import { NodeStateTracker, recordNodes } from '../metrics/node-watch.js'
import type { NodeChange } from '../metrics/node-watch.js'
import { createLogger } from '../logging/logger.js'
import type { Logger as OperatorLogger, LogFields } from '../logging/logger.js'
import type { RegistrationStatus } from '../node-registry/reporter.js'
import { daemonHealth } from './health.js'
import { Federation } from '../federation/federation.js'
import { SwimKind } from '../gen/swim.js'
import { ResilientChunkTransport } from '../transfer/resilient.js'
import { PeerPerformance } from '../placement/performance.js'
import { place } from '../placement/strategies.js'
import type { StrategyName } from '../placement/strategies.js'
import type { PlaceChunk } from '../transfer/writer.js'
import { selfIssued } from '../permissions/capability.js'
import { PermissionsDatabase, DataStoreRegistry, RevocationStore, InviteStore, META_PROTOCOL } from '../permissions/index.js'
import { RevocationGossip } from '../access/revocations.js'
import { DataStoreDirectory } from '../access/datastores.js'
import { CoordinatorLink } from '../federation/coordinator-link.js'
import { MetaServer } from '../access/meta-server.js'
import { MetaClient } from '../access/meta-client.js'
import { registerAccessMethods } from '../access/control.js'
import { RemoteContent } from '../access/content-client.js'
import { ContentServer } from '../access/content-server.js'
import type { ContentServerComponents } from '../access/content-server.js'
import { CertificateIssuer } from '../access/issuer.js'
import { CertificateRenewal } from '../access/renewal.js'
import { InviteRedemptions } from '../access/invites.js'
import { InviteMetrics } from '../access/invite-metrics.js'
import { registerInviteMethods } from '../access/invite-control.js'
import { registerCertificateMethods } from '../access/cert-control.js'
import { MetaOp } from '../gen/meta.js'
import type { MetaOpHandler } from '../access/meta-server.js'
import type { ChunkTransport } from '../transfer/types.js'
import type { NodeRecord } from '../node-registry/registry.js'
import type { PrivateKey } from '@libp2p/interface'
import type { CollectiveMetrics } from '../metrics/metrics.js'
import { ConfigError } from './config.js'
import { IdentityConfigError } from './errors.js'
import type { DaemonConfig } from './config.js'
import type { Host } from '../net/host.js'
import type { VerifiedIdentity } from '../identity/index.js'
import type { HealthReport } from '../metrics/health.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'

export interface DaemonInit {
  config: DaemonConfig
  /** Overrides `coordinator` from the config (how `up` points nodes at a coordinator on an ephemeral port) */
  coordinator?: string
  /** Debug traces (@libp2p/logger, shown with DEBUG=...); default: defaultLogger() */
  logger?: ComponentLogger
  /**
   * Operator log: one line per event an operator cares about, on stderr. Default: createLogger('daemon'), whose level
   * and format come from COLLECTIVE_LOG_LEVEL / COLLECTIVE_LOG_FORMAT (set by the CLI's --log-level/--log-format)
   */
  log?: OperatorLogger
}

/** Refused handshakes from one peer for one reason are logged at most once in this window (a peer retries) */
const REFUSAL_LOG_WINDOW_MS = 60_000

/** The control methods that move file contents, and what a failure of each is called in the operator log */
const TRANSFER_METHODS: Record<string, 'write' | 'read' | undefined> = { 'fs.put': 'write', 'fs.putLocal': 'write', 'fs.get': 'read', 'fs.getLocal': 'read' }

export interface StorageSummary {
  capacityBytes: number
  usedBytes: number
  chunks?: number
  liveNodes?: number
  /** null where not measured (a node knows nothing of replication) */
  underReplicatedChunks: number | null
  chunksAtMostOneCopy?: number
}

/** What the role-specific parts of a daemon are built from */
interface PeerParts {
  host: Host
  key: PrivateKey
  trustStore: TrustStore
  chain: Uint8Array[]
  identity: VerifiedIdentity
  /** Permissions tables: revocations on every daemon, DataStores, grants and invites on a coordinator */
  database: PermissionsDatabase
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
  /** Given to components for their debug traces (DEBUG=collective:*) */
  private readonly logger: ComponentLogger
  private readonly log: Logger
  private readonly oplog: OperatorLogger
  private readonly nodeTracker = new NodeStateTracker()
  private registrationState?: RegistrationStatus['state']
  private readonly refusalLog = new Map<string, { at: number, suppressed: number }>()
  private running = false
  private readonly started: Startable[] = []
  readonly identities = new PeerIdentities()
  host?: Host
  identity?: VerifiedIdentity
  control?: InstrumentedControlServer
  registry?: NodeRegistry
  reporter?: NodeReporter
  store?: ChunkStore
  files?: FileService
  federation?: Federation
  chunks?: ResilientChunkTransport
  datastores?: DataStoreDirectory
  /** A client's connection to its member's coordinator */
  coordinatorLink?: CoordinatorLink
  /** A coordinator with its member CA: renews its own and its member's certificates */
  private renewal?: CertificateRenewal
  /** Set on a coordinator that can certify newcomers: whether its handshake admits one without a certificate now */
  private admitNewcomers?: () => boolean
  /** What each storage node delivered lately, measured on real transfers; placement ranks nodes by it */
  readonly performance = new PeerPerformance()
  repairer?: Repairer
  scrubber?: Scrubber
  readonly startedAt = Date.now()
  readonly metrics: CollectiveMetrics = createMetrics({ collectDefault: true })
  metricsServer?: MetricsServer
  /** The most recent refused handshakes, newest last: what an operator needs to see why a peer cannot connect */
  readonly refusals: Array<{ at: string, direction: string, remotePeer?: string, reason: string }> = []

  constructor (init: DaemonInit) {
    this.init = init
    this.config = init.config
    this.logger = init.logger ?? defaultLogger()
    this.oplog = init.log ?? createLogger('daemon')
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
    try {
      await this.startParts()
    } catch (err) {
      this.oplog.error('daemon failed to start', { role: this.config.role, config: this.config.path, error: err })
      throw err
    }
  }

  private async startParts (): Promise<void> {
    const { trustStore, chain, key } = await this.loadIdentity()
    const identity = this.identity as VerifiedIdentity

    this.control = new InstrumentedControlServer({ logger: this.logger }, { path: this.config.controlSocket }, o => { this.onControlRequest(o) })
    await this.control.start()
    this.started.push(this.control)

    // Revocations apply before the host accepts anyone: a revoked peer must never get in, not even once.
    const database = new PermissionsDatabase({ logger: this.logger }, { path: join(this.config.dataDir, 'permissions.db') })
    await this.startPart({ start: async () => { database.start() }, stop: async () => { database.stop() } })
    const revocations = new RevocationStore({ database, trustStore, logger: this.logger })
    revocations.start()

    const host = await createHost({
      privateKey: key,
      role: this.config.role,
      listen: this.config.listen,
      chain,
      trustStore,
      identities: this.identities,
      uncertified: this.config.role === 'coordinator' ? { admit: () => this.admitNewcomers?.() === true, protocols: [META_PROTOCOL] } : undefined,
      onRefused: ({ direction, remotePeer, reason, error }) => {
        this.refusals.push({ at: new Date().toISOString(), direction, remotePeer, reason })
        if (this.refusals.length > 20) this.refusals.shift()
        this.metrics.connectionFailures.inc({ reason: reason === 'HandshakeTimeoutError' ? 'timeout' : reason === 'NoiseHandshakeError' ? 'handshake' : 'certificate' })
        this.logRefusal(direction, remotePeer, reason, error)
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

    const peer = { host, key, trustStore, chain, identity, database }
    await this.startRevocations(host, revocations)
    if (this.config.role === 'coordinator') await this.startCoordinator(peer)
    if (this.config.role === 'node') await this.startNode(peer)
    if (this.config.role === 'client') await this.startClient(peer)
    registerCertificateMethods(this.control as InstrumentedControlServer, {
      identity,
      certFile: this.config.identity.cert,
      trustStore,
      host,
      identities: this.identities,
      meta: new MetaClient({ host }),
      renewal: this.renewal,
      coordinators: [this.init.coordinator ?? this.config.coordinator, ...this.config.federation.bootstrap].filter((a): a is string => a != null)
    })

    if (this.config.metrics.enabled) {
      const [mhost, mport] = this.config.metrics.listen.split(':')
      this.metricsServer = await this.startPart(new MetricsServer({ host: mhost, port: Number(mport) }, { metrics: this.metrics, health: async () => await this.health() }))
    }

    this.registerControlMethods()
    for (const method of this.control.methods) {
      for (const result of RESULTS) this.metrics.controlRequests.inc({ method, result }, 0)
    }
    this.startObserving()
    this.running = true
    this.log('%s %s started as %s, listening on %s', identity.role, identity.name, identity.peerId, host.getMultiaddrs().map(String).join(' '))
    this.oplog.info('daemon started', {
      name: identity.name,
      role: identity.role,
      peerId: identity.peerId,
      addrs: host.getMultiaddrs().map(String),
      metrics: this.metricsUrl(),
      control: this.config.controlSocket
    })
  }

  private metricsUrl (): string | undefined {
    return this.metricsServer != null ? `http://${this.metricsServer.address.host}:${this.metricsServer.address.port}/metrics` : undefined
  }

  /**
   * Follows what the components only expose as state — the registry's nodes and the reporter's registration — and
   * turns changes into log lines and metrics. Polled at twice the heartbeat rate (at most every second), so a
   * transition is seen within half a heartbeat and every heartbeat is counted.
   */
  private startObserving (): void {
    if (this.registry == null && this.reporter == null) return
    const intervalMs = Math.max(50, Math.min(1000, Math.floor(this.config.heartbeatIntervalMs / 2)))
    const timer = setInterval(() => { this.observe() }, intervalMs)
    timer.unref()
    this.observe()
    this.started.push({ start: async () => {}, stop: async () => { clearInterval(timer) } })
  }

  private observe (): void {
    try {
      if (this.registry != null) {
        const nodes = this.registry.list()
        const { changes, heartbeats } = this.nodeTracker.update(nodes)
        if (heartbeats > 0) this.metrics.nodeHeartbeats.inc(heartbeats)
        recordNodes(this.metrics, nodes)
        for (const change of changes) this.logNodeChange(change)
        if (changes.length > 0) this.repairer?.wake()
      }
      if (this.reporter != null) this.logRegistration(this.reporter.status)
    } catch (err) {
      this.log.error('observing components failed - %e', err)
    }
  }

  private logNodeChange (change: NodeChange): void {
    const { node } = change
    const fields: LogFields = { node: node.name, peerId: node.peerId }
    if (change.type === 'registered') {
      this.oplog.info('node registered', { ...fields, capacityBytes: node.capacityBytes, usedBytes: node.usedBytes })
    } else if (change.to === 'alive') {
      this.oplog.info('node alive again', { ...fields, was: change.from })
    } else if (change.to === 'suspect') {
      this.oplog.warn('node suspect: missed heartbeats', { ...fields, lastSeen: new Date(node.lastSeen).toISOString() })
    } else {
      // Its chunks now have one replica fewer until it returns.
      this.oplog.error('node dead', { ...fields, lastSeen: new Date(node.lastSeen).toISOString() })
    }
  }

  private logRegistration (status: RegistrationStatus): void {
    if (status.state === this.registrationState) return
    this.registrationState = status.state
    const fields: LogFields = { coordinator: status.coordinator, error: status.error, message: status.message }
    if (status.state === 'registered') this.oplog.info('registered with coordinator', { coordinator: status.coordinator })
    else if (status.state === 'refused') this.oplog.error('coordinator refused registration', fields)
    else if (status.state === 'unreachable') this.oplog.warn('coordinator unreachable', fields)
  }

  private logRefusal (direction: string, remotePeer: string | undefined, reason: string, error: Error): void {
    // A refused peer usually retries; one line per peer and reason per window says the same without the flood.
    const key = `${remotePeer ?? '?'} ${reason}`
    const now = Date.now()
    const last = this.refusalLog.get(key)
    if (last != null && now - last.at < REFUSAL_LOG_WINDOW_MS) {
      last.suppressed++
      return
    }
    if (this.refusalLog.size >= 256) this.refusalLog.delete(this.refusalLog.keys().next().value as string)
    this.refusalLog.delete(key)
    this.refusalLog.set(key, { at: now, suppressed: 0 })
    this.oplog.warn('handshake refused', { direction, peer: remotePeer, reason, error: error?.message, repeatsSinceLastLine: last != null && last.suppressed > 0 ? last.suppressed : undefined })
  }

  /** Counts every control request and logs failed reads and writes, the failures a user will ask an operator about */
  private onControlRequest (o: ControlOutcome): void {
    this.metrics.controlRequests.inc({ method: o.method, result: o.result })
    const what = TRANSFER_METHODS[o.method]
    if (o.result !== 'error' || what == null) return
    const fields: LogFields = { path: o.params.path, error: o.error?.name, message: o.error?.message, seconds: Math.round(o.seconds * 1000) / 1000 }
    if (o.error?.name === 'ReplicationError') this.metrics.placementFailures.inc({ reason: 'insufficient_nodes' })
    if (o.aborted) {
      this.oplog.info(`${what} cancelled`, fields)
    } else if (o.error instanceof MetadataError || o.error instanceof TypeError || o.error instanceof LocalFileError || o.error instanceof LocalPathUnavailableError) {
      // The request itself was wrong (no such file, bad parameter, a local file the daemon cannot use): the client
      // was told, nothing is broken here.
      this.oplog.info(`${what} rejected`, fields)
    } else {
      this.oplog.error(`${what} failed`, fields)
    }
  }

  private async startPart<T extends Startable> (part: T): Promise<T> {
    await part.start()
    this.started.push(part)
    return part
  }

  /** SWIM membership, node announcements and the directory built on them; coordinators and nodes take part */
  private async startFederation (peer: PeerParts, seeds: string[], localNodes?: () => NodeRecord[]): Promise<Federation> {
    const log = this.oplog.child('membership')
    const federation = this.federation = await this.startPart(new Federation({
      host: peer.host,
      privateKey: peer.key,
      trustStore: peer.trustStore,
      chain: peer.chain,
      identity: peer.identity,
      identities: this.identities,
      localNodes,
      logger: this.logger,
      onExchange: ({ protocol, kind, ok, seconds }) => {
        if (protocol === 'sync') {
          this.metrics.gossipMessages.inc({ type: 'sync' })
          this.metrics.antiEntropyRuns.inc({ result: ok ? 'ok' : 'error' })
          return
        }
        this.metrics.gossipMessages.inc({ type: kind === SwimKind.PING_REQ ? 'ping_req' : 'ping' })
        if (!ok) return
        this.metrics.gossipMessages.inc({ type: 'ack' })
        this.metrics.probeDuration.observe({ kind: kind === SwimKind.PING_REQ ? 'indirect' : 'direct' }, seconds)
      },
      onMemberChange: ({ member, previous }) => {
        this.recordMembers()
        if (member.state !== previous) this.repairer?.wake()
        if (member.id === peer.identity.peerId || previous === member.state) return
        const fields: LogFields = { peer: member.meta.name ?? member.id, peerId: member.id, role: member.meta.role, incarnation: member.incarnation }
        if (previous == null) log.info('peer joined', { ...fields, state: member.state })
        else if (member.state === 'alive') {
          log.info('peer alive again', { ...fields, was: previous })
          // It answers probes again: give it traffic at once instead of waiting out a breaker's cool-down.
          this.chunks?.breakers.reset(member.id)
        }
        else if (member.state === 'suspect') log.warn('peer suspect: not answering probes', fields)
        else if (member.state === 'dead') log.error('peer dead', fields)
        else log.info('peer left', fields)
      }
    }, { ...this.config.federation, seeds }))
    this.recordMembers()
    return federation
  }

  private recordMembers (): void {
    const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0 }
    for (const m of this.federation?.swim.members() ?? []) {
      if (m.state === 'left') continue
      counts[m.state]++
    }
    for (const [state, n] of Object.entries(counts)) this.metrics.members.set({ state }, n)
  }

  /**
   * A write's placement: its DataStore's strategy and replica count when the path is in one of ours, else the
   * default (`backup`: distinct members first) with the configured replication. Every decision is counted.
   */
  private placementFor (path: string, localDomain: string, replication: number): { replication: number, place: PlaceChunk } {
    const ds = this.datastores?.find(path)
    const strategy: StrategyName = ds?.local === true ? ds.strategy : 'backup'
    return {
      replication: ds?.local === true ? ds.replicas : replication,
      place: (nodes, count, exclude, holders) => {
        this.metrics.placementOperations.inc({ strategy })
        return place(strategy, { nodes, count, exclude, holders }, { localDomain, performance: this.performance })
      }
    }
  }

  /** Revocations spread over gossipsub; the CLI hands in the ones a CA holder signed (`cert revoke`, `member revoke`) */
  private async startRevocations (host: Host, store: RevocationStore): Promise<void> {
    const log = this.oplog.child('revocations')
    const gossip = await this.startPart(new RevocationGossip({
      host,
      store,
      identities: this.identities,
      logger: this.logger,
      onRevoked: (record, disconnected) => { log.warn('revocation applied', { kind: record.kind, name: record.name, serial: record.serial, peerId: record.peerId, disconnected }) }
    }, { republishIntervalMs: this.config.federation.syncIntervalMs * 3 }))
    const control = this.control as InstrumentedControlServer
    control.register('revocation.publish', async p => {
      if (typeof p.record !== 'string') throw new TypeError('parameter "record" must be a base64 string')
      const { record, disconnected } = await gossip.publish(new Uint8Array(Buffer.from(p.record, 'base64')))
      return { kind: record.kind, name: record.name, serial: record.serial, peerId: record.peerId, version: record.version, disconnected }
    })
    control.register('revocations', async () => gossip.list().map(r => ({ kind: r.kind, name: r.name, serial: r.serial, peerId: r.peerId, version: r.version, revokedAt: new Date(r.revokedAtMs).toISOString(), reason: r.reason })))
  }

  /** Retries with backoff and a circuit breaker per peer around the chunk client, counted in the metrics */
  private resilient (transport: ChunkTransport): ResilientChunkTransport {
    const roleOf = (peer: string): string => this.identities.get(peer)?.role === 'coordinator' ? 'coordinator' : 'node'
    const log = this.oplog.child('resilience')
    const r: ResilientChunkTransport = new ResilientChunkTransport({
      transport,
      performance: this.performance,
      onRetry: () => { this.metrics.retries.inc() },
      onBreakerChange: (peer, from, to) => {
        const peer_role = roleOf(peer)
        if (to === 'open') {
          this.metrics.circuitBreakerOpens.inc({ peer_role })
          if (from === 'closed') log.warn('circuit breaker open: node keeps failing, traffic goes elsewhere', { peerId: peer })
        } else if (to === 'closed') {
          log.info('circuit breaker closed: node answers again', { peerId: peer })
        }
        const counts: Record<string, number> = { open: 0, half_open: 0 }
        for (const b of r.breakers.snapshot()) if (roleOf(b.peer) === peer_role) counts[b.state]++
        for (const [state, n] of Object.entries(counts)) this.metrics.circuitBreakers.set({ peer_role, state }, n)
      }
    })
    return r
  }

  private async startCoordinator ({ host, identity, ...peer }: PeerParts): Promise<void> {
    const { storage } = this.config
    const drains = await this.startPart(new DrainList({ path: join(this.config.dataDir, 'drains.json') }))
    const registry = this.registry = await this.startPart(new NodeRegistry({ host, identities: this.identities, identity, logger: this.logger, drains }, {
      heartbeatIntervalMs: this.config.heartbeatIntervalMs,
      onCorruptChunks: (peerId, cids) => { this.onCorruptChunks(peerId, cids) },
      onRefused: ({ peerId, name, reason, message }) => { this.oplog.child('node-registry').warn('node refused', { node: name ?? peerId, reason, message }) }
    }))
    const federation = await this.startFederation({ host, identity, ...peer }, this.config.federation.bootstrap, () => registry.list())
    const client = await this.startPart(new ChunkClient({ host, logger: this.logger, capabilities: selfIssued(peer.key) }))
    const chunks = this.chunks = this.resilient(client)
    // Reads are counted into it once the metadata it marks hot chunks in exists (the file service's).
    let hot: HotContent | undefined
    // A node whose breaker is open is only a last resort, like one that missed heartbeats: read last, rarely
    // placed on, and never rebalanced from or to (a node that just died keeps its heartbeat state for a while,
    // and every move off it would wait out a timeout).
    const knownNodes = (): NodeRecord[] => federation.directory.nodes()
      .map(n => n.state === 'alive' && chunks.isOpen(n.peerId) ? { ...n, state: 'suspect' } : n)
    const fileComponents: FileServiceComponents = {
      chunks,
      // Other members' nodes are placement candidates too: replicas spread across households. A draining node
      // takes no new chunks, and a copy on it no longer counts toward a write's replicas.
      nodes: () => knownNodes().filter(n => n.draining !== true),
      logger: this.logger,
      onFailover: () => { this.metrics.failovers.inc() },
      onChunkRead: cid => {
        this.metrics.popularityChunkReads.inc()
        hot?.record(cid)
      },
      onBadReplica: (cid, peerId) => {
        this.metrics.chunkVerificationFailures.inc()
        this.oplog.warn('corrupt replica dropped', { cid, peerId, node: federation.directory.nodes().find(n => n.peerId === peerId)?.name })
      },
      placementFor: path => this.placementFor(path, identity.domain, storage.replication),
      onGarbageCollected: (chunks) => { this.oplog.child('files').info('garbage collected', { chunks }) },
      onGarbageError: (error, chunk) => {
        if (chunk != null) this.oplog.child('files').warn('garbage chunk not deleted, will retry', { ...chunk, error })
        else this.oplog.child('files').error('garbage collection failed', { error })
      }
    }
    this.files = await this.startPart(new FileService(fileComponents, {
      path: join(this.config.dataDir, 'metadata.db'),
      replication: storage.replication,
      gcGraceMs: storage.gcGraceMs,
      gcIntervalMs: storage.gcIntervalMs
    }))
    registerFileMethods(this.control as InstrumentedControlServer, { files: this.files, owner: `${identity.member}@${identity.domain}`, nodes: () => federation.directory.nodes() })
    const repairLog = this.oplog.child('repair')
    const { repair, popularity } = this.config
    hot = new HotContent({
      metadata: this.files.metadata,
      chunks,
      logger: this.logger,
      onTrimmed: () => { this.metrics.repairTrimmedReplicas.inc() }
    }, { maxReplicas: popularity.maxReplicas, halfLifeMs: popularity.halfLifeMs, hotReads: popularity.hotThreshold })
    this.repairer = await this.startPart(new Repairer({
      metadata: this.files.metadata,
      chunks,
      nodes: knownNodes,
      logger: this.logger,
      hot,
      onRepaired: ({ bytes, reason }) => {
        if (reason === 'popularity') {
          this.metrics.repairHotReplicas.inc()
          return
        }
        this.metrics.repairChunks.inc()
        this.metrics.repairBytes.inc(bytes)
      },
      onMoved: ({ bytes }) => {
        this.metrics.repairRebalancedChunks.inc()
        this.metrics.repairRebalancedBytes.inc(bytes)
      },
      onRepairFailed: (cid, error) => {
        this.metrics.repairFailures.inc()
        repairLog.warn('chunk not repaired, will retry', { cid, error })
      },
      onDrained: () => { this.metrics.repairDrainedChunks.inc() }
    }, {
      replication: storage.replication,
      intervalMs: repair.intervalMs,
      startDelayMs: repair.startDelayMs,
      bandwidthBytesPerSecond: repair.bandwidthBytesPerSecond,
      concurrency: repair.concurrency,
      rebalance: repair.rebalance && { tolerance: repair.rebalanceTolerance, minGap: repair.rebalanceMinGap }
    }))
    registerRepairMethods(this.control as InstrumentedControlServer, { repairer: this.repairer, drains, registry, files: this.files, nodes: () => federation.directory.nodes() })
    await this.startAccess({ host, identity, ...peer }, chunks, { files: this.files, nodes: fileComponents.nodes, has: async (peerId, cid, signal) => (await client.has(peerIdFromString(peerId), cid, { signal })).present })
  }

  /** A node's scrubber deleted corrupt copies: forget them, so repair copies those chunks again */
  private onCorruptChunks (peerId: string, cids: string[]): void {
    const metadata = this.files?.metadata
    if (metadata == null) return
    let forgotten = 0
    for (const cid of cids) {
      try {
        if (metadata.removeChunkLocation(cid, peerId)) forgotten++
      } catch (err) {
        this.log('ignoring corrupt-chunk report of %s from %s - %e', cid, peerId, err)
      }
    }
    this.metrics.chunkVerificationFailures.inc(forgotten)
    this.oplog.child('repair').warn('node reported corrupt chunks', { node: this.registry?.get(peerId)?.name ?? peerId, chunks: cids.length, ours: forgotten })
    if (forgotten > 0) this.repairer?.wake()
  }

  /**
   * DataStores, grants and their enforcement: a coordinator owns DataStores (persistent registry, checked by the
   * meta server for every remote caller) and every daemon knows the federation's DataStores and routes operations
   * on other members' ones to their coordinators.
   */
  /**
   * A client daemon (a laptop): it stores nothing and owns nothing. It stays connected to its member's coordinator,
   * learns the federation's DataStores from the announcements that connection carries, and serves the CLI and the
   * mount by asking each path's owner: a DataStore's coordinator for paths in it, its own member's coordinator for
   * the rest (the member's own namespace). File contents move between this daemon and the storage nodes, with
   * the capabilities the owners hand out.
   */
  private async startClient (peer: PeerParts): Promise<void> {
    const address = this.init.coordinator ?? this.config.coordinator ?? this.config.federation.bootstrap[0]
    if (address == null) throw new ConfigError(`config ${this.config.path}: a client needs "coordinator" (or federation.bootstrap): the multiaddr of its member's coordinator, ending in /p2p/<peer id>`)
    const log = this.oplog.child('coordinator-link')
    const link = this.coordinatorLink = await this.startPart(new CoordinatorLink({ host: peer.host, logger: this.logger }, {
      address,
      onChange: (up, error) => {
        if (up) log.info('connected to coordinator', { coordinator: address })
        else log.warn('coordinator unreachable, retrying', { coordinator: address, error: error?.message })
      }
    }))
    const client = await this.startPart(new ChunkClient({ host: peer.host, logger: this.logger }))
    await this.startAccess(peer, this.chunks = this.resilient(client), undefined, link.peerId)
  }

  private async startAccess (peer: PeerParts, chunks: ChunkTransport, owned?: { files: FileService } & Pick<ContentServerComponents, 'nodes' | 'has'>, home?: string): Promise<void> {
    const { host, identity, trustStore, chain, database } = peer
    const files = owned?.files
    let server: MetaServer | undefined
    const registry = files != null ? new DataStoreRegistry({ database, logger: this.logger }) : undefined
    const directory = this.datastores = await this.startPart(new DataStoreDirectory({ host, trustStore, chain, identity, registry, logger: this.logger }, { intervalMs: this.config.federation.announceIntervalMs }))
    if (registry != null && owned != null) {
      const handlers = await this.startCertification(peer, registry, directory)
      const content = await this.startPart(new ContentServer({
        files: owned.files,
        nodes: owned.nodes,
        has: owned.has,
        // Outside every DataStore (the member's own namespace) rights do not expire.
        lapse: (caller, path, right, horizonMs) => registry.find(path) == null ? undefined : registry.lapseOf(caller, path, right, horizonMs),
        privateKey: peer.key,
        logger: this.logger
      }))
      server = await this.startPart(new MetaServer({
        host,
        identity,
        directory,
        identities: this.identities,
        registry,
        files: owned.files,
        content,
        handlers,
        logger: this.logger,
        onCheck: (right, allowed) => {
          this.metrics.permissionChecks.inc({ right })
          if (!allowed) this.metrics.permissionDenials.inc({ right })
        },
        onDataStoresChanged: () => { void directory.announce() }
      }))
    }
    const meta = new MetaClient({ host })
    const content = new RemoteContent({ meta, chunks, host, logger: this.logger })
    registerAccessMethods(this.control as InstrumentedControlServer, { identity, directory, meta, content, registry, server, files, home })
  }

  /**
   * Invites and certificate renewal on a coordinator: the invite store and its control methods, and, when a member
   * CA is configured, the issuer behind INVITE_REDEEM and CERT_RENEW. Only then does the handshake admit newcomers
   * without a certificate (while an invite is open): without a CA nobody could be certified.
   */
  private async startCertification ({ host, identity, trustStore, chain, database }: PeerParts, registry: DataStoreRegistry, directory: DataStoreDirectory): Promise<Partial<Record<MetaOp, MetaOpHandler>>> {
    const invites = new InviteStore({ database, datastores: registry, logger: this.logger })
    const inviteMetrics = await this.startPart(new InviteMetrics({ invites, metrics: this.metrics }))
    registerInviteMethods(this.control as InstrumentedControlServer, {
      identity,
      invites,
      canCertify: this.config.memberCa != null,
      configPath: this.config.path,
      trustStore,
      addrs: () => host.getMultiaddrs(),
      onChanged: change => {
        if (change === 'created') this.metrics.invitesCreated.inc()
        inviteMetrics.refresh()
      }
    })
    if (this.config.memberCa == null) return {}
    const issuer = await this.startPart(new CertificateIssuer({ logger: this.logger }, { dir: this.config.memberCa, owner: new X509Certificate(chain[0].slice()) }))
    const renewal = this.renewal = new CertificateRenewal({ issuer, trustStore, logger: this.logger })
    const redemptions = new InviteRedemptions({
      invites,
      issuer,
      trustStore,
      identities: this.identities,
      logger: this.logger,
      onRedeemed: redemption => {
        this.metrics.invitesRedeemed.inc()
        inviteMetrics.refresh()
        this.oplog.child('invites').info('invite redeemed', { invite: redemption.inviteId, name: redemption.name, peerId: redemption.peerId })
        // The guest's grants changed the DataStores' versions: tell the federation now
        void directory.announce()
      }
    })
    this.admitNewcomers = () => invites.hasOpen()
    return { [MetaOp.INVITE_REDEEM]: redemptions.serve, [MetaOp.CERT_RENEW]: renewal.serve }
  }

  private async startNode (peer: PeerParts): Promise<void> {
    const { host } = peer
    const coordinator = this.init.coordinator ?? this.config.coordinator
    if (coordinator == null) throw new ConfigError(`config ${this.config.path}: a node needs "coordinator" (the multiaddr of its coordinator, ending in /p2p/<peer id>)`)
    const store = this.store = await this.startPart(new ChunkStore({ path: join(this.config.dataDir, 'chunks'), capacityBytes: this.config.storage.capacityBytes }))
    const owners = await this.startPart(new ChunkOwners({ path: join(this.config.dataDir, 'chunk-owners.db') }))
    const m = this.metrics
    await this.startPart(new ChunkServer({ host, identities: this.identities, store, owners, logger: this.logger }, {
      onOperation: (op, result, bytes, seconds) => {
        m.chunkOperations.inc({ op, result: result === 'ok' ? 'ok' : 'error' })
        m.chunkOperationDuration.observe({ op }, seconds)
        if (bytes > 0) m.chunkBytes.inc({ direction: op === 'put' ? 'in' : 'out' }, bytes)
        if (result === 'invalid' && op === 'put') m.chunkVerificationFailures.inc()
      },
      onError: (op, cid, error) => { this.oplog.error('chunk operation failed', { op, cid: cid.toString(), error }) }
    }))
    const { repair } = this.config
    const scrubber = this.scrubber = await this.startPart(new Scrubber({
      store,
      logger: this.logger,
      onCorrupt: cid => {
        m.scrubCorruptChunks.inc()
        this.oplog.child('scrubber').error('corrupt chunk deleted, reporting it to the coordinator', { cid })
      },
      onPass: ({ bytes }) => { m.scrubbedBytes.inc(bytes) }
    }, { intervalMs: repair.scrubIntervalMs, bandwidthBytesPerSecond: repair.scrubBandwidthBytesPerSecond }))
    this.reporter = await this.startPart(new NodeReporter({
      host,
      logger: this.logger,
      corrupt: scrubber,
      capacity: async () => {
        const s = await store.stats()
        return { capacityBytes: s.capacityBytes, usedBytes: s.usedBytes, chunkCount: s.chunkCount }
      }
    }, { coordinator: multiaddr(coordinator), heartbeatIntervalMs: this.config.heartbeatIntervalMs }))
    await this.startFederation(peer, [coordinator])
  }

  async stop (): Promise<void> {
    const wasRunning = this.running
    this.running = false
    for (const part of this.started.reverse()) {
      await part.stop().catch(err => {
        this.log.error('error while stopping - %e', err)
        this.oplog.error('error while stopping', { error: err })
      })
    }
    this.started.length = 0
    if (wasRunning && this.identity != null) {
      this.oplog.info('daemon stopped', { name: this.identity.name, peerId: this.identity.peerId, uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000) })
    }
  }

  /** Connected peers with the identity their certificate proved */
  peers (): Array<{ peerId: string, name?: string, role?: string, member?: string, domain?: string, addrs: string[], direction: string, uncertified?: boolean }> {
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
      const uncertified = this.identities.isUncertified(peerId) ? true : undefined
      return { peerId, name: v?.name, role: v?.role, member: v?.member, domain: v?.domain, addrs: c.addrs, direction: c.direction, uncertified }
    }).sort((a, b) => (a.name ?? a.peerId).localeCompare(b.name ?? b.peerId))
  }

  /**
   * Refreshes the gauges that are cheaper to read on demand than to keep current, and scores health. Takes the
   * storage summary when the caller already has one: it scans every chunk's copies, so it is gathered once.
   */
  async health (storage?: StorageSummary): Promise<HealthReport> {
    if (this.registry != null) recordNodes(this.metrics, this.registry.list())
    const report = daemonHealth(this, storage ?? await this.storage())
    this.metrics.clusterHealthScore.set(report.score)
    return report
  }

  /**
   * Storage as this daemon sees it, and the storage gauges: a coordinator the live nodes it places chunks on and
   * how many of its chunks lack copies on them (a copy on a dead node does not count); a node its own store.
   * A coordinator's storage_* gauges stay 0 (it stores nothing; summing them over all daemons must not count a
   * node twice); its nodes' state, health and chunks go into the per-node gauges.
   */
  async storage (): Promise<StorageSummary | undefined> {
    if (this.registry != null) {
      // Copies on other members' nodes count: that is where cross-member replication puts them.
      const live = (this.federation?.directory.nodes() ?? this.registry.list()).filter(n => n.state !== 'dead')
      const replication = this.files?.metadata.replicationSummary(live.map(n => n.peerId), this.files.replication)
      if (replication != null) this.metrics.underReplicatedChunks.set(replication.underReplicated)
      const hot = this.repairer?.popularity()
      if (hot != null) this.metrics.popularityHotChunks.set(hot.hotChunks)
      return {
        capacityBytes: live.reduce((s, n) => s + n.capacityBytes, 0),
        usedBytes: live.reduce((s, n) => s + n.usedBytes, 0),
        liveNodes: live.length,
        chunks: replication?.chunks,
        underReplicatedChunks: replication?.underReplicated ?? null,
        chunksAtMostOneCopy: replication?.atMostOneCopy
      }
    }
    if (this.store != null) {
      const s = await this.store.stats()
      this.metrics.storageCapacityBytes.set(s.capacityBytes)
      this.metrics.storageUsedBytes.set(s.usedBytes)
      this.metrics.storageChunks.set(s.chunkCount)
      return { capacityBytes: s.capacityBytes, usedBytes: s.usedBytes, chunks: s.chunkCount, underReplicatedChunks: null }
    }
    return undefined
  }

  /** `status` plus what costs a little more to gather: the health report and the storage summary */
  async overview (): Promise<Record<string, unknown>> {
    const storage = await this.storage()
    return { ...this.status(), health: await this.health(storage), storage }
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
      members: this.federation?.directory.members() ?? [{ member: id.member, domain: id.domain, peers: [] }],
      peers: this.peers(),
      nodes: this.registry?.list(),
      registration: this.reporter?.status,
      replication: this.files?.replication,
      repair: this.repairer?.status(),
      scrub: this.scrubber?.status,
      refusals: this.refusals,
      circuitBreakers: this.chunks?.breakers.snapshot(),
      metrics: this.metricsUrl()
    }
  }

  private registerControlMethods (): void {
    const control = this.control as InstrumentedControlServer
    control.register('status', async () => await this.overview())
    control.register('peers', async () => this.peers())
    control.register('nodes', async () => this.registry?.list() ?? [])
    control.register('members', async () => this.federation?.directory.members() ?? [])
    control.register('resolve', async (p, ctx) => {
      if (typeof p.query !== 'string') throw new TypeError('parameter "query" must be a string')
      if (this.federation == null) throw new TypeError(`a ${this.config.role} daemon takes no part in membership`)
      return await this.federation.directory.resolve(p.query, { signal: ctx.signal })
    })
    control.register('federation.nodes', async () => this.federation?.directory.nodes() ?? [])
    const files = this.files
    if (files != null) {
      // Where each chunk of a file lives: the durability report and the federation tests read it.
      control.register('fs.locate', async p => {
        if (typeof p.path !== 'string') throw new TypeError('parameter "path" must be a string')
        const nodes = new Map((this.federation?.directory.nodes() ?? []).map(n => [n.peerId, n.name]))
        return files.open(p.path).manifest.chunks.map(c => ({
          cid: c.cid,
          nodes: files.metadata.chunkLocations(c.cid).map(peerId => ({ peerId, name: nodes.get(peerId) ?? peerId }))
        }))
      })
    }
  }
}
