import { DataStoreList } from '../gen/announce.js'
import { normalizePath, isDescendant } from '../metadata/paths.js'
import { CoordinatorTopic, InvalidAnnouncementError } from '../federation/coordinator-topic.js'
import { principalOf, STRATEGIES } from '../permissions/index.js'
import type { CoordinatorTopicComponents } from '../federation/coordinator-topic.js'
import type { DataStore, DataStoreRegistry, Strategy } from '../permissions/index.js'
import type { VerifiedIdentity } from '../identity/index.js'
import type { Logger } from '@libp2p/interface'

/** Spec: protocols/datastores.md (envelope: announce.md) */
export const DATASTORES_TOPIC = '/collective/datastores/1'
const MAX_ANNOUNCED_DATASTORES = 1024

/** A DataStore of the federation and where its owning coordinator is */
export interface KnownDataStore extends DataStore {
  /** Peer ID of the coordinator that owns it (the single writer of its metadata) */
  coordinator: string
  /** Owned by this daemon */
  local: boolean
}

export interface DataStoreDirectoryComponents extends CoordinatorTopicComponents {
  /** The DataStores this coordinator owns; absent on daemons that own none */
  registry?: DataStoreRegistry
}

export interface DataStoreDirectoryInit {
  /** How often a coordinator announces its DataStores (default 5 s) */
  intervalMs?: number
}

/**
 * Every DataStore of the federation and its owner: this coordinator's own from its registry, the others' from
 * their coordinators' announcements. A path belongs to at most one DataStore (they never nest), and every
 * operation on it is answered by that DataStore's coordinator. An announced DataStore that would overlap one
 * already known here is ignored: whoever announces a parent of a DataStore would otherwise be sent its files.
 */
export class DataStoreDirectory {
  private readonly components: DataStoreDirectoryComponents
  private readonly topic: CoordinatorTopic<DataStore[]>
  private readonly log: Logger

  constructor (components: DataStoreDirectoryComponents, init: DataStoreDirectoryInit = {}) {
    this.components = components
    this.log = components.logger.forComponent('collective:access:datastores')
    const registry = components.registry
    this.topic = new CoordinatorTopic(components, {
      topic: DATASTORES_TOPIC,
      intervalMs: init.intervalMs,
      // A DataStore stays where it is while its owner is silent: operations on it then fail as unreachable, where
      // forgetting it would quietly send its paths to this daemon's own namespace.
      staleAfterMs: Number.POSITIVE_INFINITY,
      payload: registry == null
        ? undefined
        : () => DataStoreList.encode({ datastores: registry.list().slice(0, MAX_ANNOUNCED_DATASTORES).map(d => ({ path: d.path, owner: d.owner, strategy: d.strategy, replicas: d.replicas, version: d.version })) }),
      accept: (payload, coordinator) => this.unclaimed(accept(payload, coordinator), coordinator)
    })
  }

  async start (): Promise<void> {
    await this.topic.start()
  }

  async stop (): Promise<void> {
    await this.topic.stop()
  }

  /** Tells the federation now, after a DataStore was created or changed */
  async announce (): Promise<void> {
    await this.topic.announce()
  }

  list (): KnownDataStore[] {
    const self = this.components.identity.peerId
    const local = (this.components.registry?.list() ?? []).map(d => ({ ...d, coordinator: self, local: true }))
    const remote = this.topic.current().flatMap(h => h.value.map(d => ({ ...d, coordinator: h.coordinator.peerId, local: false })))
    const seen = new Set(local.map(d => d.path))
    return [...local, ...remote.filter(d => !seen.has(d.path))].sort((a, b) => a.path.localeCompare(b.path))
  }

  /** The DataStore `path` lies in, or undefined for a path in no DataStore (this daemon's private namespace) */
  find (path: string): KnownDataStore | undefined {
    const p = normalizePath(path)
    const holders = this.list().filter(d => d.path === p || isDescendant(d.path, p))
    // Should an overlap get through, this coordinator's own paths stay its own, and the narrowest claim wins.
    return holders.sort((a, b) => Number(b.local) - Number(a.local) || b.path.length - a.path.length)[0]
  }

  /**
   * What `coordinator` announced less what overlaps a DataStore of this coordinator or one another coordinator
   * announced first. Ignored rather than rejected: which came first is this daemon's view, not a rule the
   * publisher broke, and the rest of its announcement stands.
   */
  private unclaimed (announced: DataStore[], coordinator: VerifiedIdentity): DataStore[] {
    const taken = [
      ...(this.components.registry?.list() ?? []),
      ...this.topic.current().filter(h => h.coordinator.peerId !== coordinator.peerId).flatMap(h => h.value)
    ]
    return announced.filter(d => {
      const clash = taken.find(t => t.path === d.path || isDescendant(t.path, d.path) || isDescendant(d.path, t.path))
      if (clash != null) this.log('ignored %s announced by %s: it overlaps %s, owned by %s', d.path, coordinator.name, clash.path, clash.owner)
      return clash == null
    })
  }
}

function accept (payload: Uint8Array, coordinator: VerifiedIdentity): DataStore[] {
  const list = DataStoreList.decode(payload, { limits: { datastores: MAX_ANNOUNCED_DATASTORES } })
  const principal = principalOf(coordinator)
  return list.datastores.map(d => {
    if (d.owner !== principal) throw new InvalidAnnouncementError(`${coordinator.name} announced ${d.path} as owned by ${d.owner}; it speaks only for ${principal}`)
    if (!(STRATEGIES as readonly string[]).includes(d.strategy)) throw new InvalidAnnouncementError(`${d.path} has unknown strategy ${d.strategy}`)
    const path = normalizePath(d.path)
    // No registry creates one: `/` would take every path of every daemon, private namespaces included.
    if (path === '/') throw new InvalidAnnouncementError(`${coordinator.name} announced / as a DataStore`)
    return { path, owner: d.owner, strategy: d.strategy as Strategy, replicas: d.replicas, createdAtMs: 0, version: d.version }
  })
}
