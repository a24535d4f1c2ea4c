import '../../../src/polyfill.js'
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { register as globalRegistry } from 'prom-client'
import { createMetrics, CHUNK_OPS, METRIC_PREFIX } from '../../../src/metrics/metrics.js'
import type { CollectiveMetrics } from '../../../src/metrics/metrics.js'
import { promtool } from './promtool.js'

// The families the product needs; if a name changes here, config/alerts.yml and dashboards change with it.
const EXPECTED: Record<string, string> = {
  collective_connections_open: 'gauge',
  collective_connections_healthy: 'gauge',
  collective_connection_attempts_total: 'counter',
  collective_connection_failures_total: 'counter',
  collective_handshake_duration_seconds: 'histogram',
  collective_members: 'gauge',
  collective_gossip_messages_total: 'counter',
  collective_probe_duration_seconds: 'histogram',
  collective_anti_entropy_runs_total: 'counter',
  collective_chunk_operations_total: 'counter',
  collective_chunk_bytes_total: 'counter',
  collective_chunk_operation_duration_seconds: 'histogram',
  collective_chunk_verification_failures_total: 'counter',
  collective_placement_operations_total: 'counter',
  collective_placement_failures_total: 'counter',
  collective_placement_node_chunks: 'gauge',
  collective_permission_checks_total: 'counter',
  collective_permission_denials_total: 'counter',
  collective_invites_created_total: 'counter',
  collective_invites_redeemed_total: 'counter',
  collective_invites_expired_total: 'counter',
  collective_invites_active: 'gauge',
  collective_retries_total: 'counter',
  collective_circuit_breaker_opens_total: 'counter',
  collective_circuit_breakers: 'gauge',
  collective_failovers_total: 'counter',
  collective_storage_capacity_bytes: 'gauge',
  collective_storage_used_bytes: 'gauge',
  collective_storage_chunks: 'gauge',
  collective_under_replicated_chunks: 'gauge',
  collective_cluster_health_score: 'gauge',
  collective_node_health_score: 'gauge',
  collective_registered_nodes: 'gauge',
  collective_node_heartbeats_total: 'counter',
  collective_control_requests_total: 'counter'
}

function types (text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1], m[2])
  return out
}

/** touches every metric, with label values shaped like real ones (federated names with @ and dots) */
function exercise (m: CollectiveMetrics): void {
  m.connectionsOpen.set(4)
  m.connectionsHealthy.set(3)
  m.connectionAttempts.inc({ direction: 'outbound' })
  m.connectionFailures.inc({ reason: 'certificate' })
  m.handshakeDuration.observe(0.042)
  m.members.set({ state: 'alive' }, 5)
  m.gossipMessages.inc({ type: 'ping' }, 3)
  m.probeDuration.observe({ kind: 'direct' }, 0.002)
  m.antiEntropyRuns.inc({ result: 'ok' })
  for (const op of CHUNK_OPS) {
    m.chunkOperations.inc({ op, result: 'ok' })
    m.chunkOperationDuration.observe({ op }, 0.01)
  }
  m.chunkBytes.inc({ direction: 'in' }, 1048576)
  m.chunkVerificationFailures.inc()
  m.placementOperations.inc({ strategy: 'backup' })
  m.placementFailures.inc({ reason: 'insufficient_nodes' })
  m.placementNodeChunks.set({ node: 'node-01@alice.home.collective.local' }, 12)
  m.permissionChecks.inc({ right: 'read' })
  m.permissionDenials.inc({ right: 'write' })
  m.invitesCreated.inc()
  m.invitesRedeemed.inc()
  m.invitesExpired.inc()
  m.invitesActive.set(2)
  m.retries.inc()
  m.circuitBreakerOpens.inc({ peer_role: 'node' })
  m.circuitBreakers.set({ peer_role: 'node', state: 'open' }, 1)
  m.failovers.inc()
  m.storageCapacityBytes.set(1e12)
  m.storageUsedBytes.set(2.5e11)
  m.storageChunks.set(1000)
  m.underReplicatedChunks.set(0)
  m.clusterHealthScore.set(88)
  m.nodeHealthScore.set({ node: 'node-02@bob.home.collective.local' }, 75)
  m.registeredNodes.set(3)
  m.nodeHeartbeats.inc()
  m.controlRequests.inc({ method: 'put', result: 'ok' })
}

