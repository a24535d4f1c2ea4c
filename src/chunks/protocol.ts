import { MAX_CHUNK_SIZE, KiB } from '../storage/chunking.js'
import type { ProtocolLimits } from '../net/rpc.js'
import type { Role } from '../identity/index.js'

/**
 * Spec: protocols/chunk.md. Many requests per stream, answered in any order and matched by id: streams live
 * across requests, so each chunk skips the stream's opening, negotiation, closing and yamux's small starting
 * window, which together held one-stream-per-chunk transfers to about half of a bare stream's rate.
 */
export const CHUNK_PROTOCOL = '/collective/chunk/1.1.0'

export interface ChunkProtocolLimits extends ProtocolLimits {
  /** Requests a caller may have unanswered on one stream; a node reads no further frame until one is answered */
  maxRequestsPerStream: number
  /** Concurrent inbound streams of this protocol per connection */
  maxInboundStreams: number
  /** Concurrent outbound streams of this protocol per connection (a node dials other nodes while repairing) */
  maxOutboundStreams: number
  /** A node closes a stream on which no new request frame completed for this long */
  idleTimeoutMs: number
}

export const CHUNK_PROTOCOL_LIMITS: ChunkProtocolLimits = {
  // one chunk of the largest size any file is cut into, plus room for the other fields
  maxMessageBytes: MAX_CHUNK_SIZE + 4 * KiB,
  // one request, from its frame sent to its answer read: a 4 MiB chunk over a slow home uplink, not a loopback
  timeoutMs: 30_000,
  // Per stream a node holds the frames of the requests it is serving and buffers as many again before it resets
  // the stream: 2 streams × 8 frames of at most 4 MiB bound what one peer can make a node hold to 64 MiB. Callers
  // use one stream per node, so one that is closing never blocks its replacement.
  maxRequestsPerStream: 4,
  maxInboundStreams: 2,
  maxOutboundStreams: 2,
  // twice the callers' own idle close, so a stream is never closed under a caller about to reuse it
  idleTimeoutMs: 60_000
}

/** How long a caller keeps a stream with nothing in flight before closing it: idle peers hold no streams */
export const CHUNK_STREAM_IDLE_MS = 30_000

/**
 * Bytes a reader may hold for one frame: the frame plus its length prefix. The stream's read buffers default to
 * 4 MiB, less than a full frame, so both sides raise theirs to this (times the frames a stream may have queued).
 */
export const CHUNK_FRAME_BUFFER_BYTES = CHUNK_PROTOCOL_LIMITS.maxMessageBytes + 16

/** Number of the `data` field (the chunk's bytes) in both ChunkRequest and ChunkResponse */
export const DATA_FIELD = 15

/** Tag of the `data` field: its number and the length-delimited wire type */
const DATA_FIELD_TAG = (DATA_FIELD << 3) | 2

function pushVarint (out: number[], value: number): void {
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80)
    value = Math.floor(value / 0x80)
  }
  out.push(value)
}

/**
 * The start of a length-prefixed frame whose chunk bytes follow it: the length prefix, `message` (encoded
 * without its `data` field) and, when `dataLength` > 0, the tag and length of the `data` field. The writer sends
 * the chunk's bytes right after it, as they are: protobuf merges concatenated encodings of one message, so any
 * decoder reads the frame as one message, and the chunk travels from the caller's buffer (or the node's file
 * reads) to the muxer without being copied into an encoded message first.
 */
export function frameHead (message: Uint8Array, dataLength: number): Uint8Array {
  const field: number[] = []
  if (dataLength > 0) {
    field.push(DATA_FIELD_TAG)
    pushVarint(field, dataLength)
  }
  const prefix: number[] = []
  pushVarint(prefix, message.byteLength + field.length + dataLength)
  const head = new Uint8Array(prefix.length + message.byteLength + field.length)
  head.set(prefix, 0)
  head.set(message, prefix.length)
  head.set(field, prefix.length + message.byteLength)
  return head
}

export type ChunkOperation = 'put' | 'get' | 'has' | 'delete'

/** Outcome of one served request, as a metrics label */
export type ChunkResult = 'ok' | 'not_found' | 'invalid' | 'full' | 'denied' | 'error'

/**
 * Which roles may ask a node for what: coordinators (placement, repair, garbage collection) and clients (the data
 * path of a client daemon). Nodes never talk to each other's chunk servers. On top of the role, every request
 * needs a capability for its chunk (ChunkServer.authorize).
 */
export const CHUNK_ROLE_POLICY: Readonly<Record<ChunkOperation, readonly Role[]>> = {
  get: ['coordinator', 'client'],
  has: ['coordinator', 'client'],
  put: ['coordinator', 'client'],
  delete: ['coordinator', 'client']
}

// Raised by the node's authorization check; they travel to the caller as the reason of a DENIED response.

/** The caller has no verified identity on this node: it never completed our certificate handshake */
export class UnknownPeerError extends Error {
  static name = 'UnknownPeerError'
  name = 'UnknownPeerError'
}

/** The caller's certified role may not perform this operation */
export class OperationNotAllowedError extends Error {
  static name = 'OperationNotAllowedError'
  name = 'OperationNotAllowedError'
}

/** A request the node cannot act on: no operation, a CID that does not parse, data on an operation without any */
export class InvalidChunkRequestError extends Error {
  static name = 'InvalidChunkRequestError'
  name = 'InvalidChunkRequestError'
}

// Raised by the caller for each refusal status. `reason` is the stable error name the node reported, so a caller
// can tell e.g. a hash mismatch (ChunkVerificationError) from an unsupported CID (UnsupportedCidError).

/** A status other than OK, as the caller sees it; `reason` is the node's stable error name */
export abstract class ChunkRefusal extends Error {
  readonly reason: string
  constructor (reason: string, message: string) {
    super(message)
    this.reason = reason
  }
}

/** FULL: the node cannot take the chunk without exceeding its capacity or its disk reserve */
export class NodeFullError extends ChunkRefusal {
  static name = 'NodeFullError'
  name = 'NodeFullError'
  /** What the node said it could still take, in bytes (0 when it did not say) */
  readonly availableBytes: number
  constructor (reason: string, message: string, availableBytes = 0) {
    super(reason, message)
    this.availableBytes = availableBytes
  }
}

/** INVALID: the node refused the request itself (bytes not matching the CID, unsupported CID, oversized chunk) */
export class ChunkRejectedError extends ChunkRefusal {
  static name = 'ChunkRejectedError'
  name = 'ChunkRejectedError'
}

/** DENIED: the node does not let this caller perform this operation */
export class ChunkAccessDeniedError extends ChunkRefusal {
  static name = 'ChunkAccessDeniedError'
  name = 'ChunkAccessDeniedError'
}

/** ERROR: the node failed for a reason of its own (disk error, store not started ...) */
export class RemoteChunkError extends ChunkRefusal {
  static name = 'RemoteChunkError'
  name = 'RemoteChunkError'
}

export { ChunkNotFoundError, ChunkVerificationError } from '../storage/errors.js'
