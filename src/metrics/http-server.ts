import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { computeHealth, isReady } from './health.js'
import type { HealthReport } from './health.js'
import type { CollectiveMetrics } from './metrics.js'

export interface MetricsServerInit {
  /** default '127.0.0.1': metrics reveal topology, so exposing them beyond the host is an explicit choice */
  host?: string
  /** default 0: an ephemeral port, read it back from `address` */
  port?: number
  /**
   * default 5000: a health source that does not answer within this time is reported as unhealthy, so a stuck
   * subsystem shows up as a failing probe instead of a probe that hangs until the scraper gives up
   */
  healthTimeoutMs?: number
}

export interface MetricsServerComponents {
  metrics: CollectiveMetrics
  health: () => HealthReport | Promise<HealthReport>
}

export class MetricsServerStartError extends Error {
  override readonly name = 'MetricsServerStartError'
}

export class MetricsServerNotStartedError extends Error {
  override readonly name = 'MetricsServerNotStartedError'
}

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'
const ROUTES = new Set(['/metrics', '/health', '/health/live', '/health/ready'])

/**
 * Serves Prometheus metrics and health probes over plain HTTP (node:http only, no framework: four routes do not
 * need one, and a small surface is easier to keep safe on a port that may face a monitoring network).
 */
export class MetricsServer {
  private readonly host: string
  private readonly port: number
  private readonly healthTimeoutMs: number
  private readonly components: MetricsServerComponents
  private server: Server | undefined

  constructor (init: MetricsServerInit, components: MetricsServerComponents) {
    this.host = init.host ?? '127.0.0.1'
    this.port = init.port ?? 0
    this.healthTimeoutMs = init.healthTimeoutMs ?? 5000
    this.components = components
  }

  get address (): { host: string, port: number } {
    const address = this.server?.address()
    if (address == null || typeof address === 'string') {
      throw new MetricsServerNotStartedError('the metrics server is not listening')
    }
    return { host: (address as AddressInfo).address, port: (address as AddressInfo).port }
  }

  async start (): Promise<void> {
    if (this.server != null) return
    const server = createServer((req, res) => { void this.handle(req, res) })
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(new MetricsServerStartError(`cannot listen on ${this.host}:${this.port}: ${err.message}`, { cause: err }))
      }
      server.once('error', onError)
      server.listen(this.port, this.host, () => {
        server.off('error', onError)
        resolve()
      })
    })
    this.server = server
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server == null) return
    this.server = undefined
    const closed = new Promise<void>(resolve => { server.close(() => { resolve() }) })
    // close() alone waits for keep-alive sockets (a scraper holds one open between scrapes) to time out.
    server.closeAllConnections()
    await closed
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname
      if (!ROUTES.has(path)) {
        sendJson(res, 404, { error: 'not_found', path })
        return
      }
      // HEAD is answered like GET (Node drops the body) because HTTP requires it of any server supporting GET.
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { error: 'method_not_allowed', method: req.method }, { Allow: 'GET, HEAD' })
        return
      }
      switch (path) {
        case '/metrics': {
          await this.health()
          const body = await this.components.metrics.registry.metrics()
          send(res, 200, this.components.metrics.registry.contentType, body)
          return
        }
        case '/health': {
          const report = await this.health()
          sendJson(res, report.status === 'unhealthy' ? 503 : 200, report)
          return
        }
        case '/health/live':
          sendJson(res, 200, { status: 'alive' })
          return
        case '/health/ready': {
          const report = await this.health()
          const ready = isReady(report)
          sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', score: report.score })
        }
      }
    } catch (err) {
      if (!res.headersSent) {
        sendJson(res, 500, { error: 'internal_error', message: (err as Error).message })
      } else {
        res.destroy()
      }
    }
  }

  /**
   * Evaluates the health source and mirrors its score into the cluster health gauge, so the gauge is fresh on every
   * scrape without a timer. A source that throws or times out yields an unhealthy report instead of an error page:
   * for a probe, "cannot tell" must read as "not healthy".
   */
  private async health (): Promise<HealthReport> {
    let report: HealthReport
    let timer: NodeJS.Timeout | undefined
    try {
      report = await Promise.race([
        Promise.resolve().then(async () => await this.components.health()),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { reject(new Error(`health check timed out after ${this.healthTimeoutMs} ms`)) }, this.healthTimeoutMs)
        })
      ])
    } catch (err) {
      report = computeHealth([{ name: 'health_check', score: 0, weight: 1, detail: (err as Error).message }])
    } finally {
      clearTimeout(timer)
    }
    this.components.metrics.clusterHealthScore.set(report.score)
    return report
  }
}

function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, JSON_CONTENT_TYPE, JSON.stringify(body), headers)
}

function send (res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    // probes and scrapes must never be answered from a cache in between
    'Cache-Control': 'no-store',
    ...headers
  })
  res.end(body)
}