describe('createMetrics', () => {
  it('registers every product metric family with its conventional name and type', async () => {
    const m = createMetrics()
    const text = await m.registry.metrics()
    const got = types(text)
    for (const [name, type] of Object.entries(EXPECTED)) {
      assert.equal(got.get(name), type, `metric ${name} should be a ${type}`)
    }
  })

  it('puts only collective_ metrics in the registry unless defaults are asked for', async () => {
    const m = createMetrics()
    for (const name of types(await m.registry.metrics()).keys()) {
      assert.ok(name.startsWith(METRIC_PREFIX), `${name} lacks the ${METRIC_PREFIX} prefix`)
    }
  })

  it('follows naming conventions: counters end in _total, nothing else does', async () => {
    const m = createMetrics({ collectDefault: true })
    for (const [name, type] of types(await m.registry.metrics())) {
      if (type === 'counter') assert.match(name, /_total$/, `counter ${name}`)
      else assert.doesNotMatch(name, /_total$/, `${type} ${name}`)
    }
  })

  it('never touches the global registry and builds independent registries', async () => {
    const before = (await globalRegistry.metrics()).length
    const a = createMetrics()
    const b = createMetrics({ collectDefault: true })
    assert.notEqual(a.registry, globalRegistry)
    assert.notEqual(a.registry, b.registry)
    assert.equal((await globalRegistry.metrics()).length, before)
    a.retries.inc(5)
    assert.match(await a.registry.metrics(), /^collective_retries_total 5$/m)
    assert.match(await b.registry.metrics(), /^collective_retries_total 0$/m)
  })

  it('creates the known label combinations at zero so rates and alerts have series from the first scrape', async () => {
    const text = await createMetrics().registry.metrics()
    assert.match(text, /^collective_chunk_operations_total\{op="delete",result="error"\} 0$/m)
    assert.match(text, /^collective_members\{state="suspect"\} 0$/m)
    assert.match(text, /^collective_connection_failures_total\{reason="certificate"\} 0$/m)
    assert.match(text, /^collective_circuit_breakers\{peer_role="coordinator",state="half_open"\} 0$/m)
  })

  it('exports process metrics under their standard names when collectDefault is set', async () => {
    const text = await createMetrics({ collectDefault: true }).registry.metrics()
    assert.match(text, /^# TYPE process_cpu_seconds_total counter$/m)
    assert.match(text, /^# TYPE nodejs_heap_size_used_bytes gauge$/m)
    assert.doesNotMatch(text, /nodejs_active_handles_total/)
  })

  it('passes promtool check metrics with no output, and the scrape is not empty', async () => {
    for (const collectDefault of [false, true]) {
      const m = createMetrics({ collectDefault })
      exercise(m)
      const text = await m.registry.metrics()
      assert.ok(text.length > 1000, 'scrape should not be empty')
      assert.match(text, /^collective_placement_node_chunks\{node="node-01@alice.home.collective.local"\} 12$/m)
      const r = promtool(['check', 'metrics'], text)
      assert.equal(r.output, '', `promtool check metrics (collectDefault=${String(collectDefault)}) complained:\n${r.output}`)
      assert.equal(r.status, 0)
    }
  })

  it('promtool check metrics is a real check: it flags what prom-client defaults get wrong', () => {
    // guards the test above against a promtool that accepts anything
    const bad = '# HELP nodejs_active_handles_total x\n# TYPE nodejs_active_handles_total gauge\nnodejs_active_handles_total 1\n'
    const r = promtool(['check', 'metrics'], bad)
    assert.notEqual(r.status, 0)
    assert.match(r.output, /_total/)
  })
})
