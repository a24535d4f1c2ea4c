import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { call } from '../../src/control/client.js'
import { BIN, Cleanup, TestFederation, cli, startDaemon, waitFor } from '../helpers/daemons.js'
import { promtool, startPrometheus } from '../helpers/prometheus.js'
import type { RunningDaemon } from '../helpers/daemons.js'
import type { RunningPrometheus } from '../helpers/prometheus.js'

// One coordinator and two storage nodes as real processes, watched the way an operator would: their log lines,
// `status`, a live /metrics scrape linted by promtool, a real Prometheus server scraping them, and /health as
// nodes go away and come back.

const cleanup = new Cleanup()
let fed: TestFederation
let work: string
let coordinator: RunningDaemon
const nodeDirs: string[] = []
const nodes: RunningDaemon[] = []
let prometheus: RunningPrometheus | undefined

/** The coordinator logs JSON (--log-format json), node-01 text (explicit), node-02 JSON at warn (env + --log-level) */
const NODE_ARGS: string[][] = [['--log-format', 'text'], ['--log-level', 'warn']]
const NODE_ENV: NodeJS.ProcessEnv[] = [{}, { COLLECTIVE_LOG_FORMAT: 'json' }]

function home (): string { return coordinator.dir }

function baseUrl (d: RunningDaemon): string {
  const url = d.status.metrics as string | undefined
  assert.ok(url != null, `daemon in ${d.dir} reports no metrics URL in status`)
  return url.replace(/\/metrics$/, '')
}

/** JSON log lines in a daemon's output (stdout lines of the CLI are not JSON objects with a msg) */
function jsonLogs (d: RunningDaemon): any[] {
  return d.output().split('\n').flatMap(line => {
    if (!line.startsWith('{')) return []
    try {
      const record = JSON.parse(line)
      return typeof record.msg === 'string' ? [record] : []
    } catch { return [] }
  })
}

async function waitForLog (d: RunningDaemon, what: string, match: (record: any) => boolean, timeoutMs = 15_000): Promise<any> {
  return await waitFor(`log line "${what}"`, async () => jsonLogs(d).find(match), timeoutMs)
}

async function getHealth (d: RunningDaemon, path = '/health'): Promise<{ status: number, body: any }> {
  const res = await fetch(baseUrl(d) + path)
  return { status: res.status, body: await res.json() }
}

async function scrape (d: RunningDaemon): Promise<string> {
  const res = await fetch(baseUrl(d) + '/metrics')
  assert.equal(res.status, 200)
  return await res.text()
}

/** The value of one series in a scrape, e.g. sample(text, 'collective_registered_nodes') */
function sample (text: string, series: string): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(series + ' '))
  return line == null ? undefined : Number(line.slice(series.length + 1))
}

async function startNode (i: number): Promise<void> {
  nodes[i] = await startDaemon(cleanup, nodeDirs[i], ['--coordinator', coordinator.status.listen[0], ...NODE_ARGS[i]], NODE_ENV[i])
}

async function aliveNodes (): Promise<number> {
  return (await call(coordinator.socket, 'nodes')).filter((n: any) => n.state === 'alive').length
}

