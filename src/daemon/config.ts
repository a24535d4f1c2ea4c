import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { multiaddr } from '@multiformats/multiaddr'
import { parseSize, parseDuration } from '../util/units.js'

export class ConfigError extends Error {
  static name = 'ConfigError'
  name = 'ConfigError'
}

const multiaddrString = z.string().refine(s => { try { multiaddr(s); return true } catch { return false } }, 'not a valid multiaddr')

const schema = z.strictObject({
  role: z.enum(['coordinator', 'node', 'client']),
  identity: z.strictObject({
    key: z.string().min(1),
    cert: z.string().min(1),
    root: z.string().min(1)
  }),
  dataDir: z.string().min(1).default('data'),
  controlSocket: z.string().min(1).default('control.sock'),
  listen: z.array(multiaddrString).default(['/ip4/127.0.0.1/tcp/0']),
  coordinator: multiaddrString.refine(s => s.includes('/p2p/'), 'must end in /p2p/<peer id> of the coordinator').optional(),
  /**
   * coordinator: the folder of its member CA (ca.key, ca.crt, the issued/ register). With it the coordinator
   * certifies newcomers who redeem invites and renews its member's certificates; without it it does neither.
   */
  memberCa: z.string().min(1).optional(),
  heartbeatIntervalMs: z.number().int().min(100).max(600_000).default(5_000),
  storage: z.strictObject({
    /** node: the most this node stores (default: free disk space less a reserve) */
    capacity: z.union([z.string(), z.number()]).optional(),
    /** coordinator: copies of each chunk a write must reach */
    replication: z.number().int().min(1).max(16).default(2),
    /** coordinator: how long an unreferenced chunk is kept before deletion */
    gcGrace: z.string().default('1h'),
    /** coordinator: how often garbage is collected */
    gcInterval: z.string().default('1m')
  }).default({ replication: 2, gcGrace: '1h', gcInterval: '1m' }),
  federation: z.strictObject({
    /** Addresses (ending in /p2p/<peer id>) of any other members' coordinators to join through; the rest is discovered */
    bootstrap: z.array(multiaddrString.refine(s => s.includes('/p2p/'), 'must end in /p2p/<peer id>')).default([]),
    /** SWIM: how often each peer probes one other */
    probeInterval: z.string().default('1s'),
    /** SWIM: how long a probe waits for its ack before asking others to probe indirectly */
    probeTimeout: z.string().default('500ms'),
    /** SWIM: how long a suspect peer has to refute before it is declared dead */
    suspicionTimeout: z.string().default('5s'),
    /** Anti-entropy: how often a full digest is exchanged with one random peer */
    syncInterval: z.string().default('10s'),
    /** How often a coordinator announces its storage nodes to the federation */
    announceInterval: z.string().default('5s')
  }).default({ bootstrap: [], probeInterval: '1s', probeTimeout: '500ms', suspicionTimeout: '5s', syncInterval: '10s', announceInterval: '5s' }),
  repair: z.strictObject({
    /** coordinator: time between repair passes when nothing (a node's death, a drain, a corrupt report) wakes one earlier */
    interval: z.string().default('30s'),
    /** coordinator: no repair this long after start, while the nodes report in for the first time */
    startDelay: z.string().default('30s'),
    /** coordinator: bytes of new replicas written per second at most ("20MiB" means 20 MiB/s) */
    bandwidth: z.union([z.string(), z.number()]).default('20MiB'),
    /** coordinator: chunks copied at once */
    concurrency: z.number().int().min(1).max(64).default(4),
    /** node: time between two scrubber passes over every stored chunk */
    scrubInterval: z.string().default('24h'),
    /** node: bytes re-hashed per second at most by the scrubber */
    scrubBandwidth: z.union([z.string(), z.number()]).default('50MiB'),
    /** coordinator: move chunks from the fullest nodes toward the emptiest (a node that joined, unequal growth) */
    rebalance: z.boolean().default(true),
    /** coordinator: a node is rebalanced once its fill exceeds the average by this fraction of the average ... */
    rebalanceTolerance: z.number().min(0).max(10).default(0.1),
    /** coordinator: ... and by at least this much fill (0.005: half a point of its capacity) */
    rebalanceMinGap: z.number().min(0).max(1).default(0.005)
  }).default({ interval: '30s', startDelay: '30s', bandwidth: '20MiB', concurrency: 4, scrubInterval: '24h', scrubBandwidth: '50MiB', rebalance: true, rebalanceTolerance: 0.1, rebalanceMinGap: 0.005 }),
  popularity: z.strictObject({
    /** coordinator: most copies of a chunk read often; at or below storage.replication popularity adds none */
    maxReplicas: z.number().int().min(1).max(16).default(4),
    /** coordinator: time for a chunk's read count to halve when nothing reads it */
    halfLife: z.string().default('1h'),
    /** coordinator: decayed reads at which a chunk gains its first extra copy; each doubling adds one more */
    hotThreshold: z.number().positive().default(20)
  }).default({ maxReplicas: 4, halfLife: '1h', hotThreshold: 20 }),
  metrics: z.strictObject({
    listen: z.string().regex(/^[^:]+:\d+$/, 'host:port').default('127.0.0.1:0'),
    enabled: z.boolean().default(true)
  }).default({ listen: '127.0.0.1:0', enabled: true })
})

