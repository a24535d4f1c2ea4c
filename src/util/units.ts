export class InvalidSizeError extends Error {
  static name = 'InvalidSizeError'
  name = 'InvalidSizeError'
}

export class InvalidDurationError extends Error {
  static name = 'InvalidDurationError'
  name = 'InvalidDurationError'
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4
}

/** Parses "512MiB", "10GB", "4096" into bytes */
export function parseSize (input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw new InvalidSizeError(`invalid size ${input}`)
    return input
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input)
  const unit = m?.[2].toLowerCase() ?? ''
  if (m == null || SIZE_UNITS[unit] == null) throw new InvalidSizeError(`invalid size "${input}" (examples: 512MiB, 10GB, 4096)`)
  return Math.floor(Number(m[1]) * SIZE_UNITS[unit])
}

export function formatBytes (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = bytes
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** Parses human durations: "90m", "36h", "7d", "1h30m" into milliseconds */
export function parseDuration (input: string): number {
  const re = /(\d+)(ms|s|m|h|d|w)/gy
  let total = 0
  let matched = 0
  let m: RegExpExecArray | null
  const s = input.trim()
  while ((m = re.exec(s)) != null) {
    total += Number(m[1]) * DURATION_UNITS[m[2]]
    matched = re.lastIndex
  }
  if (s.length === 0 || matched !== s.length) throw new InvalidDurationError(`invalid duration "${input}" (examples: 90m, 36h, 7d)`)
  return total
}
