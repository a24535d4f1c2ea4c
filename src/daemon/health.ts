import { computeHealth, nodeAvailabilityComponent, diskComponent, connectivityComponent, replicationComponent } from '../metrics/health.js'
import type { HealthReport, HealthComponent } from '../metrics/health.js'
import type { Daemon } from './daemon.js'

/**
 * The health of one daemon from what it can see: a coordinator scores its storage nodes (alive share, fill) and
 * its chunks' replication on live nodes, a node its own disk and whether its coordinator accepts it.
 */
export async function daemonHealth (daemon: Daemon): Promise<HealthReport> {
  const components: HealthComponent[] = []
  if (daemon.registry != null) {
    const nodes = daemon.registry.list()
    const live = nodes.filter(n => n.state !== 'dead')
    components.push(nodeAvailabilityComponent(nodes.filter(n => n.state === 'alive').length, nodes.length))
    components.push(diskComponent(live.reduce((s, n) => s + n.usedBytes, 0), live.reduce((s, n) => s + n.capacityBytes, 0)))
    if (daemon.files != null) {
      const r = daemon.files.metadata.replicationSummary(live.map(n => n.peerId), daemon.files.replication)
      components.push(replicationComponent(r.underReplicated, r.chunks))
    }
  }
  if (daemon.store != null) {
    const s = await daemon.store.stats()
    components.push(diskComponent(s.usedBytes, s.capacityBytes))
  }
  if (daemon.reporter != null) {
    components.push(connectivityComponent(daemon.reporter.status.state === 'registered' ? 1 : 0, 1))
  }
  return computeHealth(components)
}
