// The health model is pure (numbers in, report out) so the thresholds can be tested without a daemon, and so the
// HTTP server, the CLI and the metrics gauge all agree on one definition of "healthy".

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy'

export interface HealthComponent {
  name: string
  /** 0..100; values outside are clamped, NaN counts as 0 (an unmeasurable part is not a healthy one) */
  score: number
  /** relative importance; >= 0, finite. A weight of 0 reports the component without letting it move the score */
  weight: number
  detail?: string
}

export interface HealthReport {
  status: HealthStatus
  /** weighted average of the component scores, integer 0..100 */
  score: number
  components: HealthComponent[]
  /** ISO 8601 */
  timestamp: string
}

/** score >= 70: healthy */
export const HEALTHY_THRESHOLD = 70
/** 30 <= score < 70: degraded; below: unhealthy */
export const DEGRADED_THRESHOLD = 30
/** ready for traffic while score > 30 (a score of exactly 30 is degraded but not ready) */
export const READY_THRESHOLD = 30

/** Default weights of the helper components: losing nodes or replicas endangers data, so they count most. */
export const DEFAULT_WEIGHTS = {
  nodeAvailability: 3,
  replication: 3,
  connectivity: 2,
  disk: 2
} as const

/** Disk usage up to this fraction scores 100; above it the score falls linearly to 0 at 100% full. */
export const DISK_COMFORT_RATIO = 0.8

export class InvalidHealthComponentError extends Error {
  override readonly name = 'InvalidHealthComponentError'
}

export function statusForScore (score: number): HealthStatus {
  if (score >= HEALTHY_THRESHOLD) return 'healthy'
  if (score >= DEGRADED_THRESHOLD) return 'degraded'
  return 'unhealthy'
}

export function isReady (report: Pick<HealthReport, 'score'>): boolean {
  return report.score > READY_THRESHOLD
}

/**
 * Weighted average of the component scores, rounded to an integer.
 * With no components, or only zero weights, nothing is measured and nothing is wrong: score 100.
 * Throws InvalidHealthComponentError for a negative or non-finite weight, which is a programming error rather
 * than a state of the cluster.
 */
export function computeHealth (components: HealthComponent[], now: Date = new Date()): HealthReport {
  let weighted = 0
  let totalWeight = 0
  const normalised = components.map(c => {
    if (!Number.isFinite(c.weight) || c.weight < 0) {
      throw new InvalidHealthComponentError(`health component "${c.name}" has invalid weight ${String(c.weight)}`)
    }
    const score = clampScore(c.score)
    weighted += score * c.weight
    totalWeight += c.weight
    return { ...c, score }
  })
  const score = totalWeight === 0 ? 100 : Math.round(weighted / totalWeight)
  return {
    status: statusForScore(score),
    score,
    components: normalised,
    timestamp: now.toISOString()
  }
}

/**
 * Share of known storage nodes that SWIM considers alive, as a percentage.
 * No known nodes scores 0: a collective without storage cannot accept data, so it should not report ready.
 */
export function nodeAvailabilityComponent (alive: number, total: number, weight: number = DEFAULT_WEIGHTS.nodeAvailability): HealthComponent {
  if (!(total > 0)) {
    return { name: 'node_availability', score: 0, weight, detail: 'no storage nodes known' }
  }
  const up = clamp(alive, 0, total)
  return { name: 'node_availability', score: ratioScore(up / total), weight, detail: `${up}/${total} nodes alive` }
}

/**
 * Local disk pressure. Usage up to 80% scores 100 (a busy disk is not a sick one); above that the score falls
 * linearly to 0 at 100% (90% used scores 50). Feed it only on processes that store chunks: a capacity of 0 scores
 * 0, because a storage node without capacity cannot do its job.
 */
export function diskComponent (used: number, capacity: number, weight: number = DEFAULT_WEIGHTS.disk): HealthComponent {
  if (!(capacity > 0)) {
    return { name: 'disk', score: 0, weight, detail: 'no storage capacity' }
  }
  const ratio = clamp(used / capacity, 0, 1)
  const score = ratio <= DISK_COMFORT_RATIO ? 100 : ratioScore((1 - ratio) / (1 - DISK_COMFORT_RATIO))
  return { name: 'disk', score, weight, detail: `${(ratio * 100).toFixed(1)}% used` }
}

/**
 * Share of chunks that have all their replicas. No chunks scores 100: there is nothing at risk.
 * Any under-replication is also alerted on separately (ChunksUnderReplicated), so a small fraction that rounds
 * to 100 here is not lost.
 */
export function replicationComponent (underReplicated: number, totalChunks: number, weight: number = DEFAULT_WEIGHTS.replication): HealthComponent {
  if (!(totalChunks > 0)) {
    return { name: 'replication', score: 100, weight, detail: 'no chunks' }
  }
  const under = clamp(underReplicated, 0, totalChunks)
  return { name: 'replication', score: ratioScore(1 - under / totalChunks), weight, detail: `${under}/${totalChunks} chunks under-replicated` }
}

/**
 * Share of the peers this process expects to reach (its coordinator, its member's nodes, other coordinators) that
 * it is connected to. Expecting none scores 100: a lone process is not disconnected from anything. More
 * connections than expected are capped at 100.
 */
export function connectivityComponent (connectedPeers: number, expectedPeers: number, weight: number = DEFAULT_WEIGHTS.connectivity): HealthComponent {
  if (!(expectedPeers > 0)) {
    return { name: 'connectivity', score: 100, weight, detail: 'no peers expected' }
  }
  const connected = clamp(connectedPeers, 0, expectedPeers)
  return { name: 'connectivity', score: ratioScore(connected / expectedPeers), weight, detail: `${connected}/${expectedPeers} peers connected` }
}

function clamp (value: number, min: number, max: number): number {
  if (Number.isNaN(value)) return min
  return Math.min(max, Math.max(min, value))
}

function clampScore (score: number): number {
  return clamp(score, 0, 100)
}

// Component scores keep one decimal so that several near-misses still add up in the weighted average.
function ratioScore (ratio: number): number {
  return Math.round(clamp(ratio, 0, 1) * 1000) / 10
}
