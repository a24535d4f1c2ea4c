import '../../../src/polyfill.js'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import { MetricsServer } from '../../../src/metrics/http-server.js'
import { computeHealth } from '../../../src/metrics/health.js'
import type { HealthReport } from '../../../src/metrics/health.js'
import { createMetrics } from '../../../src/metrics/metrics.js'
import { promtool } from './promtool.js'

interface Reply { status: number, headers: Record<string, string | string[] | undefined>, body: string }

// A keep-alive agent, like a Prometheus scraper's, so stop() is tested against sockets that stay open.
const agent = new Agent({ keepAlive: true, maxSockets: 4 })

async function call (port: number, path: string, method = 'GET'): Promise<Reply> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** a server whose health score the test sets */
function fixture (): { server: MetricsServer, setScore: (s: number) => void, metrics: ReturnType<typeof createMetrics> } {
  let score = 100
  const metrics = createMetrics({ collectDefault: true })
  const server = new MetricsServer({ port: 0 }, {
    metrics,
    health: () => computeHealth([{ name: 'test', score, weight: 1 }], new Date('2026-11-25T06:00:00.000Z'))
  })
  return { server, metrics, setScore: (s: number) => { score = s } }
}

describe('MetricsServer', () => {
  const { server, setScore, metrics } = fixture()
  let port = 0

  before(async () => {
    await server.start()
    port = server.address.port
  })

  after(async () => {
    await server.stop()
    agent.destroy()
  })

  it('listens on 127.0.0.1 on an ephemeral port by default', () => {
    assert.equal(server.address.host, '127.0.0.1')
    assert.ok(port > 0)
  })

  it('serves Prometheus text on /metrics with the collective metrics', async () => {
    metrics.chunkOperations.inc({ op: 'get', result: 'ok' }, 7)
    const r = await call(port, '/metrics')
    assert.equal(r.status, 200)
    assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
    assert.match(r.body, /^collective_chunk_operations_total\{op="get",result="ok"\} 7$/m)
    assert.match(r.body, /^# TYPE collective_cluster_health_score gauge$/m)
    assert.match(r.body, /^# TYPE process_cpu_seconds_total counter$/m)
  })

  it('serves a scrape that passes promtool check metrics with no output', async () => {
    metrics.placementNodeChunks.set({ node: 'node-03@carol.home.collective.local' }, 3)
    metrics.handshakeDuration.observe(0.02)
    const r = await call(port, '/metrics')
    assert.ok(r.body.trim().length > 0, 'scrape should not be empty')
    const lint = promtool(['check', 'metrics'], r.body)
    assert.equal(lint.output, '', `promtool check metrics complained:\n${lint.output}`)
    assert.equal(lint.status, 0)
  })

  it('mirrors the health score into collective_cluster_health_score on each scrape', async () => {
    setScore(55)
    assert.match((await call(port, '/metrics')).body, /^collective_cluster_health_score 55$/m)
    setScore(12)
    assert.match((await call(port, '/metrics')).body, /^collective_cluster_health_score 12$/m)
  })

  it('answers /health with the JSON report: 200 when healthy or degraded, 503 when unhealthy', async () => {
    const cases: Array<[number, number, string]> = [[100, 200, 'healthy'], [70, 200, 'healthy'], [69, 200, 'degraded'], [30, 200, 'degraded'], [29, 503, 'unhealthy'], [0, 503, 'unhealthy']]
    for (const [score, status, label] of cases) {
      setScore(score)
      const r = await call(port, '/health')
      assert.equal(r.status, status, `score ${score}`)
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8')
      const report = JSON.parse(r.body) as HealthReport
      assert.equal(report.status, label)
      assert.equal(report.score, score)
      assert.equal(report.timestamp, '2026-11-25T06:00:00.000Z')
      assert.deepEqual(report.components, [{ name: 'test', score, weight: 1 }])
    }
  })

  it('answers /health/live with 200 whatever the score', async () => {
    setScore(0)
    const r = await call(port, '/health/live')
    assert.equal(r.status, 200)
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8')
    assert.deepEqual(JSON.parse(r.body), { status: 'alive' })
  })

  it('answers /health/ready with 200 while the score is above 30, 503 from 30 down', async () => {
    for (const [score, status] of [[100, 200], [31, 200], [30, 503], [29, 503], [0, 503]]) {
      setScore(score)
      const r = await call(port, '/health/ready')
      assert.equal(r.status, status, `score ${score}`)
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8')
      assert.deepEqual(JSON.parse(r.body), { status: status === 200 ? 'ready' : 'not_ready', score })
    }
  })

  it('answers unknown paths with 404 JSON', async () => {
    for (const path of ['/', '/nope', '/metrics/', '/health/other', '/health/live/x']) {
      const r = await call(port, path)
      assert.equal(r.status, 404, path)
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8')
      assert.equal((JSON.parse(r.body) as { error: string }).error, 'not_found')
    }
  })

  it('ignores the query string when routing', async () => {
    setScore(100)
    assert.equal((await call(port, '/health?verbose=1')).status, 200)
  })

  it('answers methods other than GET with 405 and an Allow header', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const path of ['/metrics', '/health', '/health/live', '/health/ready']) {
        const r = await call(port, path, method)
        assert.equal(r.status, 405, `${method} ${path}`)
        assert.equal(r.headers.allow, 'GET, HEAD')
        assert.equal(r.headers['content-type'], 'application/json; charset=utf-8')
      }
    }
  })

  it('answers HEAD like GET without a body', async () => {
    setScore(100)
    const r = await call(port, '/health', 'HEAD')
    assert.equal(r.status, 200)
    assert.equal(r.body, '')
  })
})

