import { setMaxListeners } from 'node:events'
import { anySignal } from 'any-signal'
import type { ClearableSignal } from 'any-signal'

export type { ClearableSignal }

/**
 * A signal that aborts when any of `signals` does; `clear()` it once the operation is over.
 *
 * Not AbortSignal.any: in Node 20 it keeps a record of every signal made from a source for as long as the source
 * lives (measured: ~65 bytes per call that no collection frees). Made per chunk request from a daemon's long-lived
 * stop signal, that was a leak without end (nodejs/node#54614). any-signal adds a listener to each source instead
 * and `clear()` removes it, so a source shared by many operations at once (a transfer's signal, a service's stop
 * signal) has one listener per operation in flight: expected, so its leak warning is lifted.
 */
export function combineSignals (...signals: Array<AbortSignal | undefined>): ClearableSignal {
  const sources = signals.filter((s): s is AbortSignal => s != null)
  setMaxListeners(Infinity, ...sources)
  return anySignal(sources)
}
