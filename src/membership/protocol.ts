import type { ProtocolLimits } from '../net/rpc.js'

/** Spec: protocols/swim.md */
export const SWIM_PROTOCOL = '/collective/swim/1.0.0'
/** Spec: protocols/sync.md */
export const SYNC_PROTOCOL = '/collective/sync/1.0.0'

export const SWIM_PROTOCOL_LIMITS: ProtocolLimits = {
  maxMessageBytes: 64 * 1024,
  // A probe that takes longer has failed anyway; the prober's own timeout is shorter.
  timeoutMs: 5_000
}

export const SYNC_PROTOCOL_LIMITS: ProtocolLimits = {
  maxMessageBytes: 1024 * 1024,
  timeoutMs: 15_000
}

/** Largest encoded member record; with MAX_PIGGYBACK of them a probe stays well below 64 KiB */
export const MAX_RECORD_BYTES = 4 * 1024
export const MAX_ADDRS = 16
export const MAX_META_ENTRIES = 16
/** Hard cap on updates carried by one probe message, whatever the configuration says */
export const MAX_PIGGYBACK = 12
/** Digest entries per sync page */
export const SYNC_PAGE_ENTRIES = 512
/** Record bytes per sync response or push, leaving room for framing below the 1 MiB limit */
export const SYNC_PAGE_BYTES = 768 * 1024
/** A sync round stops after this many pages, whatever the member count */
export const MAX_SYNC_PAGES = 256
