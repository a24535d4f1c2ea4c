import type { ComponentLogger, Logger as Libp2pLogger } from '@libp2p/interface'

// The components the daemon composes (registry, file service, chunk server) report some operator-relevant events
// only through their @libp2p/logger debug traces, and have no callback for them. Rather than editing every
// component, the daemon hands them a ComponentLogger that still writes the debug traces exactly as before and also
// shows every call to a listener, which turns the few it knows into operator log lines and metrics.

export type DebugLevel = 'debug' | 'error'

export interface DebugLogCall {
  /** the @libp2p/logger component, e.g. 'collective:node-registry' */
  component: string
  /** `log(...)` is 'debug', `log.error(...)` is 'error'; `log.trace(...)` is never shown to the listener */
  level: DebugLevel
  /** the printf-style format string, e.g. 'refused node report from %s - %s' */
  formatter: string
  args: unknown[]
}

export type DebugLogListener = (call: DebugLogCall) => void

/**
 * Wraps a ComponentLogger so that every debug and error call is also given to `listener`. The listener runs even
 * when DEBUG is off (that is the point) and must not throw: an exception from it is swallowed, because logging
 * must never break the code path that logs.
 */
export function bridgeComponentLogger (base: ComponentLogger, listener: DebugLogListener): ComponentLogger {
  return {
    forComponent: (name: string) => bridgeLogger(base.forComponent(name), name, listener)
  }
}

function bridgeLogger (base: Libp2pLogger, component: string, listener: DebugLogListener): Libp2pLogger {
  const notify = (level: DebugLevel, formatter: unknown, args: unknown[]): void => {
    if (typeof formatter !== 'string') return
    try { listener({ component, level, formatter, args }) } catch {}
  }
  const log = ((formatter: any, ...args: any[]): void => {
    base(formatter, ...args)
    notify('debug', formatter, args)
  }) as Libp2pLogger
  log.error = (formatter: any, ...args: any[]): void => {
    base.error(formatter, ...args)
    notify('error', formatter, args)
  }
  log.trace = (formatter: any, ...args: any[]): void => { base.trace(formatter, ...args) }
  log.newScope = (name: string): Libp2pLogger => bridgeLogger(base.newScope(name), `${component}:${name}`, listener)
  // `enabled` follows DEBUG, which can be changed at run time: read it through rather than copying it once.
  Object.defineProperty(log, 'enabled', { get: () => base.enabled, enumerable: true })
  return log
}

/**
 * Renders a debug format string the way @libp2p/logger would, minus stacks: %s %d %i %f %o %O %j and the
 * libp2p formatters (%p peer, %c CID, %a multiaddr, %k key, %b/%t/%m bytes, %e error) each take one argument;
 * %% is a percent sign. Errors become "Name: message". Extra arguments are appended, as debug does.
 */
export function formatDebugMessage (formatter: string, args: unknown[]): string {
  let i = 0
  const text = formatter.replace(/%([a-zA-Z%])/g, (match, flag: string) => {
    if (flag === '%') return '%'
    if (i >= args.length) return match
    return renderArg(args[i++])
  })
  const rest = args.slice(i).map(renderArg)
  return rest.length > 0 ? `${text} ${rest.join(' ')}` : text
}

function renderArg (value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex')
  if (typeof value === 'object' && value !== null && !hasOwnToString(value)) {
    try { return JSON.stringify(value) } catch { return String(value) }
  }
  return String(value)
}

// Peer IDs, CIDs and multiaddrs are objects whose toString is the readable form; plain objects are not.
function hasOwnToString (value: object): boolean {
  return (value as { toString?: unknown }).toString !== Object.prototype.toString
}
