import { CHUNK_PROTOCOL, CHUNK_PROTOCOL_LIMITS } from '../../src/chunks/protocol.js'
import { NodeReportResponse } from '../../src/gen/node.js'
import { KAD_PROTOCOL } from '../../src/net/host.js'
import { NODE_PROTOCOL, NODE_PROTOCOL_LIMITS } from '../../src/node-registry/protocol.js'
import { SWIM_PROTOCOL, SWIM_PROTOCOL_LIMITS, SYNC_PROTOCOL, SYNC_PROTOCOL_LIMITS } from '../../src/membership/index.js'
import { SwimResponse } from '../../src/gen/swim.js'
import { SyncResponse } from '../../src/gen/sync.js'
import { META_PROTOCOL, META_PROTOCOL_LIMITS } from '../../src/permissions/index.js'
import type { FrameLimits } from './frames.js'

/** A stream protocol of ours, as the fuzzer sees it: where it is served and how big its frames may be */
export interface FuzzTarget extends FrameLimits {
  protocol: string
  /** Roles whose daemons serve it */
  servedBy: ReadonlyArray<'coordinator' | 'node'>
  /**
   * When the protocol's answer can be read without knowing more than its response schema: true if `response` (the
   * bytes the server sent) refuses the request. Without it, any answer counts (the server may answer a valid-
   * looking request in earnest, and stored data is checked separately).
   */
  isRefusal?: (response: Uint8Array) => boolean
}

/** Reads the first length-prefixed frame of `bytes` (undefined if there is none) */
function firstFrame (bytes: Uint8Array): Uint8Array | undefined {
  let length = 0
  let shift = 1
  for (let i = 0; i < Math.min(bytes.byteLength, 8); i++) {
    length += (bytes[i] & 0x7f) * shift
    shift *= 0x80
    if ((bytes[i] & 0x80) === 0) return bytes.byteLength >= i + 1 + length ? bytes.subarray(i + 1, i + 1 + length) : undefined
  }
  return undefined
}

/** A response frame that carries a non-empty stable error name in `field` (our request/response protocols) */
function refusedWith (decode: (frame: Uint8Array) => { error: string }): (response: Uint8Array) => boolean {
  return (response) => {
    const f = firstFrame(response)
    return f != null && decode(f).error !== ''
  }
}

/** Every /collective/ protocol our daemons serve; the fuzz test fails when a daemon advertises one missing here. */
export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  {
    protocol: CHUNK_PROTOCOL,
    servedBy: ['node'],
    maxMessageBytes: CHUNK_PROTOCOL_LIMITS.maxMessageBytes,
    maxInboundStreams: CHUNK_PROTOCOL_LIMITS.maxInboundStreams,
    // ChunkRequest: op, cid, capability, data
    fields: [{ field: 1, wireType: 0 }, { field: 2, wireType: 2 }, { field: 3, wireType: 2 }, { field: 15, wireType: 2 }]
  },
  {
    protocol: NODE_PROTOCOL,
    servedBy: ['coordinator'],
    maxMessageBytes: NODE_PROTOCOL_LIMITS.maxMessageBytes,
    maxInboundStreams: 32,
    // NodeReport: capacity_bytes, used_bytes, chunk_count, addrs
    fields: [{ field: 1, wireType: 0 }, { field: 2, wireType: 0 }, { field: 3, wireType: 0 }, { field: 4, wireType: 2 }],
    // The fuzzer is certified as a client: a report from it must never register it as a storage node.
    isRefusal: (response) => {
      const f = firstFrame(response)
      return f != null && !NodeReportResponse.decode(f).accepted
    }
  },
  {
    // Standard Kademlia messages (@libp2p/kad-dht) on our private protocol ID; its limits are kad-dht's defaults.
    protocol: KAD_PROTOCOL,
    servedBy: ['coordinator', 'node'],
    maxMessageBytes: 4 * 1024 * 1024,
    maxInboundStreams: 32,
    // Message: type, key, record, closerPeers, providerPeers, clusterLevelRaw
    fields: [{ field: 1, wireType: 0 }, { field: 2, wireType: 2 }, { field: 3, wireType: 2 }, { field: 8, wireType: 2 }, { field: 9, wireType: 2 }, { field: 10, wireType: 0 }]
  },
  {
    protocol: SWIM_PROTOCOL,
    servedBy: ['coordinator', 'node'],
    maxMessageBytes: SWIM_PROTOCOL_LIMITS.maxMessageBytes,
    maxInboundStreams: 32,
    // SwimRequest: kind, target, timeout_ms, lamport, updates
    fields: [{ field: 1, wireType: 0 }, { field: 2, wireType: 2 }, { field: 3, wireType: 0 }, { field: 4, wireType: 0 }, { field: 5, wireType: 2 }],
    // The fuzzer is certified as a client, and clients take no part in membership: every answer is a refusal.
    isRefusal: refusedWith(f => SwimResponse.decode(f))
  },
  {
    protocol: SYNC_PROTOCOL,
    servedBy: ['coordinator', 'node'],
    maxMessageBytes: SYNC_PROTOCOL_LIMITS.maxMessageBytes,
    maxInboundStreams: 4,
    // SyncRequest: after, digest, last, records, lamport
    fields: [{ field: 1, wireType: 2 }, { field: 2, wireType: 2 }, { field: 3, wireType: 0 }, { field: 4, wireType: 2 }, { field: 5, wireType: 0 }],
    isRefusal: refusedWith(f => SyncResponse.decode(f))
  },
  {
    // Metadata operations on DataStores: a certified client may ask, and is answered (or refused) by its rights.
    protocol: META_PROTOCOL,
    servedBy: ['coordinator'],
    maxMessageBytes: META_PROTOCOL_LIMITS.maxMessageBytes,
    maxInboundStreams: 32,
    // MetaRequest: op, path, destination, parents, recursive, mode, after, limit, write_id, chunks, subject, rights
    fields: [{ field: 1, wireType: 0 }, { field: 2, wireType: 2 }, { field: 3, wireType: 2 }, { field: 4, wireType: 0 }, { field: 5, wireType: 0 }, { field: 6, wireType: 0 }, { field: 7, wireType: 2 }, { field: 8, wireType: 0 }, { field: 12, wireType: 2 }, { field: 13, wireType: 2 }, { field: 18, wireType: 2 }, { field: 19, wireType: 2 }]
  }
]
