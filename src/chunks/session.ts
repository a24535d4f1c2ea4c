import { Uint8ArrayList } from 'uint8arraylist'
import { ChunkRequest, ChunkResponse } from '../gen/chunk.js'
import { ProtocolError, RequestTimeoutError } from '../net/errors.js'
import { releaseBytes } from '../util/lent-bytes.js'
import { chunkFrameReader, decodeChunkFrame } from './frame-reader.js'
import { CHUNK_FRAME_BUFFER_BYTES, CHUNK_PROTOCOL, frameHead } from './protocol.js'
import type { BufferPool } from '../util/buffer-pool.js'
import type { Logger, Stream } from '@libp2p/interface'

/** What a request frame carries besides its id and chunk bytes */
export type ChunkRequestHead = Pick<ChunkRequest, 'op' | 'cid'> & Partial<Pick<ChunkRequest, 'capability'>>

/**
 * A node's answer. Its chunk bytes (if any) are LentBytes when they arrived in a buffer lent from the session's
 * pool: their last holder may `releaseBytes()` them.
 */
export type ChunkAnswer = Omit<ChunkResponse, 'data'> & { data: Uint8ArrayList }

/** The session's stream ended (closed, reset, or its peer went away) before this request was answered */
export class ChunkStreamClosedError extends Error {
  static name = 'ChunkStreamClosedError'
  name = 'ChunkStreamClosedError'
  /** The request never left: it may be sent again on another stream */
  readonly unsent: boolean
  constructor (message: string, options: { unsent?: boolean } = {}) {
    super(message)
    this.unsent = options.unsent ?? false
  }
}

export interface ChunkSessionInit {
  /** How long one request may wait for its answer once its frame is handed to the stream */
  timeoutMs: number
  /** Requests unanswered at once; the node reads no further frame until one is answered */
  maxRequests: number
  /** Close the stream after this long with nothing in flight */
  idleMs: number
  /** Lends the buffers answers carrying chunks are received into */
  buffers: BufferPool
}

interface Pending {
  resolve: (res: ChunkAnswer) => void
  reject: (err: Error) => void
  timer: ReturnType<typeof setTimeout>
  /** The caller gave up (timeout or abort) but the node still owes the answer, which keeps the slot taken */
  abandoned: boolean
}

/**
 * One long-lived `/collective/chunk/1.1.0` stream to a node, carrying up to `maxRequests` requests at a time.
 * Answers come in any order and are matched by id. A request the caller abandons (timeout, abort) keeps its
 * slot until the node answers it, so the node never has more frames from us than it agreed to hold; a request
 * that times out retires the session (no new requests), and the stream is reset once only abandoned requests
 * are left on it. Any failure of the stream itself fails every request still on it.
 */
export class ChunkSession {
  private readonly init: ChunkSessionInit
  private readonly log: Logger
  private readonly opening: Promise<Stream>
  private readonly pending = new Map<number, Pending>()
  private stream?: Stream
  private nextId = 1
  private idleTimer?: ReturnType<typeof setTimeout>
  private retired = false
  private failure?: Error
  /** Told once, when the session can take no more requests */
  private readonly onEnd: (session: ChunkSession) => void

  constructor (open: () => Promise<Stream>, init: ChunkSessionInit, log: Logger, onEnd: (session: ChunkSession) => void) {
    this.init = init
    this.log = log
    this.onEnd = onEnd
    this.opening = open()
    this.opening.then(stream => { this.attach(stream) }, err => { this.fail(err) })
  }

  /** Requests sent and not yet answered, abandoned ones included: what the node may be holding for us */
  get inFlight (): number {
    return this.pending.size
  }

  /** Whether a new request may go out on this session now */
  hasRoom (): boolean {
    return !this.retired && this.failure == null && this.pending.size < this.init.maxRequests
  }