describe('observability: operator logs, status, metrics, Prometheus and health of real daemons', () => {
  before(async () => {
    work = await cleanup.tempDir('collective-obs-')
    fed = await TestFederation.create(cleanup)
    await fed.member('alice', 'home.collective.local')
    const coordinatorDir = await fed.component('alice', 'coordinator', 'coordinator', {
      storage: { replication: 2, gcGrace: '1s', gcInterval: '1s' }
    })
    coordinator = await startDaemon(cleanup, coordinatorDir, ['--log-format', 'json'])
    for (let i = 0; i < 2; i++) nodeDirs.push(await fed.component('alice', `node-0${i + 1}`, 'node', { storage: { capacity: '1GiB' } }))
    await Promise.all([0, 1].map(startNode))
    await waitFor('2 alive nodes', async () => await aliveNodes() === 2, 20_000)
  })

  after(async () => { await cleanup.run() })

  it('logs operator events one line each: JSON, text and level as chosen by --log-format/--log-level and the env', async () => {
    const started = await waitForLog(coordinator, 'daemon started', r => r.msg === 'daemon started')
    assert.equal(started.level, 'info')
    assert.equal(started.component, 'collective:daemon')
    assert.equal(started.name, 'coordinator@home.collective.local')
    assert.equal(started.peerId, coordinator.status.peerId)
    assert.deepEqual(started.addrs, coordinator.status.listen)
    assert.match(started.time, /^\d{4}-\d\d-\d\dT/)
    for (const name of ['node-01@home.collective.local', 'node-02@home.collective.local']) {
      const reg = await waitForLog(coordinator, `node registered ${name}`, r => r.msg === 'node registered' && r.node === name)
      assert.equal(reg.level, 'info')
      assert.equal(reg.capacityBytes, 1024 ** 3)
    }
    // node-01: text, one line per event
    await waitFor('node-01 text lines', async () => /INFO +collective:daemon registered with coordinator /m.test(nodes[0].output()))
    assert.match(nodes[0].output(), new RegExp(`^\\S+Z INFO  collective:daemon daemon started name=node-01@home\\.collective\\.local role=node peerId=${nodes[0].status.peerId as string} `, 'm'))
    // node-02: JSON from the environment, but nothing below warn
    assert.equal(jsonLogs(nodes[1]).filter(r => r.level === 'info' || r.level === 'debug').length, 0, nodes[1].output())
    assert.doesNotMatch(nodes[1].output(), /daemon started/)

    // Bad option values are usage errors, not silently ignored.
    const bad = await cli(['status', '--log-format', 'xml', '--home', home()])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--log-format must be one of text, json/)
  })

  it('logs a node of another member as refused and a peer of another federation as a refused handshake', async () => {
    await fed.member('bob', 'garage.collective.local')
    const bobNode = await startDaemon(cleanup, await fed.component('bob', 'node-09', 'node', { storage: { capacity: '1GiB' } }), ['--coordinator', coordinator.status.listen[0]])
    const otherFed = await TestFederation.create(cleanup, 'elsewhere.example')
    await otherFed.member('mallory', 'home.elsewhere.example')
    const stranger = await startDaemon(cleanup, await otherFed.component('mallory', 'node-01', 'node', { storage: { capacity: '1GiB' } }), ['--coordinator', coordinator.status.listen[0]])
    const refused = await waitForLog(coordinator, 'node refused', r => r.msg === 'node refused')
    assert.equal(refused.level, 'warn')
    assert.equal(refused.node, 'node-09@garage.collective.local')
    assert.equal(refused.reason, 'ForeignNodeError')
    assert.match(refused.message, /garage\.collective\.local/)
    // Different federations cannot finish Noise (the root certificate is its prologue): the peer stays unproven.
    const handshake = await waitForLog(coordinator, 'handshake refused', r => r.msg === 'handshake refused')
    assert.equal(handshake.level, 'warn')
    assert.equal(handshake.direction, 'inbound')
    assert.equal(handshake.reason, 'NoiseHandshakeError')
    // The refused node says so in its own log (text: it was started without options).
    await waitFor('bob\'s node to log the refusal', async () => /ERROR collective:daemon coordinator refused registration .*error=ForeignNodeError/m.test(bobNode.output()))
    // The stranger retries (its reporter backs off from 500 ms); each attempt is refused and recorded in status,
    // but logged once per window.
    await waitFor('a second refused handshake', async () => (await call(coordinator.socket, 'status')).refusals.length >= 2, 15_000)
    await Promise.all([bobNode.stop(), stranger.stop()])
    assert.equal(jsonLogs(coordinator).filter(r => r.msg === 'handshake refused').length, 1, coordinator.output())
  })

  it('status gives the overview: health, members, nodes with fill, capacity; --json and --watch', async () => {
    const j = await cli(['status', '--json', '--home', home()])
    assert.equal(j.code, 0, j.stderr)
    const s = JSON.parse(j.stdout)
    assert.equal(s.health.score, 100)
    assert.equal(s.health.status, 'healthy')
    assert.deepEqual(s.health.components.map((c: any) => c.name).sort(), ['disk', 'node_availability', 'replication'])
    // Membership comes from SWIM: this member's coordinator and its two nodes, all alive.
    const alice = s.members.find((m: any) => m.domain === 'home.collective.local')
    assert.equal(alice.member, 'alice')
    assert.deepEqual(alice.peers.map((p: any) => `${String(p.name)}:${String(p.state)}`).sort(), ['coordinator@home.collective.local:alive', 'node-01@home.collective.local:alive', 'node-02@home.collective.local:alive'])
    assert.equal(s.nodes.length, 2)
    assert.equal(s.storage.capacityBytes, 2 * 1024 ** 3)
    assert.equal(s.storage.liveNodes, 2)
    assert.equal(s.storage.underReplicatedChunks, 0)

    const t = await cli(['status', '--home', home()])
    assert.equal(t.code, 0, t.stderr)
    assert.match(t.stdout, /^coordinator@home\.collective\.local {2}\(coordinator of member alice\) {4}health 100\/100 healthy$/m)
    assert.match(t.stdout, /^Members \(\d\)$/m)
    assert.match(t.stdout, /^ {2}alice@home\.collective\.local {2}3 alive {2}\(this member\)$/m)
    assert.match(t.stdout, /^Storage .* used of 2\.0 GiB \(\d+\.\d%\) on 2 live node\(s\), \d+ chunks, replication 2$/m)
    assert.match(t.stdout, /^ {2}node-01@home\.collective\.local +alive +\d+\.\d%/m)
    assert.ok(t.stdout.split('\n').length < 40, `one screen:\n${t.stdout}`)

    const n = await cli(['status', '--json'], { home: nodes[0].dir })
    const ns = JSON.parse(n.stdout)
    assert.equal(ns.registration.state, 'registered')
    assert.equal(ns.storage.capacityBytes, 1024 ** 3)
    assert.deepEqual(ns.health.components.map((c: any) => c.name).sort(), ['connectivity', 'disk'])

    // --watch 1 --json: one JSON object per line per refresh, until Ctrl-C
    const proc = cleanup.track(spawn(process.execPath, [BIN, 'status', '--watch', '1', '--json', '--home', home()], { stdio: ['ignore', 'pipe', 'pipe'] }))
    let out = ''
    proc.stdout?.on('data', d => { out += String(d) })
    await waitFor('two refreshes', async () => out.split('\n').filter(l => l.length > 0).length >= 2, 10_000)
    const exited = new Promise<number | null>(resolve => proc.once('exit', code => { resolve(code) }))
    proc.kill('SIGINT')
    assert.equal(await exited, 0)
    const frames = out.trim().split('\n').map(l => JSON.parse(l))
    assert.ok(frames.length >= 2)
    for (const f of frames) assert.equal(f.name, 'coordinator@home.collective.local')

    assert.equal((await cli(['status', '--watch', 'soon', '--home', home()])).code, 2)
  })

  it('(a) a live /metrics scrape of the coordinator and of a node passes promtool check metrics', async () => {
    for (const d of [coordinator, nodes[0]]) {
      const text = await scrape(d)
      assert.ok(text.length > 0 && text.includes('# TYPE collective_cluster_health_score gauge'), 'the scrape is not empty')
      const lint = promtool(['check', 'metrics'], text)
      assert.equal(lint.output, '', `promtool check metrics on ${d.dir}:\n${lint.output}`)
      assert.equal(lint.status, 0)
    }
    const c = await scrape(coordinator)
    assert.equal(sample(c, 'collective_registered_nodes'), 2)
    // SWIM's view: the coordinator itself and its two nodes
    assert.equal(sample(c, 'collective_members{state="alive"}'), 3)
    assert.equal(sample(c, 'collective_node_health_score{node="node-01@home.collective.local"}'), 100)
    assert.ok((sample(c, 'collective_node_heartbeats_total') ?? 0) > 2, 'heartbeats are counted')
    assert.ok((sample(c, 'collective_control_requests_total{method="status",result="ok"}') ?? 0) > 0, 'control requests are counted')
    assert.equal(sample(c, 'collective_control_requests_total{method="fs.put",result="error"}'), 0, 'known methods start at zero')
    assert.equal(sample(c, 'collective_storage_capacity_bytes'), 0, 'a coordinator stores nothing itself')
    const n = await scrape(nodes[0])
    assert.equal(sample(n, 'collective_storage_capacity_bytes'), 1024 ** 3)
  })

  it('(b) a real Prometheus server scrapes them: health score, and chunk operations after a put', async () => {
    prometheus = await startPrometheus(cleanup, [
      { address: new URL(baseUrl(coordinator)).host, labels: { role: 'coordinator' } },
      ...nodes.map(d => ({ address: new URL(baseUrl(d)).host, labels: { role: 'node' } }))
    ])
    const p = prometheus
    const health = await waitFor('Prometheus to have the coordinator\'s health score', async () => {
      const r = await p.query('collective_cluster_health_score{role="coordinator"}')
      return r.length === 1 ? r[0] : undefined
    }, 20_000, 250)
    assert.equal(Number(health.value[1]), 100)
    await waitFor('all three targets to be up', async () => (await p.query('up{job="collective"} == 1')).length === 3, 10_000, 250)

    const local = join(work, 'file')
    await writeFile(local, randomBytes(300 * 1024))
    const put = await cli(['put', local, '/file', '--home', home()])
    assert.equal(put.code, 0, put.stderr)
    // 300 KiB in 64 KiB chunks is 5 chunks, each stored twice: 10 puts over the two nodes once both were scraped.
    let seen = 0
    await waitFor('Prometheus to see the chunk puts on the nodes', async () => {
      const r = await p.query('sum(collective_chunk_operations_total{role="node",op="put",result="ok"})')
      seen = r.length === 1 ? Number(r[0].value[1]) : 0
      return seen >= 10
    }, 20_000, 250).catch(err => { throw new Error(`${(err as Error).message}; Prometheus last had ${seen} chunk puts`) })
    assert.equal(seen, 10)
  })

  it('logs garbage collection after a file is removed', async () => {
    const local = join(work, 'garbage')
    // 100 KiB: two 64 KiB chunks
    await writeFile(local, randomBytes(100 * 1024))
    const put = await cli(['put', local, '/garbage', '--home', home()])
    assert.equal(put.code, 0, put.stderr)
    assert.equal((await cli(['rm', '/garbage', '--home', home()])).code, 0)
    const gc = await waitForLog(coordinator, 'garbage collected', r => r.msg === 'garbage collected', 20_000)
    assert.equal(gc.level, 'info')
    assert.equal(gc.component, 'collective:daemon:files')
    assert.equal(gc.chunks, 2)
  })

  it('(c) health follows the nodes: lower with one gone, not ready with none, back when they return', async () => {
    assert.equal((await getHealth(coordinator, '/health/ready')).status, 200)
    await nodes[1].stop()
    const one = await waitFor('the coordinator to see node-02 gone', async () => {
      const h = await getHealth(coordinator)
      return h.body.score < 100 ? h : undefined
    }, 10_000, 200)
    assert.ok(one.body.score > 30, `one of two nodes left is degraded, not down: ${JSON.stringify(one.body)}`)
    assert.equal((await getHealth(coordinator, '/health/ready')).status, 200)
    const dead = await waitForLog(coordinator, 'node dead', r => r.msg === 'node dead' && r.node === 'node-02@home.collective.local', 10_000)
    assert.equal(dead.level, 'error')

    await nodes[0].stop()
    assert.match(nodes[0].output(), /INFO +collective:daemon daemon stopped name=node-01@home\.collective\.local /)
    const down = await waitFor('the coordinator to become not ready', async () => {
      const h = await getHealth(coordinator, '/health/ready')
      return h.status === 503 ? h : undefined
    }, 10_000, 200)
    assert.ok(down.body.score <= 30, JSON.stringify(down.body))
    assert.equal(down.body.status, 'not_ready')
    const full = await getHealth(coordinator)
    assert.equal(full.status, 503)
    assert.equal(full.body.status, 'unhealthy')

    // With every node gone a write fails: logged as an error and counted as a placement failure.
    const local = join(work, 'doomed')
    await writeFile(local, randomBytes(1000))
    const put = await cli(['put', local, '/doomed', '--home', home()])
    assert.notEqual(put.code, 0)
    const failed = await waitForLog(coordinator, 'write failed', r => r.msg === 'write failed' && r.path === '/doomed')
    assert.equal(failed.level, 'error')
    // Readiness can drop while node-01 is only suspect (its copies still count); the gauges below need it dead.
    await waitForLog(coordinator, 'node dead', r => r.msg === 'node dead' && r.node === 'node-01@home.collective.local', 10_000)
    const c = await scrape(coordinator)
    assert.equal(sample(c, 'collective_placement_failures_total{reason="insufficient_nodes"}'), 1)
    // put of a local file: the daemon reads it itself (fs.putLocal)
    assert.equal(sample(c, 'collective_control_requests_total{method="fs.putLocal",result="error"}'), 1)
    // Both nodes stopped cleanly: they left the membership (neither alive nor dead), only the coordinator is alive.
    assert.equal(sample(c, 'collective_members{state="alive"}'), 1)
    assert.equal(sample(c, 'collective_node_health_score{node="node-01@home.collective.local"}'), 0)

    await Promise.all([0, 1].map(startNode))
    const back = await waitFor('the coordinator to be ready again', async () => {
      const h = await getHealth(coordinator, '/health/ready')
      return h.status === 200 && h.body.score === 100 ? h : undefined
    }, 20_000, 200)
    assert.equal(back.body.status, 'ready')
    await waitForLog(coordinator, 'node alive again', r => r.msg === 'node alive again' && r.node === 'node-01@home.collective.local')
  })
})
