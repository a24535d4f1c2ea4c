import { formatDebugMessage } from './libp2p-bridge.js'
import type { DebugLogCall, DebugLogListener } from './libp2p-bridge.js'
import type { Logger } from './logger.js'

// Debug traces of the daemon's components that stand for an operator event, keyed by component and format string.
// The format strings are matched exactly: they are the only signal these components give for the event (see
// libp2p-bridge.ts). If one is reworded, its operator line falls back to the generic handling below (error calls
// are still logged, as plain text) and the observability integration test that checks it fails.

export interface DaemonEventHooks {
  /** a garbage collection pass deleted `chunks` unreferenced chunks */
  onGarbageCollected?: (chunks: number) => void
}

type Handler = (log: Logger, args: unknown[], hooks: DaemonEventHooks) => void

const str = (v: unknown): string => v instanceof Error ? `${v.name}: ${v.message}` : String(v)

const KNOWN: Record<string, Record<string, Handler | null>> = {
  'collective:node-registry': {
    'refused node report from %s - %s': (log, [node, reason]) => {
      log.warn('node refused', { node: str(node), reason: str(reason) })
    }
  },
  'collective:node-reporter': {
    // The daemon follows the reporter's status itself and logs every transition with its fields.
    'coordinator refused registration - %s: %s': null
  },
  'collective:files': {
    'collected %d unreferenced chunks': (log, [n], hooks) => {
      const chunks = Number(n)
      hooks.onGarbageCollected?.(chunks)
      log.info('garbage collected', { chunks })
    },
    'could not delete garbage chunk %s on %s, will retry - %s': (log, [cid, peer, error]) => {
      log.warn('garbage chunk not deleted, will retry', { cid: str(cid), peer: str(peer), error: str(error) })
    },
    'garbage collection failed - %e': (log, [err]) => {
      log.error('garbage collection failed', { error: str(err) })
    },
    // Reported with its fields through the reader's onBadReplica hook instead.
    'replica of %s on %s is corrupt; dropping it': null
  },
  'collective:chunks:server': {
    '%s of %c failed - %e': (log, [op, cid, err]) => {
      log.error('chunk operation failed', { op: str(op), cid: str(cid), error: str(err) })
    }
  }
}

/**
 * Turns the components' debug traces into operator log lines: the known events above at their proper level with
 * fields, and any other error-level trace as an error line with the rendered message (an error a component
 * thought worth flagging is worth an operator's eye). The remaining traces become debug lines, shown only at
 * --log-level debug: the collective's own traces in the operator format, without DEBUG=... and libp2p's noise.
 */
export function daemonEventListener (log: Logger, hooks: DaemonEventHooks = {}): DebugLogListener {
  return (call: DebugLogCall) => {
    const known = KNOWN[call.component]?.[call.formatter]
    if (known === null) return
    const sub = log.child(call.component.replace(/^collective:/, ''))
    if (known !== undefined) {
      known(sub, call.args, hooks)
      return
    }
    if (call.level === 'error') sub.error(formatDebugMessage(call.formatter, call.args))
    // Checked first so that the traces of busy paths cost no formatting at the usual levels.
    else if (log.level === 'debug') sub.debug(formatDebugMessage(call.formatter, call.args))
  }
}