  /**
   * Sends one request and resolves with its answer. The caller must have checked `hasRoom()` synchronously
   * before calling.
   *
   * @throws RequestTimeoutError, ChunkStreamClosedError, ProtocolError, the caller's abort reason, or the error
   * that opening the stream failed with (e.g. UnsupportedProtocolError)
   */
  async request (req: ChunkRequestHead, data: Uint8Array | Uint8ArrayList | undefined, signal: AbortSignal): Promise<ChunkAnswer> {
    if (!this.hasRoom()) throw new ChunkStreamClosedError('the chunk stream takes no more requests', { unsent: true })
    const id = this.nextId
    this.nextId = (this.nextId % 0xffffffff) + 1
    clearTimeout(this.idleTimer)
    const answer = new Promise<ChunkAnswer>((resolve, reject) => {
      const timer = setTimeout(() => { this.timedOut(id) }, this.init.timeoutMs)
      this.pending.set(id, { resolve, reject, timer, abandoned: false })
    })
    // it may be settled (abort, timeout, stream failure) while the stream is still opening: awaited below
    answer.catch(() => {})
    let sent = false
    const onAbort = (): void => { this.giveUp(id, sent, signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      // Before it is sent, `answer` can only fail (the caller's abort, the timeout, the session failing): the
      // caller then stops waiting for the stream to open.
      const stream = this.stream ?? await Promise.race([this.opening, answer.then(async () => await this.opening)])
      signal.throwIfAborted()
      // The stream may have ended under us (its connection closed) before our reader heard of it.
      if (stream.writeStatus !== 'writable') this.fail(new ChunkStreamClosedError(`the chunk stream is ${stream.status}`, { unsent: true }))
      // a stream that failed meanwhile has already rejected `answer`
      if (this.failure == null) {
        this.send(stream, id, req, data)
        sent = true
      }
      return await answer
    } catch (err: any) {
      this.giveUp(id, sent, err)
      return await answer
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** Ends the session: requests still waiting fail with `err` (or ChunkStreamClosedError) and the stream is reset */
  abort (err: Error = new ChunkStreamClosedError('the chunk session was closed')): void {
    this.fail(err)
  }

  private send (stream: Stream, id: number, req: ChunkRequestHead, data: Uint8Array | Uint8ArrayList | undefined): void {
    const head = frameHead(ChunkRequest.encode({ ...req, id }), data?.byteLength ?? 0)
    // One send per frame keeps frames of concurrent requests from interleaving. The send buffer is bounded by
    // the requests in flight, so there is no need to wait for it to drain before the next one.
    stream.send(data == null || data.byteLength === 0 ? head : new Uint8ArrayList(head, data))
  }

  private attach (stream: Stream): void {
    if (this.failure != null) {
      stream.abort(this.failure)
      return
    }
    this.stream = stream
    // The node may answer every request in flight back to back, each with a whole chunk.
    const buffer = this.init.maxRequests * CHUNK_FRAME_BUFFER_BYTES
    if (stream.maxReadBufferLength < buffer) stream.maxReadBufferLength = buffer
    void this.readAnswers(stream, buffer)
    if (this.pending.size === 0) this.armIdle()
  }

  private async readAnswers (stream: Stream, buffer: number): Promise<void> {
    // Each answer is copied on arrival into one buffer, lent from the pool for a chunk: see FrameReader
    const reader = chunkFrameReader(stream, this.init.buffers, buffer)
    try {
      while (this.failure == null) {
        const res: ChunkAnswer = decodeChunkFrame(await reader.read(), bytes => ChunkResponse.decode(bytes))
        const entry = this.pending.get(res.id)
        if (entry == null) {
          releaseBytes(res.data)
          throw new ProtocolError(`${CHUNK_PROTOCOL}: answer to request ${res.id}, which is not in flight`)
        }
        this.pending.delete(res.id)
        clearTimeout(entry.timer)
        if (!entry.abandoned) entry.resolve(res)
        else releaseBytes(res.data)
        this.settled()
      }
    } catch (err: any) {
      if (err?.name === 'UnexpectedEOFError' || err?.name === 'StreamResetError' || err?.name === 'StreamAbortedError') {
        err = new ChunkStreamClosedError(`the chunk stream ended with ${this.pending.size} requests unanswered (${String(err.name)})`)
      }
      this.fail(err)
    } finally {
      reader.close()
    }
  }

  private timedOut (id: number): void {
    const entry = this.pending.get(id)
    if (entry == null) return
    if (!entry.abandoned) {
      entry.abandoned = true
      entry.reject(new RequestTimeoutError(`${CHUNK_PROTOCOL} request timed out after ${this.init.timeoutMs} ms`))
    }
    // a node this slow may be stuck: send it nothing more, and reset the stream once nobody waits on it
    this.retire()
    this.settled()
  }

  /**
   * The caller no longer waits for this answer. A request that went out keeps its slot until the node answers or
   * the stream ends; one that never left frees it at once, as the node owes nothing for it.
   */
  private giveUp (id: number, sent: boolean, reason: Error): void {
    const entry = this.pending.get(id)
    if (entry == null) return
    if (!entry.abandoned) entry.reject(reason)
    entry.abandoned = true
    if (sent) return
    this.pending.delete(id)
    clearTimeout(entry.timer)
    this.settled()
  }

  /** A request was answered: the session has room again, or nothing left and can close */
  private settled (): void {
    if (this.retired && [...this.pending.values()].every(p => p.abandoned)) {
      this.fail(new ChunkStreamClosedError('the chunk stream was retired'))
      return
    }
    if (this.pending.size === 0) this.armIdle()
  }

  private retire (): void {
    if (this.retired) return
    this.retired = true
    this.onEnd(this)
  }

  private armIdle (): void {
    clearTimeout(this.idleTimer)
    this.idleTimer = setTimeout(() => {
      if (this.pending.size > 0 || this.failure != null) return
      this.retire()
      this.failure = new ChunkStreamClosedError('the chunk stream was closed for being idle')
      this.stream?.close().catch(err => { this.stream?.abort(err) })
    }, this.init.idleMs)
    this.idleTimer.unref?.()
  }

  private fail (err: Error): void {
    if (this.failure != null) return
    this.failure = err
    clearTimeout(this.idleTimer)
    this.retire()
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer)
      if (!entry.abandoned) entry.reject(err)
    }
    if (this.pending.size > 0) this.log('chunk stream failed with %d requests in flight - %s: %s', this.pending.size, err.name, err.message)
    this.pending.clear()
    this.stream?.abort(err)
  }
}
