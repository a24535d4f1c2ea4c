import { spawn, spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { writeFile, mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join, delimiter } from 'node:path'
import { stringify } from 'yaml'
import { waitFor } from './daemons.js'
import type { Cleanup } from './daemons.js'
import type { ChildProcess } from 'node:child_process'

// A real Prometheus server for integration tests. Like promtool, a missing binary fails the test with a message
// saying how to install it: CI installs the Debian package "prometheus", and a skipped test proves nothing.

export class PrometheusMissingError extends Error {
  override readonly name = 'PrometheusMissingError'
}

export class PromtoolMissingError extends Error {
  override readonly name = 'PromtoolMissingError'
}

function executable (path: string): boolean {
  try { accessSync(path, constants.X_OK); return true } catch { return false }
}

/** The env variable wins outright when set (a wrong path there is a mistake to report, not to paper over) */
function findBinary (envVar: string, name: string, fallback: string): { path?: string, tried: string } {
  const chosen = process.env[envVar]
  if (chosen != null && chosen !== '') return { path: executable(chosen) ? chosen : undefined, tried: `$${envVar}=${chosen}` }
  const candidates = [...(process.env.PATH ?? '').split(delimiter).filter(d => d !== '').map(d => join(d, name)), fallback]
  return { path: candidates.find(executable), tried: `"${name}" on PATH and ${fallback}` }
}

/** Path of the prometheus server binary (env PROMETHEUS, else PATH, else /usr/bin/prometheus); throws if none */
export function prometheusBinary (): string {
  const { path: bin, tried } = findBinary('PROMETHEUS', 'prometheus', '/usr/bin/prometheus')
  if (bin == null) {
    throw new PrometheusMissingError(`the Prometheus server binary was not found (tried ${tried}): install the Debian package "prometheus" (apt-get install -y prometheus), or set PROMETHEUS to its path. This test never skips.`)
  }
  return bin
}

/** Runs `promtool ARGS` with `input` on stdin (env PROMTOOL, else PATH, else /usr/bin/promtool); throws if missing */
export function promtool (args: string[], input?: string): { status: number, output: string } {
  const { path: bin, tried } = findBinary('PROMTOOL', 'promtool', '/usr/bin/promtool')
  if (bin == null) {
    throw new PromtoolMissingError(`promtool was not found (tried ${tried}): install the Debian package "prometheus" (apt-get install -y prometheus), or set PROMTOOL to its path. This test never skips.`)
  }
  const r = spawnSync(bin, args, { input, encoding: 'utf8', timeout: 30_000 })
  if (r.error != null) throw r.error
  return { status: r.status ?? -1, output: (r.stdout + r.stderr).trim() }
}

/** A TCP port that was free a moment ago (the server that found it is closed before returning) */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address != null ? address.port : 0
      server.close(() => { resolve(port) })
    })
  })
}

export interface ScrapeTarget {
  /** host:port of a daemon's metrics listener */
  address: string
  labels?: Record<string, string>
}

export interface RunningPrometheus {
  proc: ChildProcess
  url: string
  output: () => string
  /** Instant query; resolves with the result vector (an empty array when nothing matches yet) */
  query: (expr: string) => Promise<Array<{ metric: Record<string, string>, value: [number, string] }>>
}

/** Starts Prometheus scraping `targets` every second under job "collective"; the process is ended by `cleanup` */
export async function startPrometheus (cleanup: Cleanup, targets: ScrapeTarget[]): Promise<RunningPrometheus> {
  const bin = prometheusBinary()
  const dir = await cleanup.tempDir('collective-prometheus-')
  await mkdir(join(dir, 'data'))
  const config = join(dir, 'prometheus.yml')
  await writeFile(config, stringify({
    global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '1s' },
    scrape_configs: [{
      job_name: 'collective',
      metrics_path: '/metrics',
      static_configs: targets.map(t => ({ targets: [t.address], labels: t.labels ?? {} }))
    }]
  }))
  const port = await freePort()
  let out = ''
  const proc = cleanup.track(spawn(bin, [
    `--config.file=${config}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`
  ], { stdio: ['ignore', 'pipe', 'pipe'] }))
  proc.stdout?.on('data', d => { out += String(d) })
  proc.stderr?.on('data', d => { out += String(d) })
  const url = `http://127.0.0.1:${port}`
  await waitFor('Prometheus to be ready', async () => {
    if (proc.exitCode != null) throw new Error(`prometheus exited with ${proc.exitCode}: ${out.slice(-2000)}`)
    const res = await fetch(`${url}/-/ready`)
    return res.ok
  }, 20_000, 200)
  return {
    proc,
    url,
    output: () => out,
    query: async (expr: string) => {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`)
      const body = await res.json() as { status: string, error?: string, data?: { resultType: string, result: any[] } }
      if (body.status !== 'success' || body.data == null) throw new Error(`query ${expr} failed: ${res.status} ${body.error ?? ''}`)
      return body.data.result
    }
  }
}
