import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Metric } from 'prom-client'

// Every label below takes its values from a small closed set, so the number of series stays bounded however many
// chunks, paths or peers pass through. The sets are exported so callers (and tests) share one definition and so
// the known series can be created at zero: rate() and alert expressions then see a series from the first scrape
// instead of only after the first event.
export const CONNECTION_DIRECTIONS = ['inbound', 'outbound'] as const
export const CONNECTION_FAILURE_REASONS = ['handshake', 'certificate', 'timeout', 'other'] as const
export const MEMBER_STATES = ['alive', 'suspect', 'dead'] as const
export const GOSSIP_MESSAGE_TYPES = ['ping', 'ping_req', 'ack', 'sync', 'pubsub'] as const
export const PROBE_KINDS = ['direct', 'indirect'] as const
export const RESULTS = ['ok', 'error'] as const
export const CHUNK_OPS = ['put', 'get', 'has', 'delete'] as const
export const BYTE_DIRECTIONS = ['in', 'out'] as const
export const PLACEMENT_STRATEGIES = ['media', 'backup', 'hybrid'] as const
export const PLACEMENT_FAILURE_REASONS = ['insufficient_nodes', 'insufficient_capacity', 'timeout', 'other'] as const
export const RIGHTS = ['read', 'write', 'delete', 'share'] as const
export const PEER_ROLES = ['coordinator', 'node'] as const
export const BREAKER_STATES = ['closed', 'open', 'half_open'] as const

export type ConnectionDirection = typeof CONNECTION_DIRECTIONS[number]
export type ConnectionFailureReason = typeof CONNECTION_FAILURE_REASONS[number]
export type MemberState = typeof MEMBER_STATES[number]
export type GossipMessageType = typeof GOSSIP_MESSAGE_TYPES[number]
export type ProbeKind = typeof PROBE_KINDS[number]
export type Result = typeof RESULTS[number]
export type ChunkOp = typeof CHUNK_OPS[number]
export type ByteDirection = typeof BYTE_DIRECTIONS[number]
export type PlacementStrategy = typeof PLACEMENT_STRATEGIES[number]
export type PlacementFailureReason = typeof PLACEMENT_FAILURE_REASONS[number]
export type Right = typeof RIGHTS[number]
export type PeerRole = typeof PEER_ROLES[number]
export type BreakerState = typeof BREAKER_STATES[number]

export const METRIC_PREFIX = 'collective_'

export interface MetricsInit {
  /**
   * Also export the Node.js process metrics (CPU, memory, event loop, GC) under their conventional unprefixed
   * names (`process_*`, `nodejs_*`) so stock dashboards work. Only those that pass `promtool check metrics` are
   * kept. Default false: tests and short-lived tools create many registries and do not want the timers.
   */
  collectDefault?: boolean
}

export interface CollectiveMetrics {
  /** The registry holding every metric below; never the prom-client global one. */
  registry: Registry

  // connections
  connectionsOpen: Gauge
  connectionsHealthy: Gauge
  connectionAttempts: Counter<'direction'>
  connectionFailures: Counter<'reason'>
  handshakeDuration: Histogram

  // membership and gossip
  members: Gauge<'state'>
  gossipMessages: Counter<'type'>
  probeDuration: Histogram<'kind'>
  antiEntropyRuns: Counter<'result'>

  // chunk operations
  chunkOperations: Counter<'op' | 'result'>
  chunkBytes: Counter<'direction'>
  chunkOperationDuration: Histogram<'op'>
  chunkVerificationFailures: Counter

  // placement
  placementOperations: Counter<'strategy'>
  placementFailures: Counter<'reason'>
  placementNodeChunks: Gauge<'node'>

  // permissions
  permissionChecks: Counter<'right'>
  permissionDenials: Counter<'right'>

  // invites
  invitesCreated: Counter
  invitesRedeemed: Counter
  invitesExpired: Counter
  invitesActive: Gauge

  // resilience
  retries: Counter
  circuitBreakerOpens: Counter<'peer_role'>
  circuitBreakers: Gauge<'peer_role' | 'state'>
  failovers: Counter

  // storage
  storageCapacityBytes: Gauge
  storageUsedBytes: Gauge
  storageChunks: Gauge
  underReplicatedChunks: Gauge

  // repair
  repairChunks: Counter
  repairBytes: Counter
  repairFailures: Counter
  repairDrainedChunks: Counter
  repairHotReplicas: Counter
  repairTrimmedReplicas: Counter
  repairRebalancedChunks: Counter
  repairRebalancedBytes: Counter
  scrubbedBytes: Counter

  // popularity
  popularityChunkReads: Counter
  popularityHotChunks: Gauge
  scrubCorruptChunks: Counter

  // health
  clusterHealthScore: Gauge
  nodeHealthScore: Gauge<'node'>

  // node registry
  registeredNodes: Gauge
  nodeHeartbeats: Counter

