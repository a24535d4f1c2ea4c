import type { ProtocolLimits } from '../net/rpc.js'

/** Spec: protocols/node.md */
export const NODE_PROTOCOL = '/collective/node/1.0.0'

export const NODE_PROTOCOL_LIMITS: ProtocolLimits = {
  maxMessageBytes: 16 * 1024,
  timeoutMs: 10_000
}

/** Corrupt chunk CIDs carried by one report (about 60 bytes each: well inside the frame limit); the rest wait */
export const MAX_CORRUPT_PER_REPORT = 128

export class NotANodeError extends Error {
  static name = 'NotANodeError'
  name = 'NotANodeError'
}

export class ForeignNodeError extends Error {
  static name = 'ForeignNodeError'
  name = 'ForeignNodeError'
}
