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

export class InvalidTimestampError extends Error {
  static name = 'InvalidTimestampError'
  name = 'InvalidTimestampError'
}

// A zone is required on date-times: `--until 2026-12-24T00:00` would otherwise mean different instants on the
// machine that typed it and the coordinator that enforces it
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/

/** Parses an ISO 8601 instant, "2026-12-24T00:00Z" or "2026-12-24" (midnight UTC), into Unix milliseconds */
export function parseTimestamp (input: string): number {
  const text = input.trim()
  const m = TIMESTAMP.exec(text)
  const ms = m == null ? Number.NaN : Date.parse(m[4] == null ? `${text}T00:00Z` : text)
  // Date.parse rolls 2026-02-30 over into March; a date that does not survive the round trip is a typo
  const day = new Date(Number.isNaN(ms) ? 0 : ms + (m?.[7] == null || m[7] === 'Z' ? 0 : offsetMs(m[7])))
  if (m == null || Number.isNaN(ms) || day.getUTCFullYear() !== Number(m[1]) || day.getUTCMonth() + 1 !== Number(m[2]) || day.getUTCDate() !== Number(m[3])) {
    throw new InvalidTimestampError(`invalid time "${input}" (examples: 2026-12-24T00:00Z, 2026-12-24T08:30+01:00, 2026-12-24)`)
  }
  return ms
}

function offsetMs (zone: string): number {
  const sign = zone.startsWith('-') ? -1 : 1
  return sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000
}

/** `--for 7d` or `--until 2026-12-24T00:00Z`: a duration from `now`, or an instant. Returns Unix milliseconds */
export function parseExpiry (input: string, now = Date.now()): number {
  const text = input.trim()
  return /^\d{4}-/.test(text) ? parseTimestamp(text) : now + parseDuration(text)
}
