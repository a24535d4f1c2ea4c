import { isMultiaddr } from '@multiformats/multiaddr'
import { ChunkOp, ChunkStatus } from '../gen/chunk.js'
import { ProtocolError, RequestTimeoutError } from '../net/errors.js'
import { assertChunkCid, chunkDigest, equalBytes } from '../storage/chunking.js'
import { ChunkNotFoundError, ChunkVerificationError } from '../storage/errors.js'
import {
  CHUNK_PROTOCOL,
  CHUNK_PROTOCOL_LIMITS,
  CHUNK_STREAM_IDLE_MS,
  ChunkAccessDeniedError,
  ChunkRejectedError,
  NodeFullError,
  RemoteChunkError
} from './protocol.js'
import { ChunkSession, ChunkStreamClosedError } from './session.js'
import { combineSignals } from '../util/signals.js'
import { releaseBytes } from '../util/lent-bytes.js'
import { chunkFrameBuffers } from './frame-reader.js'
import type { ChunkAnswer } from './session.js'
import type { BufferPool } from '../util/buffer-pool.js'
import type { ChunkOperation } from './protocol.js'
import type { AbortOptions, ComponentLogger, Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface ChunkClientInit {
  /** How long one request may take once it has its slot, dial included (default 30 s) */
  timeoutMs?: number
  /**
   * Requests in flight to one peer; more wait in line for a slot (default and most: what the streams can carry,
   * streamsPerPeer × 4)
   */
  maxConcurrentPerPeer?: number
  /** Streams kept open to one peer, each carrying up to 4 requests at a time (default 1, at most 2) */
  streamsPerPeer?: number
  /** How long a stream with nothing in flight stays open for the next request (default 30 s) */
  idleMs?: number
}

/**
 * Supplies the capability for a request that was not given one: a coordinator signs its own (selfIssued in
 * src/permissions/capability.ts); a client daemon has no source and passes the tokens the owning coordinator
 * handed out with each call.
 */
export type CapabilitySource = (op: ChunkOperation, cid: CID) => Promise<Uint8Array>

export interface ChunkClientComponents {
  host: Libp2p
  logger: ComponentLogger
  capabilities?: CapabilitySource
  /** Lends the buffers chunks are received into (default: a pool of the client's own, for frames of the largest chunk) */
  receiveBuffers?: BufferPool
}

export interface ChunkRequestOptions extends AbortOptions {
  /** The capability to present (capability.proto); default: one from the client's CapabilitySource */
  capability?: Uint8Array
}

/** A storage node: its peer ID (addresses from the peer store) or addresses ending in /p2p/<peer id> */
export type ChunkPeer = PeerId | Multiaddr | Multiaddr[]

export interface ChunkPresence {
  present: boolean
  /** Size in bytes of the stored chunk; 0 when absent */
  size: number
}

function peerKey (peer: ChunkPeer): string {
  const addrs = Array.isArray(peer) ? peer : isMultiaddr(peer) ? [peer] : undefined
  if (addrs == null) return (peer as PeerId).toString()
  for (const addr of addrs) {
    const id = addr.getComponents().filter(c => c.name === 'p2p').pop()?.value
    if (id != null) return id
  }
  return addrs.map(String).join(' ')
}

const WIRE_OPS: Record<ChunkOperation, ChunkOp> = { put: ChunkOp.PUT, get: ChunkOp.GET, has: ChunkOp.HAS, delete: ChunkOp.DELETE }

interface PeerLine {
  active: number
  waiting: Array<{ grant: () => void }>
  /** An exchange with this peer has finished since the line formed: its side of the connection is set up */
  warmed: boolean
}

/**
 * Bounds the requests in flight per peer: a slot is taken before the stream opens and given back when the
 * exchange ends, and callers beyond the bound wait in line, first come first served. Idle peers hold no state.
 *
 * A peer we hold no connection to gets one request at a time until one exchange has finished. The requests would
 * otherwise open their streams the moment our side of a new connection is up, before the remote has finished
 * setting up its side; yamux lets only 10 streams arrive that early and kills the whole connection beyond that
 * (MaxEarlyStreamsError), failing every request on it.
 */
class PerPeerSlots {
  private readonly limit: number
  private readonly connected: (key: string) => boolean
  private readonly peers = new Map<string, PeerLine>()

  constructor (limit: number, connected: (key: string) => boolean) {
    this.limit = limit
    this.connected = connected
  }

  async acquire (key: string, signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted()
    let line = this.peers.get(key)
    if (line == null) {
      line = { active: 0, waiting: [], warmed: this.connected(key) }
      this.peers.set(key, line)
    }
    const entry = line
    // nobody overtakes those already waiting
    if (entry.waiting.length === 0 && entry.active < this.limitOf(entry)) {
      entry.active++
      return this.releaser(key, entry)
    }
    return await new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort)
          resolve(this.releaser(key, entry))
        }
      }
      const onAbort = (): void => {
        const i = entry.waiting.indexOf(waiter)
        if (i >= 0) entry.waiting.splice(i, 1)
        this.admit(key, entry)
        reject(signal.reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      entry.waiting.push(waiter)
    })
  }

  private limitOf (entry: PeerLine): number {
    return entry.warmed ? this.limit : 1
  }

  private releaser (key: string, entry: PeerLine): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      entry.active--
      entry.warmed = true
      this.admit(key, entry)
    }
  }

  /** Lets waiters in while there is room, and forgets a peer with nothing in flight or waiting */
  private admit (key: string, entry: PeerLine): void {
    while (entry.waiting.length > 0 && entry.active < this.limitOf(entry)) {
      entry.active++
      entry.waiting.shift()?.grant()
    }
    if (entry.active === 0 && entry.waiting.length === 0 && this.peers.get(key) === entry) this.peers.delete(key)
  }

  /** Requests in flight and waiting for one peer */
  load (key: string): number {
    const line = this.peers.get(key)
    return line == null ? 0 : line.active + line.waiting.length
  }

  /** Requests in flight and waiting, per peer (for status pages and tests) */
  snapshot (): Record<string, { active: number, waiting: number }> {
    return Object.fromEntries([...this.peers].map(([k, p]) => [k, { active: p.active, waiting: p.waiting.length }]))
  }
}

