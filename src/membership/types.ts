import type { SwimRequest, SwimResponse } from '../gen/swim.js'
import type { SyncRequest, SyncResponse } from '../gen/sync.js'
import type { AbortOptions } from '@libp2p/interface'

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left'

/** What a member announces about itself; signed by its own key */
export interface MemberInfo {
  /** libp2p peer ID (string form) */
  id: string
  /** Multiaddrs the member listens on */
  addrs: string[]
  /** Small descriptive fields (name, role, member ...) */
  meta: Record<string, string>
}

export interface MemberRecord extends MemberInfo {
  state: MemberState
  /** Raised only by the member itself: to refute a suspicion or to announce new addrs/meta */
  incarnation: number
  /** Lamport clock of the member that made the last change */
  version: number
  /** Local time (ms) this member's record last changed here */
  changedAt: number
}

export interface MemberChangeEvent {
  member: MemberRecord
  /** The state before the change; absent when the member is seen for the first time */
  previous?: MemberState
}

export interface SwimEvents {
  'member:change': CustomEvent<MemberChangeEvent>
}

/**
 * Carries the two membership protocols between members. Requests are addressed by peer ID; the transport knows
 * how to reach it (libp2p: the peer store; tests: the in-memory network). Rejects when the peer cannot be reached
 * or the signal aborts.
 */
export interface SwimTransport {
  /** One `/collective/swim/1.0.0` exchange */
  probe: (to: string, req: SwimRequest, options: AbortOptions) => Promise<SwimResponse>
  /** One `/collective/sync/1.0.0` exchange */
  sync: (to: string, req: SyncRequest, options: AbortOptions) => Promise<SyncResponse>
}

/** What a transport delivers inbound requests to (Swim implements it) */
export interface SwimHandler {
  /** `from` is the authenticated sender, never taken from the message */
  handle: (from: string, req: SwimRequest, options?: AbortOptions) => Promise<SwimResponse>
  handleSync: (from: string, req: SyncRequest, options?: AbortOptions) => Promise<SyncResponse>
}

/** Time source and timers; injectable so that hundreds of members can run in virtual time in one process */
export interface Scheduler {
  now: () => number
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

/** Signs this member's own records */
export interface RecordSigner {
  sign: (payload: Uint8Array) => Uint8Array | Promise<Uint8Array>
}

/** Checks that `signature` over `payload` was made by the member `id` */
export interface RecordVerifier {
  verify: (id: string, payload: Uint8Array, signature: Uint8Array) => boolean | Promise<boolean>
}

/** A digest entry: which version of a subject's record a member holds */
export interface DigestEntry {
  id: string
  incarnation: number
  state: MemberState
  version: number
}