export type DaemonConfigFile = z.infer<typeof schema>

export interface FederationConfig {
  bootstrap: string[]
  probeIntervalMs: number
  probeTimeoutMs: number
  suspicionTimeoutMs: number
  syncIntervalMs: number
  announceIntervalMs: number
}

export interface RepairConfig {
  intervalMs: number
  startDelayMs: number
  bandwidthBytesPerSecond: number
  concurrency: number
  scrubIntervalMs: number
  scrubBandwidthBytesPerSecond: number
  rebalance: boolean
  rebalanceTolerance: number
  rebalanceMinGap: number
}

export interface PopularityConfig {
  maxReplicas: number
  halfLifeMs: number
  hotThreshold: number
}

export interface DaemonConfig extends Omit<DaemonConfigFile, 'storage' | 'federation' | 'repair' | 'popularity'> {
  /** Absolute path of the file this came from; relative paths in it are resolved against its folder */
  path: string
  storage: { capacityBytes?: number, replication: number, gcGraceMs: number, gcIntervalMs: number }
  federation: FederationConfig
  repair: RepairConfig
  popularity: PopularityConfig
}

/** Loads and validates a daemon config; every problem is reported with the key it concerns */
export async function loadConfig (path: string): Promise<DaemonConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: any) {
    throw new ConfigError(`cannot read config ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`)
  }
  let raw: unknown
  try {
    raw = parseYaml(text)
  } catch (err: any) {
    throw new ConfigError(`config ${path} is not valid YAML: ${err.message}`)
  }
  const parsed = schema.safeParse(raw ?? {})
  if (!parsed.success) {
    const problems = parsed.error.issues.map(i => {
      const at = i.path.length > 0 ? i.path.join('.') : '(top level)'
      return `  ${at}: ${i.message}`
    })
    throw new ConfigError(`config ${path} is invalid:\n${problems.join('\n')}`)
  }
  const base = dirname(resolve(path))
  const c = parsed.data
  const field = <T>(key: string, fn: () => T): T => {
    try { return fn() } catch (err: any) { throw new ConfigError(`config ${path} is invalid:\n  ${key}: ${err.message}`) }
  }
  const storage = {
    capacityBytes: field('storage.capacity', () => c.storage.capacity != null ? parseSize(c.storage.capacity) : undefined),
    replication: c.storage.replication,
    gcGraceMs: field('storage.gcGrace', () => parseDuration(c.storage.gcGrace)),
    gcIntervalMs: field('storage.gcInterval', () => parseDuration(c.storage.gcInterval))
  }
  const f = c.federation
  const federation: FederationConfig = {
    bootstrap: f.bootstrap,
    probeIntervalMs: field('federation.probeInterval', () => parseDuration(f.probeInterval)),
    probeTimeoutMs: field('federation.probeTimeout', () => parseDuration(f.probeTimeout)),
    suspicionTimeoutMs: field('federation.suspicionTimeout', () => parseDuration(f.suspicionTimeout)),
    syncIntervalMs: field('federation.syncInterval', () => parseDuration(f.syncInterval)),
    announceIntervalMs: field('federation.announceInterval', () => parseDuration(f.announceInterval))
  }
  const r = c.repair
  const rate = (key: string, value: string | number): number => field(key, () => {
    const bytes = parseSize(value)
    if (bytes <= 0) throw new Error('must be more than 0 bytes per second')
    return bytes
  })
  const repair: RepairConfig = {
    intervalMs: field('repair.interval', () => parseDuration(r.interval)),
    startDelayMs: field('repair.startDelay', () => parseDuration(r.startDelay)),
    bandwidthBytesPerSecond: rate('repair.bandwidth', r.bandwidth),
    concurrency: r.concurrency,
    scrubIntervalMs: field('repair.scrubInterval', () => parseDuration(r.scrubInterval)),
    scrubBandwidthBytesPerSecond: rate('repair.scrubBandwidth', r.scrubBandwidth),
    rebalance: r.rebalance,
    rebalanceTolerance: r.rebalanceTolerance,
    rebalanceMinGap: r.rebalanceMinGap
  }
  const popularity: PopularityConfig = {
    maxReplicas: c.popularity.maxReplicas,
    halfLifeMs: field('popularity.halfLife', () => {
      const ms = parseDuration(c.popularity.halfLife)
      if (ms <= 0) throw new Error('must be longer than 0')
      return ms
    }),
    hotThreshold: c.popularity.hotThreshold
  }
  if (c.memberCa != null && c.role !== 'coordinator') {
    throw new ConfigError(`config ${path} is invalid:\n  memberCa: only a coordinator issues certificates, not a ${c.role}`)
  }
  if (federation.probeTimeoutMs >= federation.probeIntervalMs) {
    throw new ConfigError(`config ${path} is invalid:\n  federation.probeTimeout: must be shorter than federation.probeInterval`)
  }
  return {
    ...c,
    federation,
    repair,
    popularity,
    path: resolve(path),
    identity: {
      key: resolve(base, c.identity.key),
      cert: resolve(base, c.identity.cert),
      root: resolve(base, c.identity.root)
    },
    dataDir: resolve(base, c.dataDir),
    controlSocket: resolve(base, c.controlSocket),
    memberCa: c.memberCa != null ? resolve(base, c.memberCa) : undefined,
    storage
  }
}