/**
 * The caller's side of `/collective/chunk/1.1.0`: put, get, has and delete of chunks on storage nodes, over a
 * few long-lived streams per node that each carry several requests at a time. Every chunk read is verified
 * against its CID here, whatever the node claims, so a corrupt or lying replica is detected by the reader and
 * can be failed over.
 */
export class ChunkClient {
  private readonly components: ChunkClientComponents
  private readonly log: Logger
  private readonly timeoutMs: number
  private readonly idleMs: number
  private readonly streamsPerPeer: number
  private readonly slots: PerPeerSlots
  private readonly buffers: BufferPool
  private readonly sessions = new Map<string, ChunkSession[]>()
  private controller = new AbortController()

  constructor (components: ChunkClientComponents, init: ChunkClientInit = {}) {
    this.components = components
    this.timeoutMs = init.timeoutMs ?? CHUNK_PROTOCOL_LIMITS.timeoutMs
    this.idleMs = init.idleMs ?? CHUNK_STREAM_IDLE_MS
    const { maxOutboundStreams, maxRequestsPerStream } = CHUNK_PROTOCOL_LIMITS
    this.streamsPerPeer = Math.min(maxOutboundStreams, Math.max(1, init.streamsPerPeer ?? 1))
    // Never more requests at once than the streams can carry: a node reads no frame beyond that.
    const carried = this.streamsPerPeer * maxRequestsPerStream
    const limit = Math.min(carried, Math.max(1, init.maxConcurrentPerPeer ?? carried))
    this.slots = new PerPeerSlots(limit, key => this.isConnected(key))
    this.buffers = components.receiveBuffers ?? chunkFrameBuffers()
    this.log = components.logger.forComponent('collective:chunks:client')
  }

  async start (): Promise<void> {
    if (this.controller.signal.aborted) this.controller = new AbortController()
  }

