import '../../../src/polyfill.js'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { createMetrics } from '../../../src/metrics/metrics.js'
import { ALERTS_FILE, PROMETHEUS_FILE, promtool, requireFile } from './promtool.js'

interface Rule { alert?: string, record?: string, expr: string, for?: string, labels?: Record<string, string>, annotations?: Record<string, string> }
interface RuleFile { groups: Array<{ name: string, rules: Rule[] }> }

const REQUIRED_ALERTS = ['ClusterUnhealthy', 'NodeDown', 'HighConnectionFailures', 'PlacementFailures', 'CircuitBreakerOpen', 'DiskNearlyFull', 'ChunksUnderReplicated']

async function rules (): Promise<Rule[]> {
  const file = parse(await readFile(requireFile(ALERTS_FILE), 'utf8')) as RuleFile
  return file.groups.flatMap(g => g.rules)
}

describe('config/alerts.yml', () => {
  it('passes promtool check rules', () => {
    const r = promtool(['check', 'rules', ALERTS_FILE])
    assert.equal(r.status, 0, r.output)
    assert.match(r.stdout, /SUCCESS/)
  })

  it('defines the required alerts, each with a severity, a summary and a description', async () => {
    const all = await rules()
    const names = all.map(r => r.alert)
    for (const name of REQUIRED_ALERTS) assert.ok(names.includes(name), `missing alert ${name}`)
    for (const rule of all) {
      assert.ok(rule.alert != null, 'only alerting rules belong in alerts.yml')
      assert.match(rule.labels?.severity ?? '', /^(critical|warning|info)$/, `${rule.alert} severity`)
      assert.ok((rule.annotations?.summary ?? '').length > 0, `${rule.alert} summary`)
      assert.ok((rule.annotations?.description ?? '').length > 0, `${rule.alert} description`)
    }
  })

  it('only refers to metrics that createMetrics registers (or Prometheus up)', async () => {
    const text = await createMetrics().registry.metrics()
    const known = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map(m => m[1]))
    known.add('up')
    for (const rule of await rules()) {
      for (const m of rule.expr.matchAll(/\b(collective_[a-z0-9_]+|up)\b/g)) {
        assert.ok(known.has(m[1]), `${rule.alert} uses unknown metric ${m[1]}`)
      }
    }
  })
})

