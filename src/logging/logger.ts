import type { Writable } from 'node:stream'

// Operator logs: what a person running a daemon reads (or ships to a log store). They are separate from
// @libp2p/logger's DEBUG-driven developer traces, which stay off unless asked for.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type LogFormat = 'text' | 'json'
export type LogFields = Record<string, unknown>

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error']
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json']

export interface LoggerInit {
  /** default: env COLLECTIVE_LOG_LEVEL if valid, else 'info' */
  level?: LogLevel
  /** default: env COLLECTIVE_LOG_FORMAT if valid, else 'text' */
  format?: LogFormat
  /** default: process.stderr, so stdout stays free for command output */
  stream?: Writable
  /** default: () => new Date(); injectable so tests can assert on whole lines */
  now?: () => Date
}

export interface Logger {
  /** the full component name, e.g. 'collective:daemon:swim' */
  readonly component: string
  readonly level: LogLevel
  debug: (message: string, fields?: LogFields) => void
  info: (message: string, fields?: LogFields) => void
  warn: (message: string, fields?: LogFields) => void
  error: (message: string, fields?: LogFields) => void
  child: (sub: string) => Logger
}

const PREFIX = 'collective'
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }
const RESERVED = new Set(['time', 'level', 'component', 'msg'])

interface Settings {
  level: LogLevel
  format: LogFormat
  stream: Writable
  now: () => Date
}

export function createLogger (component: string, init: LoggerInit = {}): Logger {
  const settings: Settings = {
    level: init.level ?? pick(process.env.COLLECTIVE_LOG_LEVEL, LOG_LEVELS) ?? 'info',
    format: init.format ?? pick(process.env.COLLECTIVE_LOG_FORMAT, LOG_FORMATS) ?? 'text',
    stream: init.stream ?? process.stderr,
    now: init.now ?? (() => new Date())
  }
  const name = component === PREFIX || component.startsWith(`${PREFIX}:`) ? component : `${PREFIX}:${component}`
  return build(name, settings)
}

function build (component: string, settings: Settings): Logger {
  const log = (level: LogLevel) => (message: string, fields?: LogFields): void => {
    if (RANK[level] < RANK[settings.level]) return
    const time = settings.now().toISOString()
    const line = settings.format === 'json'
      ? jsonLine(time, level, component, message, fields)
      : textLine(time, level, component, message, fields)
    // one write per event, so lines from concurrent tasks never interleave mid-line
    settings.stream.write(line + '\n')
  }
  return {
    component,
    level: settings.level,
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: (sub: string) => build(`${component}:${sub}`, settings)
  }
}

function pick<T extends string> (value: string | undefined, allowed: readonly T[]): T | undefined {
  const v = value?.trim().toLowerCase()
  return allowed.find(a => a === v)
}

function textLine (time: string, level: LogLevel, component: string, message: string, fields?: LogFields): string {
  let line = `${time} ${level.toUpperCase().padEnd(5)} ${component} ${oneLine(message)}`
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (value === undefined) continue
    line += ` ${oneLine(key)}=${textValue(value)}`
  }
  return line
}

function jsonLine (time: string, level: LogLevel, component: string, message: string, fields?: LogFields): string {
  const record: Record<string, unknown> = { time, level, component, msg: message }
  for (const [key, value] of Object.entries(fields ?? {})) {
    // a field may not overwrite the envelope: log shippers key on these names
    record[RESERVED.has(key) ? `_${key}` : key] = value
  }
  return safeStringify(record)
}

// Newlines in a message would split one event into several lines and break line-based log shippers.
function oneLine (s: string): string {
  return s.replace(/[\r\n\t]/g, c => c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t')
}

function textValue (value: unknown): string {
  if (value instanceof Error) return JSON.stringify(errorText(value))
  if (typeof value === 'string') return /^[^\s"=\\]+$/.test(value) ? value : JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  if (value === null) return 'null'
  if (value instanceof Date) return value.toISOString()
  return safeStringify(value)
}

function errorText (err: Error): string {
  const code = (err as { code?: unknown }).code
  return `${err.name}: ${err.message}${code != null ? ` (${String(code)})` : ''}`
}

function errorObject (err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message }
  const code = (err as { code?: unknown }).code
  if (code != null) out.code = code
  if (err.cause instanceof Error) out.cause = { name: err.cause.name, message: err.cause.message }
  return out
}

// Logging must never throw: BigInts, cycles and errors nested in fields are rendered rather than rejected.
function safeStringify (value: unknown): string {
  const seen = new WeakSet<object>()
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Error) return errorObject(v)
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[Circular]'
      seen.add(v)
    }
    return v
  }) ?? 'null'
}
