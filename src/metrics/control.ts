import { ControlBody, ControlServer } from '../control/server.js'
import type { ControlContext, ControlHandler } from '../control/server.js'

export interface ControlOutcome {
  method: string
  params: Record<string, unknown>
  result: 'ok' | 'error'
  error?: Error
  /** the client went away or the daemon is stopping: a cancellation, not a failure of the daemon */
  aborted: boolean
  seconds: number
}

export type ControlObserver = (outcome: ControlOutcome) => void

/**
 * A control server that reports the outcome of every request to `observe` (for collective_control_requests_total
 * and the operator log). Every method registered on it — the daemon's own and those other modules register, such
 * as the file methods — is wrapped, so nothing has to remember to count. A handler that streams a body (a
 * download) is reported when the body has been written or has failed, because that is when the request ends.
 * Unknown methods never reach a handler and are not counted, which keeps the method label a closed set.
 */
export class InstrumentedControlServer extends ControlServer {
  private readonly observe: ControlObserver
  /** every method registered so far, so their counters can be created at zero */
  readonly methods: string[] = []

  constructor (components: ConstructorParameters<typeof ControlServer>[0], init: ConstructorParameters<typeof ControlServer>[1], observe: ControlObserver) {
    super(components, init)
    this.observe = observe
  }

  /** the handlers as registered, before instrumentation: a wrapper that re-registers one must not count twice */
  private readonly raw = new Map<string, ControlHandler>()

  override register (method: string, handler: ControlHandler): void {
    if (!this.methods.includes(method)) this.methods.push(method)
    this.raw.set(method, handler)
    super.register(method, instrumentHandler(method, handler, this.observe))
  }

  override handler (method: string): ControlHandler | undefined {
    return this.raw.get(method)
  }
}

export function instrumentHandler (method: string, handler: ControlHandler, observe: ControlObserver): ControlHandler {
  return async (params: Record<string, unknown>, ctx: ControlContext) => {
    const started = performance.now()
    const report = (error?: unknown): void => {
      const outcome: ControlOutcome = {
        method,
        params,
        result: error === undefined ? 'ok' : 'error',
        aborted: error !== undefined && ctx.signal.aborted,
        seconds: (performance.now() - started) / 1000
      }
      if (error !== undefined) outcome.error = error instanceof Error ? error : new Error(String(error))
      // Observing must never turn a served request into a failed one.
      try { observe(outcome) } catch {}
    }
    let out: unknown
    try {
      out = await handler(params, ctx)
    } catch (err) {
      report(err ?? new Error('handler failed'))
      throw err
    }
    if (!(out instanceof ControlBody)) {
      report()
      return out
    }
    return new ControlBody(out.result, async (socket, signal) => {
      try {
        await out.write(socket, signal)
      } catch (err) {
        report(err ?? new Error('body failed'))
        throw err
      }
      report()
    })
  }
}