  // control socket
  controlRequests: Counter<'method' | 'result'>
}

// Handshakes include a Noise round trip and certificate chain checks; seconds-long ones are the interesting tail.
const HANDSHAKE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
// SWIM probes are tiny messages on warm connections: most land well under 10 ms on a LAN.
const PROBE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
// A 4 MiB chunk over a slow home uplink can take tens of seconds, so the buckets reach far beyond typical RPCs.
const CHUNK_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export function createMetrics (init: MetricsInit = {}): CollectiveMetrics {
  const registry = new Registry()
  const registers = [registry]

  const counter = <T extends string = never>(name: string, help: string, labelNames: readonly T[] = []): Counter<T> =>
    new Counter<T>({ name: METRIC_PREFIX + name, help, labelNames, registers })
  const gauge = <T extends string = never>(name: string, help: string, labelNames: readonly T[] = []): Gauge<T> =>
    new Gauge<T>({ name: METRIC_PREFIX + name, help, labelNames, registers })
  const histogram = <T extends string = never>(name: string, help: string, buckets: number[], labelNames: readonly T[] = []): Histogram<T> =>
    new Histogram<T>({ name: METRIC_PREFIX + name, help, buckets, labelNames, registers })

  const metrics: CollectiveMetrics = {
    registry,

    connectionsOpen: gauge('connections_open', 'Open libp2p connections to other collective peers'),
    connectionsHealthy: gauge('connections_healthy', 'Open connections whose peer answered its last liveness check'),
    connectionAttempts: counter('connection_attempts_total', 'Connection attempts, by direction (inbound|outbound)', ['direction']),
    connectionFailures: counter('connection_failures_total', 'Failed connection attempts, by reason (handshake|certificate|timeout|other)', ['reason']),
    handshakeDuration: histogram('handshake_duration_seconds', 'Duration of the Noise handshake plus certificate chain verification', HANDSHAKE_BUCKETS),

    members: gauge('members', 'Known federation peers, by SWIM state (alive|suspect|dead)', ['state']),
    gossipMessages: counter('gossip_messages_total', 'Membership and gossip messages sent or received, by type (ping|ping_req|ack|sync|pubsub)', ['type']),
    probeDuration: histogram('probe_duration_seconds', 'Round trip of SWIM probes that were acknowledged, by kind (direct|indirect)', PROBE_BUCKETS, ['kind']),
    antiEntropyRuns: counter('anti_entropy_runs_total', 'Anti-entropy digest exchanges, by result (ok|error)', ['result']),

    chunkOperations: counter('chunk_operations_total', 'Chunk operations, by op (put|get|has|delete) and result (ok|error)', ['op', 'result']),
    chunkBytes: counter('chunk_bytes_total', 'Chunk payload bytes transferred, by direction (in|out)', ['direction']),
    chunkOperationDuration: histogram('chunk_operation_duration_seconds', 'Duration of chunk operations, by op (put|get|has|delete)', CHUNK_BUCKETS, ['op']),
    chunkVerificationFailures: counter('chunk_verification_failures_total', 'Chunks whose bytes did not match their CID'),

    placementOperations: counter('placement_operations_total', 'Placement decisions, by strategy (media|backup|hybrid)', ['strategy']),
    placementFailures: counter('placement_failures_total', 'Placement decisions that could not be satisfied, by reason (insufficient_nodes|insufficient_capacity|timeout|other)', ['reason']),
    placementNodeChunks: gauge('placement_node_chunks', 'Chunks placed on each storage node, by federated node name', ['node']),

    permissionChecks: counter('permission_checks_total', 'Permission checks, by right (read|write|delete|share)', ['right']),
    permissionDenials: counter('permission_denials_total', 'Permission checks that denied access, by right (read|write|delete|share)', ['right']),

    invitesCreated: counter('invites_created_total', 'Invites created'),
    invitesRedeemed: counter('invites_redeemed_total', 'Invite uses that were validated and applied'),
    invitesExpired: counter('invites_expired_total', 'Invites that expired before being used up'),
    invitesActive: gauge('invites_active', 'Invites that can still be redeemed'),

    retries: counter('retries_total', 'Operations retried after a transient failure'),
    circuitBreakerOpens: counter('circuit_breaker_opens_total', 'Per-peer circuit breakers that tripped open, by peer role (coordinator|node)', ['peer_role']),
    circuitBreakers: gauge('circuit_breakers', 'Per-peer circuit breakers, by peer role (coordinator|node) and state (closed|open|half_open)', ['peer_role', 'state']),
    failovers: counter('failovers_total', 'Reads that moved to another replica after an error or a CID mismatch'),

    storageCapacityBytes: gauge('storage_capacity_bytes', 'Storage capacity offered by this process (0 on a coordinator)'),
    storageUsedBytes: gauge('storage_used_bytes', 'Storage used by chunks on this process'),
    storageChunks: gauge('storage_chunks', 'Chunks stored on this process'),
    underReplicatedChunks: gauge('under_replicated_chunks', 'Chunks with fewer replicas than their DataStore replication factor'),

    repairChunks: counter('repair_chunks_total', 'New replicas written by repair to bring chunks back to their replication factor'),
    repairBytes: counter('repair_bytes_total', 'Bytes of new replicas written by repair'),
    repairFailures: counter('repair_failures_total', 'Chunks a repair pass could not bring back to their replication factor (retried on the next pass)'),
    repairDrainedChunks: counter('repair_drained_chunks_total', 'Copies deleted from draining nodes once the chunk had its replicas elsewhere'),
    repairHotReplicas: counter('repair_hot_replicas_total', 'Extra replicas written for chunks read often (popularity), beyond their replication factor'),
    repairTrimmedReplicas: counter('repair_trimmed_replicas_total', 'Extra replicas of hot chunks deleted again once they cooled'),
    repairRebalancedChunks: counter('repair_rebalanced_chunks_total', 'Chunks moved from the fullest storage nodes toward the emptiest'),
    repairRebalancedBytes: counter('repair_rebalanced_bytes_total', 'Bytes of chunks moved from the fullest storage nodes toward the emptiest'),
    scrubbedBytes: counter('repair_scrubbed_bytes_total', 'Bytes of stored chunks re-hashed by the scrubber'),
    scrubCorruptChunks: counter('repair_scrub_corrupt_chunks_total', 'Stored chunks the scrubber found not matching their CID (deleted and reported)'),

    popularityChunkReads: counter('popularity_chunk_reads_total', 'Reads of this coordinator\'s chunks counted toward their popularity (its own reads and the locations it handed to remote readers)'),
    popularityHotChunks: gauge('popularity_hot_chunks', 'Chunks kept above their replication factor because they are read often'),

    clusterHealthScore: gauge('cluster_health_score', 'Overall health score 0-100 (healthy >= 70, degraded >= 30, unhealthy < 30)'),
    nodeHealthScore: gauge('node_health_score', 'Health score 0-100 of each storage node, by federated node name', ['node']),

    registeredNodes: gauge('registered_nodes', 'Storage nodes registered with this coordinator'),
    nodeHeartbeats: counter('node_heartbeats_total', 'Heartbeats received from registered storage nodes'),

    controlRequests: counter('control_requests_total', 'Control socket requests, by method and result (ok|error)', ['method', 'result'])
  }

  initialiseKnownSeries(metrics)

  if (init.collectDefault === true) {
    registerLintCleanDefaults(registry)
  }

  return metrics
}

