import { StreamBufferError } from '@libp2p/interface'
import { UnexpectedEOFError } from '@libp2p/utils'
import { ProtocolError } from '../net/errors.js'
import { Uint8ArrayList } from 'uint8arraylist'
import { BufferPool } from '../util/buffer-pool.js'
import { DIRECT_IO_ALIGNMENT, alignedMemory } from '../util/direct-io.js'
import { LentBytes } from '../util/lent-bytes.js'
import { dataFieldStart, splitDataField } from './frame.js'
import { CHUNK_FRAME_BUFFER_BYTES, CHUNK_PROTOCOL, CHUNK_PROTOCOL_LIMITS } from './protocol.js'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'

export interface FrameReaderInit {
  /** Longest frame accepted; a longer one fails the reader with ProtocolError */
  maxFrameBytes: number
  /** Bytes of complete frames that may wait to be read; beyond that the reader fails with StreamBufferError */
  maxBufferedBytes: number
  /** Frames at least this long are received into buffers from the pool (default 32 KiB); shorter ones into their own */
  pooledFromBytes?: number
  /** Names the protocol in errors */
  protocol: string
}

export interface FrameReaderComponents {
  /** Lends the buffers long frames are received into; each must hold maxFrameBytes + DIRECT_IO_ALIGNMENT */
  buffers: BufferPool
}

/** One length-prefixed frame, without its prefix */
export interface ReceivedFrame {
  bytes: Uint8Array
  /** True when `bytes` sit in a buffer lent from the pool: `release()` gives it back */
  lent: boolean
  /** Gives the buffer back (only the first call counts); nothing may read `bytes` or a view of them afterwards */
  release: () => void
}

/** Length prefixes are unsigned varints; ten bytes hold any 64-bit value */
const MAX_VARINT_BYTES = 10

/**
 * What a waiting frame counts against `maxBufferedBytes` besides its bytes: a flood of empty frames (a zero byte
 * each) would otherwise queue without limit
 */
const FRAME_OVERHEAD_BYTES = 1024

function noop (): void {}

/**
 * Reads the length-prefixed frames of a stream, copying each one's bytes as they arrive into one buffer: a lent
 * one for long frames, a new one of its own for short ones.
 *
 * Why: every network read and every decrypted Noise message is a new buffer, and while a frame's bytes wait in
 * them (a chunk is complete only after a few milliseconds) they outlive two young-generation collections; V8 then
 * moves them to the old generation, which only a full collection clears. A 500 MB read ran 6 or 7 full
 * collections that way, about a fifth of the reading daemon's CPU time, and its RSS rose by the 64 MB of external
 * memory V8 lets pile up between them. Copied on arrival, the network's buffers die young.
 *
 * A long frame whose first bytes say where its chunk bytes start (`dataFieldStart`) is placed so that they start
 * on an alignment boundary: a reader writing them to a file opened with O_DIRECT then needs no staging copy.
 *
 * Frames are read one at a time, in order. The reader fails (and resets the stream) on a frame longer than
 * `maxFrameBytes` or on more than `maxBufferedBytes` of frames waiting (each counted with 1 KiB on top); frames
 * complete before a failure or the end of the stream are still handed out, and then the failure, or
 * UnexpectedEOFError at the end.
 */
export class FrameReader {
  private readonly stream: Stream
  private readonly buffers: BufferPool
  private readonly init: Required<FrameReaderInit>
  private readonly ready: ReceivedFrame[] = []
  private readyBytes = 0
  private waiter?: { resolve: (frame: ReceivedFrame) => void, reject: (err: Error) => void }
  private failure?: Error
  private ended = false
  /** The length prefix being read */
  private prefix = { value: 0, scale: 1, bytes: 0 }
  /** The frame being received */
  private current?: { buffer: Uint8Array, start: number, length: number, filled: number, lent: boolean }

  constructor (stream: Stream, components: FrameReaderComponents, init: FrameReaderInit) {
    this.stream = stream
    this.buffers = components.buffers
    this.init = { pooledFromBytes: 32 * 1024, ...init }
    stream.addEventListener('message', this.onMessage)
    stream.addEventListener('close', this.onClose)
    stream.addEventListener('remoteCloseWrite', this.onRemoteCloseWrite)
  }

