import { performance } from 'node:perf_hooks'

/** What every benchmark script shares: a timestamped progress log on stderr (stdout is for the JSON) and its flags */

const startedAt = performance.now()

export function log (line: string): void {
  process.stderr.write(`[${((performance.now() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${line}\n`)
}

export class UsageError extends Error {
  static name = 'UsageError'
  name = 'UsageError'
}

export const round = (n: number, digits: number): number => Number(n.toFixed(digits))

/** A flag's value as a positive number, or `fallback` when the flag is absent */
export function positive (name: string, value: string | undefined, fallback: number): number {
  if (value == null) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} wants a positive number, not "${value}"`)
  return n
}