  /** Aborts every request in flight or waiting for a slot, and closes every stream */
  async stop (): Promise<void> {
    this.controller.abort(new Error('the chunk client is stopping'))
    for (const pool of [...this.sessions.values()]) for (const session of pool) session.abort()
    this.sessions.clear()
    this.buffers.clear()
  }

  /**
   * Stores a chunk on `peer`. The node verifies the bytes against the CID before keeping them; storing a chunk
   * it already holds succeeds.
   *
   * @throws ChunkRejectedError, NodeFullError, ChunkAccessDeniedError, RemoteChunkError, RequestTimeoutError
   */
  async put (peer: ChunkPeer, cid: CID, bytes: Uint8Array | Uint8ArrayList, options: ChunkRequestOptions = {}): Promise<void> {
    const res = await this.exchange(peer, 'put', cid, bytes, options)
    releaseBytes(res.data)
    this.assertOk(res, 'put', cid)
  }

  /**
   * Reads a chunk from `peer` and checks that it hashes to `cid`. The bytes usually come in one buffer lent from the
   * client's pool (LentBytes): a caller that knows where every view of them went gives it back with
   * `releaseBytes()` once done; otherwise the garbage collector takes it.
   *
   * @throws ChunkNotFoundError, ChunkVerificationError, ChunkAccessDeniedError, RemoteChunkError, RequestTimeoutError
   */
  async get (peer: ChunkPeer, cid: CID, options: ChunkRequestOptions = {}): Promise<Uint8ArrayList> {
    // fail before the network on a CID no bytes could be verified against
    assertChunkCid(cid)
    const res = await this.exchange(peer, 'get', cid, undefined, options)
    const data = res.data
    if (res.status !== ChunkStatus.OK) releaseBytes(data)
    this.assertOk(res, 'get', cid)
    // On the event loop, piece by piece: a hashing thread would need the pieces copied into a buffer it can take,
    // and that copy costs the event loop about what the hash does (measured: gets 9% slower, 12-17 MB more RSS)
    if (!equalBytes(chunkDigest(cid.multihash.code, data), cid.multihash.digest)) {
      releaseBytes(data)
      throw new ChunkVerificationError(`${peerKey(peer)} returned ${data.byteLength} bytes for chunk ${cid} that do not hash to it`)
    }
    return data
  }

  /**
   * Whether `peer` holds the chunk, and its size there.
   *
   * @throws ChunkRejectedError, ChunkAccessDeniedError, RemoteChunkError, RequestTimeoutError
   */
  async has (peer: ChunkPeer, cid: CID, options: ChunkRequestOptions = {}): Promise<ChunkPresence> {
    const res = await this.exchange(peer, 'has', cid, undefined, options)
    releaseBytes(res.data)
    if (res.status === ChunkStatus.NOT_FOUND) return { present: false, size: 0 }
    this.assertOk(res, 'has', cid)
    return { present: true, size: res.size }
  }

  /**
   * Removes a chunk from `peer`; removing a chunk it does not hold succeeds.
   *
   * @throws ChunkRejectedError, ChunkAccessDeniedError, RemoteChunkError, RequestTimeoutError
   */
  async delete (peer: ChunkPeer, cid: CID, options: ChunkRequestOptions = {}): Promise<void> {
    const res = await this.exchange(peer, 'delete', cid, undefined, options)
    releaseBytes(res.data)
    this.assertOk(res, 'delete', cid)
  }

  private isConnected (key: string): boolean {
    return this.components.host.getConnections().some(c => c.status === 'open' && c.remotePeer.toString() === key)
  }

  /** Requests in flight and waiting, per peer */
  inflight (): Record<string, { active: number, waiting: number }> {
    return this.slots.snapshot()
  }

  /** Requests in flight to and waiting for `peer` (a peer ID string) */
  load (peer: string): number {
    return this.slots.load(peer)
  }

