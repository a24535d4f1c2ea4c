import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// Shared by the metrics tests: runs the real promtool rather than an imitation of its lint rules.

/** repository root, from dist/test/unit/metrics/ */
export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
export const ALERTS_FILE = join(ROOT, 'config', 'alerts.yml')
export const PROMETHEUS_FILE = join(ROOT, 'config', 'prometheus.yml')

export interface PromtoolResult {
  status: number
  stdout: string
  stderr: string
  /** stdout and stderr together: promtool reports lint problems on either */
  output: string
}

export class PromtoolMissingError extends Error {
  override readonly name = 'PromtoolMissingError'
}

/**
 * Runs promtool (env PROMTOOL, else `promtool` on PATH). A missing promtool fails the test instead of skipping
 * it: CI installs the Debian package `prometheus`, and a silently skipped lint is a lint that never ran.
 */
export function promtool (args: string[], input?: string): PromtoolResult {
  const bin = process.env.PROMTOOL ?? 'promtool'
  const r = spawnSync(bin, args, { input, encoding: 'utf8', timeout: 60_000 })
  if (r.error != null) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new PromtoolMissingError(`promtool not found (tried "${bin}"): install the Debian package "prometheus" (apt-get install -y prometheus), or set PROMTOOL to its path. These tests never skip.`)
    }
    throw r.error
  }
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, output: (r.stdout + r.stderr).trim() }
}

export function requireFile (path: string): string {
  if (!existsSync(path)) throw new Error(`expected file ${path} to exist`)
  return path
}