function initialiseKnownSeries (m: CollectiveMetrics): void {
  for (const direction of CONNECTION_DIRECTIONS) m.connectionAttempts.inc({ direction }, 0)
  for (const reason of CONNECTION_FAILURE_REASONS) m.connectionFailures.inc({ reason }, 0)
  for (const state of MEMBER_STATES) m.members.set({ state }, 0)
  for (const type of GOSSIP_MESSAGE_TYPES) m.gossipMessages.inc({ type }, 0)
  for (const result of RESULTS) m.antiEntropyRuns.inc({ result }, 0)
  for (const op of CHUNK_OPS) {
    for (const result of RESULTS) m.chunkOperations.inc({ op, result }, 0)
  }
  for (const direction of BYTE_DIRECTIONS) m.chunkBytes.inc({ direction }, 0)
  for (const strategy of PLACEMENT_STRATEGIES) m.placementOperations.inc({ strategy }, 0)
  for (const reason of PLACEMENT_FAILURE_REASONS) m.placementFailures.inc({ reason }, 0)
  for (const right of RIGHTS) {
    m.permissionChecks.inc({ right }, 0)
    m.permissionDenials.inc({ right }, 0)
  }
  for (const peer_role of PEER_ROLES) {
    m.circuitBreakerOpens.inc({ peer_role }, 0)
    for (const state of BREAKER_STATES) m.circuitBreakers.set({ peer_role, state }, 0)
  }
}

/**
 * prom-client's default collectors include gauges named `*_total` (nodejs_active_handles_total and friends), which
 * `promtool check metrics` rejects. They are sums of labelled gauges that are also exported, so nothing is lost by
 * dropping them: collect the defaults into a scratch registry and adopt only the ones that follow the conventions.
 */
function registerLintCleanDefaults (registry: Registry): void {
  const scratch = new Registry()
  collectDefaultMetrics({ register: scratch })
  // getMetricsAsArray is typed as returning plain objects but hands back the live metric instances.
  for (const metric of scratch.getMetricsAsArray() as unknown as Array<Metric & { name: string }>) {
    if (!(metric instanceof Counter) && metric.name.endsWith('_total')) continue
    registry.registerMetric(metric)
  }
}