describe('MetricsServer health sources that fail', () => {
  it('reports unhealthy (503) when the health source throws, and sets the gauge to 0', async () => {
    const metrics = createMetrics()
    metrics.clusterHealthScore.set(90)
    const server = new MetricsServer({}, { metrics, health: () => { throw new Error('membership not started') } })
    await server.start()
    try {
      const r = await call(server.address.port, '/health')
      assert.equal(r.status, 503)
      const report = JSON.parse(r.body) as HealthReport
      assert.equal(report.status, 'unhealthy')
      assert.equal(report.components[0].detail, 'membership not started')
      assert.equal((await call(server.address.port, '/health/ready')).status, 503)
      const scrape = await call(server.address.port, '/metrics')
      assert.equal(scrape.status, 200)
      assert.match(scrape.body, /^collective_cluster_health_score 0$/m)
    } finally {
      await server.stop()
    }
  })

  it('reports unhealthy when the health source does not answer in time', async () => {
    const server = new MetricsServer({ healthTimeoutMs: 50 }, { metrics: createMetrics(), health: async () => await new Promise<HealthReport>(() => {}) })
    await server.start()
    try {
      const r = await call(server.address.port, '/health')
      assert.equal(r.status, 503)
      assert.match((JSON.parse(r.body) as HealthReport).components[0].detail ?? '', /timed out/)
      assert.equal((await call(server.address.port, '/health/live')).status, 200)
    } finally {
      await server.stop()
    }
  })

  it('accepts an async health source', async () => {
    const server = new MetricsServer({}, { metrics: createMetrics(), health: async () => computeHealth([{ name: 'x', score: 45, weight: 1 }]) })
    await server.start()
    try {
      const r = await call(server.address.port, '/health')
      assert.equal(r.status, 200)
      assert.equal((JSON.parse(r.body) as HealthReport).status, 'degraded')
    } finally {
      await server.stop()
    }
  })
})

describe('MetricsServer lifecycle', () => {
  it('throws a named error for address before start and after stop', async () => {
    const server = new MetricsServer({}, { metrics: createMetrics(), health: () => computeHealth([]) })
    assert.throws(() => server.address, { name: 'MetricsServerNotStartedError' })
    await server.start()
    await server.stop()
    assert.throws(() => server.address, { name: 'MetricsServerNotStartedError' })
  })

  it('fails to start with a named error when the port is taken', async () => {
    const first = new MetricsServer({}, { metrics: createMetrics(), health: () => computeHealth([]) })
    await first.start()
    try {
      const second = new MetricsServer({ port: first.address.port }, { metrics: createMetrics(), health: () => computeHealth([]) })
      await assert.rejects(second.start(), { name: 'MetricsServerStartError' })
    } finally {
      await first.stop()
    }
  })

  it('start and stop are idempotent, and the server can restart', async () => {
    const server = new MetricsServer({}, { metrics: createMetrics(), health: () => computeHealth([]) })
    await server.start()
    await server.start()
    await server.stop()
    await server.stop()
    await server.start()
    assert.equal((await call(server.address.port, '/health/live')).status, 200)
    await server.stop()
  })

  it('stop() closes keep-alive connections promptly instead of waiting for them to time out', async () => {
    const keepAlive = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 })
    const server = new MetricsServer({}, { metrics: createMetrics(), health: () => computeHealth([]) })
    await server.start()
    const port = server.address.port
    const r = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/metrics', agent: keepAlive }, res => {
        res.resume()
        res.on('end', () => { resolve(res.statusCode ?? 0) })
      }).on('error', reject).end()
    })
    assert.equal(r, 200)
    const started = Date.now()
    await server.stop()
    // Node's default keep-alive timeout is 5 s; closing the idle socket ourselves takes milliseconds
    assert.ok(Date.now() - started < 1000, `stop took ${Date.now() - started} ms`)
    keepAlive.destroy()
  })
})
