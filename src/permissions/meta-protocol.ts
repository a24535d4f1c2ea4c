import { MetaOp, MetaStatus } from '../gen/meta.js'
import { MAX_CAPABILITY_CIDS } from './capability.js'
import type { ProtocolLimits } from '../net/rpc.js'
import type { Right } from './rights.js'

/** Spec: protocols/meta.md */
export const META_PROTOCOL = '/collective/meta/1.0.0'

export interface MetaProtocolLimits extends ProtocolLimits {
  /** Largest response frame: an OPEN_READ page with its locations and capabilities */
  maxResponseBytes: number
  maxInboundStreams: number
  /** Entries per LS page, chunks per OPEN_READ page */
  lsPageSize: number
  readPageChunks: number
  /** Chunks per ALLOCATE, and per capability */
  allocateChunks: number
  /** Chunks per write: ALLOCATE takes no index at or beyond it, nor pins more distinct chunks for one write */
  writeChunks: number
  /** Open writes per caller */
  maxOpenWrites: number
  /** An open write idle this long is dropped */
  writeIdleMs: number
}

export const META_PROTOCOL_LIMITS: MetaProtocolLimits = {
  maxMessageBytes: 64 * 1024,
  maxResponseBytes: 4 * 1024 * 1024,
  // answered from SQLite at the owner, plus one hop when forwarded
  timeoutMs: 10_000,
  maxInboundStreams: 32,
  lsPageSize: 1000,
  readPageChunks: 4096,
  allocateChunks: MAX_CAPABILITY_CIDS,
  // 1 TiB at 1 MiB chunks (a stream of unknown size), 4 TiB at 4 MiB
  writeChunks: 2 ** 20,
  maxOpenWrites: 16,
  writeIdleMs: 10 * 60_000
}

/**
 * The right each operation needs at its `path` (MV also needs `write` at its destination; COMMIT_WRITE repeats
 * BEGIN_WRITE's check). Undefined: decided otherwise (see meta.md): ownership, the write's own caller, the code.
 */
export const REQUIRED_RIGHT: Readonly<Partial<Record<MetaOp, Right>>> = Object.freeze({
  [MetaOp.MKDIR]: 'write',
  [MetaOp.LS]: 'read',
  [MetaOp.STAT]: 'read',
  [MetaOp.RM]: 'delete',
  [MetaOp.MV]: 'delete',
  [MetaOp.OPEN_READ]: 'read',
  [MetaOp.BEGIN_WRITE]: 'write',
  [MetaOp.COMMIT_WRITE]: 'write',
  [MetaOp.SETATTR]: 'write',
  [MetaOp.GRANT]: 'share',
  [MetaOp.REVOKE]: 'share'
})

// Raised by the meta handler (wiring) for failures of the protocol itself; permission and namespace failures keep
// the classes of src/permissions and src/metadata.

/** A request without an op, or missing a field its op needs, or carrying one it does not take */
export class InvalidMetaRequestError extends Error {
  static name = 'InvalidMetaRequestError'
  name = 'InvalidMetaRequestError'
}

/** This coordinator does not own the DataStore of the path: the caller should send it to the owner */
export class NotOwnerError extends Error {
  static name = 'NotOwnerError'
  name = 'NotOwnerError'
}

/** ALLOCATE, COMMIT_WRITE or ABORT_WRITE for a write that is not open (never begun, committed, aborted or expired) */
export class UnknownWriteError extends Error {
  static name = 'UnknownWriteError'
  name = 'UnknownWriteError'
}

/** The file changed between the pages of one read */
export class ConcurrentWriteError extends Error {
  static name = 'ConcurrentWriteError'
  name = 'ConcurrentWriteError'
}

/** The caller already has the maximum number of open writes */
export class TooManyWritesError extends Error {
  static name = 'TooManyWritesError'
  name = 'TooManyWritesError'
}

/** ALLOCATE of a chunk beyond the most one write may have (`writeChunks`) */
export class WriteTooLargeError extends Error {
  static name = 'WriteTooLargeError'
  name = 'WriteTooLargeError'
}

// Keyed by the stable error names of meta.md; anything unlisted is the coordinator's own failure
const STATUS_BY_ERROR: Readonly<Record<string, MetaStatus>> = Object.freeze({
  PermissionDeniedError: MetaStatus.DENIED,
  OperationNotAllowedError: MetaStatus.DENIED,
  UnknownPeerError: MetaStatus.DENIED,
  CertificateRevokedError: MetaStatus.DENIED,
  NotFoundError: MetaStatus.NOT_FOUND,
  NoSuchDataStoreError: MetaStatus.NOT_FOUND,
  NoSuchGrantError: MetaStatus.NOT_FOUND,
  UnknownInviteError: MetaStatus.NOT_FOUND,
  UnknownWriteError: MetaStatus.NOT_FOUND,
  InvalidPathError: MetaStatus.INVALID,
  NotADirectoryError: MetaStatus.INVALID,
  IsADirectoryError: MetaStatus.INVALID,
  InvalidManifestError: MetaStatus.INVALID,
  InvalidAttributeError: MetaStatus.INVALID,
  InvalidCidError: MetaStatus.INVALID,
  InvalidRightsError: MetaStatus.INVALID,
  InvalidSubjectError: MetaStatus.INVALID,
  InvalidGrantError: MetaStatus.INVALID,
  InvalidDataStoreError: MetaStatus.INVALID,
  InvalidJoinStringError: MetaStatus.INVALID,
  InvalidRedemptionError: MetaStatus.INVALID,
  InvalidMetaRequestError: MetaStatus.INVALID,
  WriteTooLargeError: MetaStatus.INVALID,
  AlreadyExistsError: MetaStatus.CONFLICT,
  NotEmptyError: MetaStatus.CONFLICT,
  DataStoreExistsError: MetaStatus.CONFLICT,
  NestedDataStoreError: MetaStatus.CONFLICT,
  InviteExpiredError: MetaStatus.CONFLICT,
  InviteExhaustedError: MetaStatus.CONFLICT,
  InviteRevokedError: MetaStatus.CONFLICT,
  GuestNameTakenError: MetaStatus.CONFLICT,
  ConcurrentWriteError: MetaStatus.CONFLICT,
  TooManyWritesError: MetaStatus.CONFLICT
})

/** The response status for a failure, by its stable name (meta.md, "Statuses and error names") */
export function metaStatusOf (err: { name?: string }): MetaStatus {
  return STATUS_BY_ERROR[err?.name ?? ''] ?? MetaStatus.ERROR
}