describe('config/alerts.yml behaviour (promtool test rules)', () => {
  let dir = ''

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'collective-alerts-'))
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('fires each alert on the conditions it documents, and not before', async () => {
    // promtool compares annotations exactly; their templates are validated by check rules above, so the
    // behaviour test runs on a copy without them and asserts on labels and timing only.
    const file = parse(await readFile(ALERTS_FILE, 'utf8')) as RuleFile
    for (const group of file.groups) for (const rule of group.rules) delete rule.annotations
    const rulesPath = join(dir, 'alerts.yml')
    await writeFile(rulesPath, stringify(file))

    const job = { job: 'collective' }
    const suite = {
      rule_files: [rulesPath],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            { series: 'collective_cluster_health_score{instance="a",job="collective"}', values: '20x10' },
            { series: 'collective_cluster_health_score{instance="b",job="collective"}', values: '30x10' }
          ],
          alert_rule_test: [
            { eval_time: '1m', alertname: 'ClusterUnhealthy', exp_alerts: [] },
            { eval_time: '3m', alertname: 'ClusterUnhealthy', exp_alerts: [{ exp_labels: { severity: 'critical', instance: 'a', ...job } }] }
          ]
        },
        {
          interval: '1m',
          input_series: [
            { series: 'up{instance="127.0.0.1:9465",job="collective"}', values: '1 0 0 0 0' },
            { series: 'up{instance="127.0.0.1:9466",job="collective"}', values: '1 1 1 1 1' }
          ],
          alert_rule_test: [
            { eval_time: '1m', alertname: 'NodeDown', exp_alerts: [] },
            { eval_time: '3m', alertname: 'NodeDown', exp_alerts: [{ exp_labels: { severity: 'critical', instance: '127.0.0.1:9465', ...job } }] }
          ]
        },
        {
          interval: '1m',
          input_series: [
            // instance a: half of 1 attempt/s fails; instance b: 1 failure a minute out of 60 attempts
            { series: 'collective_connection_attempts_total{instance="a",job="collective",direction="outbound"}', values: '0+60x20' },
            { series: 'collective_connection_failures_total{instance="a",job="collective",reason="certificate"}', values: '0+30x20' },
            { series: 'collective_connection_attempts_total{instance="b",job="collective",direction="outbound"}', values: '0+60x20' },
            { series: 'collective_connection_failures_total{instance="b",job="collective",reason="timeout"}', values: '0+1x20' }
          ],
          alert_rule_test: [
            { eval_time: '15m', alertname: 'HighConnectionFailures', exp_alerts: [{ exp_labels: { severity: 'warning', instance: 'a' } }] }
          ]
        },
        {
          interval: '1m',
          input_series: [
            { series: 'collective_placement_failures_total{instance="a",job="collective",reason="insufficient_nodes"}', values: '0 0 0 1 1 1 1 1 1 1 1 1' },
            { series: 'collective_placement_failures_total{instance="a",job="collective",reason="timeout"}', values: '0x12' }
          ],
          alert_rule_test: [
            { eval_time: '2m', alertname: 'PlacementFailures', exp_alerts: [] },
            { eval_time: '9m', alertname: 'PlacementFailures', exp_alerts: [{ exp_labels: { severity: 'warning', instance: 'a', reason: 'insufficient_nodes' } }] }
          ]
        },
        {
          interval: '1m',
          input_series: [
            { series: 'collective_circuit_breakers{instance="a",job="collective",peer_role="node",state="open"}', values: '1x10' },
            { series: 'collective_circuit_breakers{instance="a",job="collective",peer_role="coordinator",state="open"}', values: '0x10' },
            { series: 'collective_circuit_breakers{instance="a",job="collective",peer_role="coordinator",state="closed"}', values: '4x10' }
          ],
          alert_rule_test: [
            { eval_time: '3m', alertname: 'CircuitBreakerOpen', exp_alerts: [] },
            { eval_time: '6m', alertname: 'CircuitBreakerOpen', exp_alerts: [{ exp_labels: { severity: 'warning', instance: 'a', peer_role: 'node' } }] }
          ]
        },
        {
          interval: '1m',
          input_series: [
            { series: 'collective_storage_used_bytes{instance="full",job="collective"}', values: '95x10' },
            { series: 'collective_storage_capacity_bytes{instance="full",job="collective"}', values: '100x10' },
            { series: 'collective_storage_used_bytes{instance="fine",job="collective"}', values: '85x10' },
            { series: 'collective_storage_capacity_bytes{instance="fine",job="collective"}', values: '100x10' },
            // a coordinator stores nothing: no division by zero alert
            { series: 'collective_storage_used_bytes{instance="coord",job="collective"}', values: '0x10' },
            { series: 'collective_storage_capacity_bytes{instance="coord",job="collective"}', values: '0x10' }
          ],
          alert_rule_test: [
            { eval_time: '3m', alertname: 'DiskNearlyFull', exp_alerts: [] },
            { eval_time: '6m', alertname: 'DiskNearlyFull', exp_alerts: [{ exp_labels: { severity: 'warning', instance: 'full', ...job } }] }
          ]
        },
        {
          interval: '1m',
          input_series: [
            { series: 'collective_under_replicated_chunks{instance="a",job="collective"}', values: '5x20' },
            { series: 'collective_under_replicated_chunks{instance="b",job="collective"}', values: '0x20' }
          ],
          alert_rule_test: [
            { eval_time: '9m', alertname: 'ChunksUnderReplicated', exp_alerts: [] },
            { eval_time: '11m', alertname: 'ChunksUnderReplicated', exp_alerts: [{ exp_labels: { severity: 'warning', instance: 'a', ...job } }] }
          ]
        }
      ]
    }
    const suitePath = join(dir, 'alerts.test.yml')
    await writeFile(suitePath, stringify(suite))
    const r = promtool(['test', 'rules', suitePath])
    assert.equal(r.status, 0, r.output)
    assert.match(r.output, /SUCCESS/)
  })
})

describe('config/prometheus.yml', () => {
  it('passes promtool check config, loading alerts.yml', () => {
    const r = promtool(['check', 'config', requireFile(PROMETHEUS_FILE)])
    assert.equal(r.status, 0, r.output)
    assert.match(r.output, /alerts\.yml/)
  })

  it('scrapes job collective on 127.0.0.1:9464-9467', async () => {
    const config = parse(await readFile(PROMETHEUS_FILE, 'utf8')) as { rule_files: string[], scrape_configs: Array<{ job_name: string, static_configs: Array<{ targets: string[] }> }> }
    assert.deepEqual(config.rule_files, ['alerts.yml'])
    const job = config.scrape_configs.find(s => s.job_name === 'collective')
    assert.ok(job != null)
    const targets = job.static_configs.flatMap(s => s.targets).sort()
    assert.deepEqual(targets, ['127.0.0.1:9464', '127.0.0.1:9465', '127.0.0.1:9466', '127.0.0.1:9467'])
  })
})
