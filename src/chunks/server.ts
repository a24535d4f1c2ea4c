import { CID } from 'multiformats/cid'
import { Uint8ArrayList } from 'uint8arraylist'
import { ChunkOp, ChunkRequest, ChunkResponse, ChunkStatus } from '../gen/chunk.js'
import { RequestTimeoutError } from '../net/errors.js'
import { verifyCapability } from '../permissions/capability.js'
import { assertChunkCid } from '../storage/chunking.js'
import { ChunkNotFoundError, StorageError } from '../storage/errors.js'
import { KeyedMutex } from '../util/keyed-mutex.js'
import { releaseBytes } from '../util/lent-bytes.js'
import { Semaphore } from '../util/semaphore.js'
import { chunkFrameBuffers, chunkFrameReader, decodeChunkFrame } from './frame-reader.js'
import type { ReceivedFrame } from './frame-reader.js'
import type { BufferPool } from '../util/buffer-pool.js'
import {
  CHUNK_FRAME_BUFFER_BYTES,
  CHUNK_PROTOCOL,
  CHUNK_PROTOCOL_LIMITS,
  CHUNK_ROLE_POLICY,
  InvalidChunkRequestError,
  OperationNotAllowedError,
  UnknownPeerError,
  frameHead
} from './protocol.js'
import { combineSignals } from '../util/signals.js'
import type { ClearableSignal } from '../util/signals.js'
import type { ChunkOperation, ChunkResult } from './protocol.js'
import type { Role, VerifiedIdentity } from '../identity/index.js'
import type { PeerIdentities } from '../net/peer-identities.js'
import type { VerifiedCapability } from '../permissions/capability.js'
import type { ChunkOwners } from '../storage/chunk-owners.js'
import type { ChunkStore } from '../storage/chunk-store.js'
import type { ComponentLogger, Connection, Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'

export interface ChunkServerInit {
  /** How long one request may take, from its frame read to its answer written (default 30 s) */
  timeoutMs?: number
  /** How long a stream may go without a complete new request frame before the node closes it (default 60 s) */
  idleTimeoutMs?: number
  /** Concurrent inbound 1.1.0 streams per connection; more are reset by the muxer (default 2) */
  maxInboundStreams?: number
  /** Roles allowed per operation, over CHUNK_ROLE_POLICY (default: that policy) */
  policy?: Partial<Record<ChunkOperation, readonly Role[]>>
  /**
   * Called once for every request that was read and decoded, when it is done: its operation, outcome, chunk
   * bytes moved (received for PUT, sent for GET, else 0) and duration in seconds. Metrics hang off this.
   */
  onOperation?: (op: ChunkOperation, result: ChunkResult, bytes: number, seconds: number) => void
  /** Told about every failure of the node's own (disk errors and the like), not about refusals of requests */
  onError?: (op: ChunkOperation, cid: CID, error: Error) => void
}

export interface ChunkServerComponents {
  host: Libp2p
  identities: PeerIdentities
  store: ChunkStore
  /** Which coordinators each chunk is kept for; capabilities count only from those (see ChunkOwners) */
  owners: ChunkOwners
  logger: ComponentLogger
  /** Lends the buffers chunks are received into (default: a pool of the server's own, for frames of the largest chunk) */
  receiveBuffers?: BufferPool
}

/** A request as read: its chunk bytes (for PUT) are LentBytes when they arrived in a lent buffer */
type ChunkRequestFrame = Omit<ChunkRequest, 'data'> & { data: Uint8ArrayList }

const OPERATIONS: Partial<Record<ChunkOp, ChunkOperation>> = {
  [ChunkOp.PUT]: 'put',
  [ChunkOp.GET]: 'get',
  [ChunkOp.HAS]: 'has',
  [ChunkOp.DELETE]: 'delete'
}

const RESULTS: Record<ChunkStatus, ChunkResult> = {
  [ChunkStatus.STATUS_UNSPECIFIED]: 'error',
  [ChunkStatus.OK]: 'ok',
  [ChunkStatus.NOT_FOUND]: 'not_found',
  [ChunkStatus.INVALID]: 'invalid',
  [ChunkStatus.FULL]: 'full',
  [ChunkStatus.DENIED]: 'denied',
  [ChunkStatus.ERROR]: 'error'
}

/** Storage failures that say the request was wrong, not the node */
const INVALID_ERRORS = new Set(['ChunkVerificationError', 'ChunkTooLargeError', 'UnsupportedCidError', 'InvalidChunkRequestError'])

interface Outcome {
  response: Partial<ChunkResponse>
  /** GET: the chunk as the file reads returned it, sent after the response header */
  data?: Uint8ArrayList
}

async function send (stream: Stream, data: Uint8Array | Uint8ArrayList, signal: AbortSignal): Promise<void> {
  if (!stream.send(data)) await stream.onDrain({ signal })
}

/**
 * A storage node's side of `/collective/chunk/1.1.0`: many requests per stream, up to 4 at once, each answered
 * from the node's ChunkStore as soon as it is done. The caller's identity is the certificate it proved in the connection handshake; nothing in the
 * request is trusted about who sends it. A GET answer is the file's reads as they came off the disk, sent in one
 * piece behind the response header: the chunk is not copied on its way out, and not re-verified either (the
 * reader verifies every chunk against its CID, which also catches a disk that rotted under us).
 */
export class ChunkServer {
  private readonly components: ChunkServerComponents
  private readonly init: ChunkServerInit
  private readonly log: Logger
  private readonly timeoutMs: number
  private readonly idleTimeoutMs: number
  private readonly policy: Record<ChunkOperation, readonly Role[]>
  private readonly inflight = new Set<Promise<void>>()
  /**
   * One owner change at a time per chunk, each with the store operation it goes with: a refused put takes back
   * only its own owner row, never a concurrent put's, and a last owner's delete cannot remove bytes that a
   * concurrent put of the same chunk has just been told are stored
   */
  private readonly ownership = new KeyedMutex()
  private readonly buffers: BufferPool
  private controller = new AbortController()
  private started = false

  constructor (components: ChunkServerComponents, init: ChunkServerInit = {}) {
    this.components = components
    this.init = init
    this.timeoutMs = init.timeoutMs ?? CHUNK_PROTOCOL_LIMITS.timeoutMs
    this.idleTimeoutMs = init.idleTimeoutMs ?? CHUNK_PROTOCOL_LIMITS.idleTimeoutMs
    this.policy = { ...CHUNK_ROLE_POLICY, ...init.policy }
    this.log = components.logger.forComponent('collective:chunks:server')
    this.buffers = components.receiveBuffers ?? chunkFrameBuffers()
  }

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    if (this.started) return
    this.controller = new AbortController()
    await this.components.host.handle(CHUNK_PROTOCOL, (stream, connection) => {
      const done = this.onStream(stream, connection)
      this.inflight.add(done)
      void done.finally(() => this.inflight.delete(done))
    }, {
      maxInboundStreams: this.init.maxInboundStreams ?? CHUNK_PROTOCOL_LIMITS.maxInboundStreams,
      maxOutboundStreams: CHUNK_PROTOCOL_LIMITS.maxOutboundStreams
    })
    this.started = true
  }

  /** Stops taking streams and aborts the ones in flight, so the store can be closed right after */
  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.components.host.unhandle(CHUNK_PROTOCOL)
    this.controller.abort(new Error('the chunk server is stopping'))
    await Promise.all([...this.inflight])
    this.buffers.clear()
  }

  /**
   * Checks that `identity` may perform `op` on `cid`: its certified role must allow the operation, and the request
   * must carry a capability (capability.proto) naming this node or any node, the caller as holder, the operation
   * and the chunk, unexpired and signed by its issuer. For GET, HAS and DELETE the issuer must also be a
   * coordinator the chunk is kept for (ChunkOwners); a PUT makes its issuer one, and needs the chunk's bytes to.
   *
   * @throws UnknownPeerError, OperationNotAllowedError, the Capability*Error family (src/permissions/errors.ts);
   *   UntrustedCapabilityIssuerError when the issuer owns no copy of the chunk here
   */
  async authorize (identity: VerifiedIdentity | undefined, op: ChunkOperation, cid: CID, capability?: Uint8Array): Promise<VerifiedCapability> {
    if (identity == null) {
      throw new UnknownPeerError(`the caller has no verified identity on this node; ${op} of ${cid} refused`)
    }
    if (!this.policy[op].includes(identity.role)) {
      throw new OperationNotAllowedError(`${identity.name} is certified as ${identity.role}; a ${identity.role} may not ${op} chunks here`)
    }
    const chunk = cid.toString()
    return await verifyCapability(capability ?? new Uint8Array(0), {
      cid,
      op,
      node: this.components.host.peerId,
      holder: identity.peerId,
      trustedIssuers: op === 'put' ? () => true : issuer => this.components.owners.has(chunk, issuer)
    })
  }

  /**
   * Serves one stream: reads request frames and answers each as it finishes, up to `maxRequestsPerStream` at
   * once. The next frame is read only when a request slot is free (a slot is held until its answer has left), and
   * a caller that sends more than a stream's worth of frames beyond those overflows the read buffer and has the
   * stream reset: an honest caller, which waits for answers, never comes close. A stream idle for
   * `idleTimeoutMs` is closed once its requests are answered.
   */
  private async onStream (stream: Stream, connection: Connection): Promise<void> {
    const maxRequests = CHUNK_PROTOCOL_LIMITS.maxRequestsPerStream
    const buffer = maxRequests * CHUNK_FRAME_BUFFER_BYTES
    // The stream's own buffer (used before our reader attaches) defaults to a few bytes less than a full frame.
    if (stream.maxReadBufferLength < buffer) stream.maxReadBufferLength = buffer
    // Each request is copied on arrival into one buffer, lent from the pool for a chunk: see FrameReader
    const reader = chunkFrameReader(stream, this.buffers, buffer)
    const slots = new Semaphore(maxRequests)
    const running = new Set<Promise<void>>()
    const stopping = this.controller.signal
    try {
      for (;;) {
        await slots.acquire(stopping)
        const idle = AbortSignal.timeout(this.idleTimeoutMs)
        const reading = combineSignals(stopping, idle)
        let frame: ReceivedFrame
        try {
          frame = await reader.read({ signal: reading })
        } catch (err: any) {
          // the caller closed its end between requests (the usual end of a stream), or went quiet
          if (err?.name === 'UnexpectedEOFError' && stream.remoteWriteStatus !== 'writable') break
          if (idle.aborted && !stopping.aborted) break
          throw err
        } finally {
          reading.clear()
        }
        // A frame that is not a ChunkRequest says the caller is broken: nothing more on this stream is trusted.
        // The chunk's bytes go to the disk from the buffer they arrived in.
        const req: ChunkRequestFrame = decodeChunkFrame(frame, bytes => ChunkRequest.decode(bytes))
        const task = this.answer(stream, req, connection.remotePeer).finally(() => {
          slots.release()
          running.delete(task)
        })
        running.add(task)
      }
      await Promise.all(running)
      const closing = combineSignals(stopping, AbortSignal.timeout(this.timeoutMs))
      await stream.close({ signal: closing }).finally(() => { closing.clear() })
    } catch (err: any) {
      // An oversized or malformed frame lands here too: the caller gets a reset stream, never a response.
      this.log('chunk stream from %p failed - %s: %s', connection.remotePeer, err.name, err.message)
      stream.abort(err)
      await Promise.allSettled(running)
    } finally {
      reader.close()
    }
  }

  /** Serves one request and writes its answer, within the request timeout */
  private async answer (stream: Stream, req: ChunkRequestFrame, remotePeer: PeerId): Promise<void> {
    const started = performance.now()
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const signal = combineSignals(timeout, this.controller.signal)
    let sending: ClearableSignal | undefined
    const op = OPERATIONS[req.op]
    let result: ChunkResult = 'error'
    let bytes = op === 'put' ? req.data.byteLength : 0
    try {
      let outcome: Outcome
      try {
        outcome = await this.serve(req, op, remotePeer, signal)
      } catch (err: any) {
        if (!timeout.aborted || this.controller.signal.aborted) throw err
        outcome = this.refusal(ChunkStatus.ERROR, new RequestTimeoutError(`${CHUNK_PROTOCOL} request took longer than ${this.timeoutMs} ms`))
      }
      // Other requests share the stream, so a slow one is answered rather than reset: its timeout, or its result
      // when it finished anyway past the limit (a write the disk was slow to take). The answer gets its own time.
      sending = timeout.aborted ? combineSignals(AbortSignal.timeout(this.timeoutMs), this.controller.signal) : signal
      const { response, data } = outcome
      result = RESULTS[response.status ?? ChunkStatus.STATUS_UNSPECIFIED]
      const head = frameHead(ChunkResponse.encode({ ...response, id: req.id }), data?.byteLength ?? 0)
      if (data == null || data.byteLength === 0) {
        await send(stream, head, sending)
      } else {
        // one send for the whole frame: the muxer cuts it into as few frames and Noise messages as it can, and
        // frames of concurrent answers cannot interleave
        data.prepend(head)
        await send(stream, data, sending)
        bytes = data.byteLength - head.byteLength
      }
    } catch (err: any) {
      // The stream itself failed (or the node is stopping): the stream's loop resets it.
      this.log('%s from %p failed - %s: %s', op ?? 'request', remotePeer, err.name, err.message)
      result = 'error'
      stream.abort(err)
    } finally {
      // the put's bytes are on disk (or refused): nothing refers to them any more
      releaseBytes(req.data)
      signal.clear()
      sending?.clear()
      if (op != null) this.report(op, result, bytes, (performance.now() - started) / 1000)
    }
  }

  private async serve (req: ChunkRequestFrame, op: ChunkOperation | undefined, remotePeer: PeerId, signal: AbortSignal): Promise<Outcome> {
    let cid: CID
    try {
      if (op == null) throw new InvalidChunkRequestError(`unknown operation ${req.op}`)
      if (op !== 'put' && req.data.byteLength > 0) throw new InvalidChunkRequestError(`a ${op} request carries no data`)
      try {
        cid = CID.decode(req.cid)
      } catch (err: any) {
        throw new InvalidChunkRequestError(`the request's CID does not parse: ${err.message}`)
      }
      assertChunkCid(cid)
    } catch (err: any) {
      return this.refusal(ChunkStatus.INVALID, err)
    }

    const identity = this.components.identities.get(remotePeer)
    let issuer: string
    try {
      issuer = (await this.authorize(identity, op, cid, req.capability)).issuer
    } catch (err: any) {
      // To a coordinator this node keeps no copy for, the chunk is not here, whoever else stored it; and removing
      // what one does not hold succeeds.
      if (err.name === 'UntrustedCapabilityIssuerError') {
        if (op === 'delete') return { response: { status: ChunkStatus.OK } }
        return this.refusal(ChunkStatus.NOT_FOUND, new ChunkNotFoundError(`chunk ${cid.toString()} is not stored here for the coordinator that issued the capability`))
      }
      this.log('refused %s of %c to %s - %s: %s', op, cid, identity?.name ?? remotePeer.toString(), err.name, err.message)
      return this.refusal(ChunkStatus.DENIED, err)
    }

    const { store, owners } = this.components
    const chunk = cid.toString()
    try {
      switch (op) {
        case 'put': {
          await this.ownership.run(chunk, async () => {
            const owned = owners.has(chunk, issuer)
            try {
              // Owner once the bytes are known to hash to the CID (owning a chunk takes its bytes), and before they
              // are written: a crash between the two leaves an owner of nothing (a GET finds no chunk), never a
              // chunk nobody owns and nobody would delete.
              await store.put(cid, req.data, { signal, onVerified: () => { owners.add(chunk, issuer) } })
            } catch (err) {
              // A put refused after that (a full disk, a timeout) makes nobody an owner either: a caller that
              // records no copy here would never delete it.
              if (!owned) owners.remove(chunk, issuer)
              throw err
            }
          })
          this.log.trace('stored %c (%d bytes) for %s', cid, req.data.byteLength, identity?.name)
          return { response: { status: ChunkStatus.OK, size: req.data.byteLength, ...await this.capacity() } }
        }
        case 'get': {
          // Read whole before answering, so a chunk that vanishes mid-read is still a clean NOT_FOUND rather than
          // a frame cut short; the reads are kept as they are, not joined into one buffer.
          const data = new Uint8ArrayList()
          for await (const part of store.stream(cid, { signal })) data.append(part)
          return { response: { status: ChunkStatus.OK, size: data.byteLength }, data }
        }
        case 'has': {
          const size = await store.sizeOf(cid, { signal })
          return { response: { status: ChunkStatus.OK, size } }
        }
        case 'delete': {
          // Gone for this coordinator; the bytes stay while another still keeps the chunk here. Deleting what is
          // not there succeeds: the caller wanted it gone, and it is.
          await this.ownership.run(chunk, async () => {
            if (owners.remove(chunk, issuer) === 0) await store.delete(cid, { signal })
          })
          return { response: { status: ChunkStatus.OK } }
        }
      }
    } catch (err: any) {
      // a timed-out or stopping exchange is not the caller's fault and gets no answer: the stream is aborted
      if (signal.aborted) throw err
      if (err?.name === 'ChunkNotFoundError') return this.refusal(ChunkStatus.NOT_FOUND, err)
      if (INVALID_ERRORS.has(err?.name)) return this.refusal(ChunkStatus.INVALID, err)
      // the store reports a disk that filled up under a write as StoreFullError too
      if (err?.name === 'StoreFullError') {
        const refusal = this.refusal(ChunkStatus.FULL, err)
        refusal.response = { ...refusal.response, ...await this.capacity() }
        return refusal
      }
      this.log.error('%s of %c failed - %e', op, cid, err)
      try { this.init.onError?.(op, cid, err) } catch {}
      // storage errors explain themselves; anything else may carry local paths, which stay in our log
      return {
        response: {
          status: ChunkStatus.ERROR,
          error: err?.name ?? 'Error',
          message: err instanceof StorageError ? err.message : `the node failed to ${op} the chunk`
        }
      }
    }
  }

  private refusal (status: ChunkStatus, err: Error): Outcome {
    return { response: { status, error: err.name, message: err.message } }
  }

  /** What the node can still take, sent with PUT answers so writers steer away from nodes filling up */
  private async capacity (): Promise<Partial<ChunkResponse>> {
    try {
      const stats = await this.components.store.stats()
      return { capacityBytes: stats.capacityBytes, availableBytes: stats.availableBytes }
    } catch {
      return {}
    }
  }

  private report (op: ChunkOperation, result: ChunkResult, bytes: number, seconds: number): void {
    try {
      this.init.onOperation?.(op, result, bytes, seconds)
    } catch (err) {
      this.log.error('onOperation callback threw - %e', err)
    }
  }
}
