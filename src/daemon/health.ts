import { computeHealth, nodeAvailabilityComponent, diskComponent, connectivityComponent, replicationComponent } from '../metrics/health.js'
import type { HealthReport, HealthComponent } from '../metrics/health.js'
import type { Daemon, StorageSummary } from './daemon.js'

/**
 * The health of one daemon from what it can see: a coordinator scores its storage nodes (alive share, fill) and
 * its chunks' replication on live nodes, a node its own disk and whether its coordinator accepts it.
 */
export function daemonHealth (daemon: Daemon, storage: StorageSummary | undefined): HealthReport {
  const components: HealthComponent[] = []
  if (daemon.registry != null) {
    const nodes = daemon.registry.list()
    components.push(nodeAvailabilityComponent(nodes.filter(n => n.state === 'alive').length, nodes.length))
  }
  if (storage != null) {
    components.push(diskComponent(storage.usedBytes, storage.capacityBytes))
    if (storage.underReplicatedChunks != null && storage.chunks != null) {
      components.push(replicationComponent(storage.underReplicatedChunks, storage.chunks))
    }
  }
  if (daemon.reporter != null) {
    components.push(connectivityComponent(daemon.reporter.status.state === 'registered' ? 1 : 0, 1))
  }
  return computeHealth(components)
}