  private assertOk (res: ChunkAnswer, op: string, cid: CID): void {
    const reason = res.error !== '' ? res.error : res.status
    const message = `${op} of chunk ${cid} refused by the node - ${reason}${res.message !== '' ? `: ${res.message}` : ''}`
    switch (res.status) {
      case ChunkStatus.OK: return
      case ChunkStatus.NOT_FOUND: throw new ChunkNotFoundError(message)
      case ChunkStatus.INVALID: throw new ChunkRejectedError(reason, message)
      case ChunkStatus.FULL: throw new NodeFullError(reason, message, res.availableBytes)
      case ChunkStatus.DENIED: throw new ChunkAccessDeniedError(reason, message)
      case ChunkStatus.ERROR: throw new RemoteChunkError(reason, message)
      default: throw new ProtocolError(`${CHUNK_PROTOCOL}: response to ${op} of chunk ${cid} carries no known status`)
    }
  }

  /** One request on one of the peer's long-lived streams, within a per-peer slot and the request timeout */
  private async exchange (peer: ChunkPeer, op: ChunkOperation, cid: CID, data: Uint8Array | Uint8ArrayList | undefined, options: ChunkRequestOptions): Promise<ChunkAnswer> {
    const key = peerKey(peer)
    const capability = options.capability ?? await this.components.capabilities?.(op, cid)
    // one signal per request, so waiting in line never piles listeners onto the client's long-lived one
    const signal = combineSignals(options.signal, this.controller.signal)
    let release: (() => void) | undefined
    try {
      release = await this.slots.acquire(key, signal)
      const req = { op: WIRE_OPS[op], cid: cid.bytes as Uint8Array<ArrayBuffer>, capability: capability as Uint8Array<ArrayBuffer> | undefined }
      try {
        return await this.sessionFor(peer, key).request(req, data, signal)
      } catch (err: any) {
        // A stream that ended before the request left it says nothing about the node: one more try, on a new one.
        if (!(err instanceof ChunkStreamClosedError && err.unsent)) throw err
        return await this.sessionFor(peer, key).request(req, data, signal)
      }
    } catch (err: any) {
      this.log('%s of %c on %s failed - %s: %s', op, cid, key, err.name, err.message)
      throw err
    } finally {
      release?.()
      signal.clear()
    }
  }

  /**
   * A stream to `peer` with room for one more request: an idle one first, then a new one while the peer has
   * fewer than `streamsPerPeer`, then the least loaded. The per-peer slots keep the requests in flight within
   * what the peer's streams can carry.
   */
  private sessionFor (peer: ChunkPeer, key: string): ChunkSession {
    const pool = this.sessions.get(key) ?? []
    const open = pool.filter(s => s.hasRoom())
    const idle = open.find(s => s.inFlight === 0)
    if (idle != null) return idle
    if (pool.length < this.streamsPerPeer || open.length === 0) {
      const session = new ChunkSession(async () => await this.openStream(peer), {
        timeoutMs: this.timeoutMs,
        maxRequests: CHUNK_PROTOCOL_LIMITS.maxRequestsPerStream,
        idleMs: this.idleMs,
        buffers: this.buffers
      }, this.log, ended => {
        const left = (this.sessions.get(key) ?? []).filter(s => s !== ended)
        if (left.length > 0) this.sessions.set(key, left)
        else this.sessions.delete(key)
      })
      this.sessions.set(key, [...pool, session])
      return session
    }
    return open.reduce((a, b) => b.inFlight < a.inFlight ? b : a)
  }

  private async openStream (peer: ChunkPeer): Promise<Stream> {
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const signal = combineSignals(this.controller.signal, timeout)
    try {
      return await this.components.host.dialProtocol(peer, CHUNK_PROTOCOL, {
        signal,
        // The first request goes out with the protocol proposal: it costs one round trip, not two. A peer not
        // serving the protocol still fails it with UnsupportedProtocolError, only at the read instead of the dial.
        negotiateFully: false,
        maxOutboundStreams: CHUNK_PROTOCOL_LIMITS.maxOutboundStreams
      })
    } catch (err) {
      if (timeout.aborted && !this.controller.signal.aborted) throw new RequestTimeoutError(`${CHUNK_PROTOCOL}: opening a stream to ${peerKey(peer)} timed out after ${this.timeoutMs} ms`)
      throw err
    } finally {
      signal.clear()
    }
  }
}