  /**
   * The next frame, once it is complete.
   *
   * @throws ProtocolError, StreamBufferError, UnexpectedEOFError, the error the stream closed with, or the
   * signal's reason
   */
  async read (options: { signal?: AbortSignal } = {}): Promise<ReceivedFrame> {
    const frame = this.ready.shift()
    if (frame != null) {
      this.readyBytes -= frame.bytes.byteLength + FRAME_OVERHEAD_BYTES
      return frame
    }
    if (this.failure != null) throw this.failure
    if (this.ended) throw new UnexpectedEOFError(`${this.init.protocol}: the stream ended`)
    if (this.waiter != null) throw new Error('FrameReader.read: a read is already waiting')
    const { signal } = options
    signal?.throwIfAborted()
    return await new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.waiter = undefined
        reject(signal?.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiter = {
        resolve: frame => { signal?.removeEventListener('abort', onAbort); resolve(frame) },
        reject: err => { signal?.removeEventListener('abort', onAbort); reject(err) }
      }
    })
  }

  /** Stops reading: the stream's further bytes are ignored, and frames nobody read give their buffers back */
  close (): void {
    this.stream.removeEventListener('message', this.onMessage)
    this.stream.removeEventListener('close', this.onClose)
    this.stream.removeEventListener('remoteCloseWrite', this.onRemoteCloseWrite)
    this.fail(new UnexpectedEOFError(`${this.init.protocol}: the reader was closed`))
    for (const frame of this.ready.splice(0)) frame.release()
    this.readyBytes = 0
  }

  private readonly onMessage = (evt: StreamMessageEvent): void => {
    if (this.failure != null) return
    try {
      if (evt.data instanceof Uint8Array) this.receive(evt.data)
      else for (const piece of evt.data) this.receive(piece)
    } catch (err: any) {
      this.fail(err)
      this.stream.abort(err)
    }
  }

  private readonly onClose = (evt: StreamCloseEvent): void => {
    if (evt.error != null) this.fail(evt.error)
    else this.end()
  }

  private readonly onRemoteCloseWrite = (): void => {
    this.end()
  }

  private receive (piece: Uint8Array): void {
    let at = 0
    while (at < piece.byteLength) {
      const current = this.current
      if (current == null) {
        at = this.readPrefix(piece, at)
        continue
      }
      const n = Math.min(piece.byteLength - at, current.length - current.filled)
      current.buffer.set(piece.subarray(at, at + n), current.start + current.filled)
      current.filled += n
      at += n
      if (current.filled === current.length) this.complete()
    }
  }

  /** Reads length-prefix bytes from `piece` at `at`; starts the frame once the prefix is whole. Returns where it stopped */
  private readPrefix (piece: Uint8Array, at: number): number {
    const prefix = this.prefix
    while (at < piece.byteLength) {
      const byte = piece[at++]
      prefix.value += (byte & 0x7f) * prefix.scale
      prefix.scale *= 0x80
      prefix.bytes++
      if (prefix.value > this.init.maxFrameBytes) {
        throw new ProtocolError(`${this.init.protocol}: a frame is longer than the ${this.init.maxFrameBytes} bytes the protocol allows`)
      }
      if (byte >= 0x80) {
        if (prefix.bytes >= MAX_VARINT_BYTES) throw new ProtocolError(`${this.init.protocol}: a frame's length prefix is longer than any length needs`)
        continue
      }
      const length = prefix.value
      this.prefix = { value: 0, scale: 1, bytes: 0 }
      this.begin(length, piece.subarray(at))
      if (length === 0) this.complete()
      return at
    }
    return at
  }

  /** Picks the buffer the frame is received into; `first` holds whatever of the frame this piece already carries */
  private begin (length: number, first: Uint8Array): void {
    if (length < this.init.pooledFromBytes) {
      this.current = { buffer: new Uint8Array(length), start: 0, length, filled: 0, lent: false }
      return
    }
    const buffer = this.buffers.borrow()
    const dataAt = dataFieldStart(first, length)
    const start = dataAt == null ? 0 : (DIRECT_IO_ALIGNMENT - dataAt % DIRECT_IO_ALIGNMENT) % DIRECT_IO_ALIGNMENT
    if (start + length > buffer.byteLength) {
      // a pool made for shorter frames: correct, only without the reuse
      this.buffers.giveBack(buffer)
      this.current = { buffer: new Uint8Array(length), start: 0, length, filled: 0, lent: false }
      return
    }
    this.current = { buffer, start, length, filled: 0, lent: true }
  }

  private complete (): void {
    const current = this.current
    if (current == null) return
    this.current = undefined
    const { buffer, start, length, lent } = current
    let released = false
    const frame: ReceivedFrame = {
      bytes: buffer.subarray(start, start + length),
      lent,
      release: lent
        ? () => {
            if (released) return
            released = true
            this.buffers.giveBack(buffer)
          }
        : noop
    }
    const waiter = this.waiter
    if (waiter != null) {
      this.waiter = undefined
      waiter.resolve(frame)
      return
    }
    this.ready.push(frame)
    this.readyBytes += length + FRAME_OVERHEAD_BYTES
    if (this.readyBytes > this.init.maxBufferedBytes) {
      throw new StreamBufferError(`${this.init.protocol}: ${this.readyBytes} bytes of frames wait to be read, more than the ${this.init.maxBufferedBytes} allowed`)
    }
  }

  private end (): void {
    if (this.ended) return
    this.ended = true
    const current = this.current
    if (current != null) {
      this.fail(new UnexpectedEOFError(`${this.init.protocol}: the stream ended ${current.filled} bytes into a frame of ${current.length}`))
      return
    }
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.reject(new UnexpectedEOFError(`${this.init.protocol}: the stream ended`))
  }

  private fail (err: Error): void {
    if (this.failure != null) return
    this.failure = err
    const current = this.current
    this.current = undefined
    if (current?.lent === true) this.buffers.giveBack(current.buffer)
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.reject(err)
  }
}

/**
 * A pool of page-aligned buffers for chunk protocol frames: the largest chunk with its other fields, and room to
 * align the chunk. It keeps at most 6 buffers given back, and none after 30 s without a frame.
 */
export function chunkFrameBuffers (): BufferPool {
  return new BufferPool(CHUNK_FRAME_BUFFER_BYTES + DIRECT_IO_ALIGNMENT, { allocate: alignedMemory, maxFree: 6, idleMs: 30_000 })
}

/** Reads the frames of a `/collective/chunk` stream, with up to `maxBufferedBytes` of them waiting to be read */
export function chunkFrameReader (stream: Stream, buffers: BufferPool, maxBufferedBytes: number): FrameReader {
  return new FrameReader(stream, { buffers }, { maxFrameBytes: CHUNK_PROTOCOL_LIMITS.maxMessageBytes, maxBufferedBytes, protocol: CHUNK_PROTOCOL })
}

/**
 * Decodes a chunk protocol frame with `decode` (ChunkRequest's or ChunkResponse's). Its chunk bytes stay where they
 * arrived, as LentBytes when the frame is in a lent buffer; the other fields are decoded from a copy, as bytes
 * fields (a request's CID and capability) would otherwise be views of a buffer that is filled again once released.
 * The frame's buffer goes back at once when the frame does not decode.
 *
 * @throws ProtocolError, or what `decode` throws
 */
export function decodeChunkFrame<T extends { data: Uint8Array }> (frame: ReceivedFrame, decode: (head: Uint8Array) => T): Omit<T, 'data'> & { data: Uint8ArrayList } {
  try {
    const { head, data } = splitDataField(new Uint8ArrayList(frame.bytes), CHUNK_PROTOCOL)
    const fields = decode(frame.lent ? head.slice() : head)
    return { ...fields, data: frame.lent ? new LentBytes(frame.release, ...data) : data }
  } catch (err) {
    frame.release()
    throw err
  }
}
