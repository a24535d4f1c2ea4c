import { alignedMemory, alignedMemoryBytes } from './direct-io.js'

export interface ReceiveBufferPoolInit {
  /** Bytes each buffer holds at least: the largest frame it receives, with room to align the bytes in it */
  bufferBytes: number
  /** Buffers kept for reuse once given back (default 6); those given back beyond that are left to the garbage collector */
  maxFree?: number
  /** Kept buffers are dropped after this long without a `take()` (default 30 s), so an idle daemon gives their memory back */
  idleMs?: number
}

/**
 * Page-aligned buffers that received bytes are copied into as they arrive, taken and given back synchronously.
 *
 * Why: every network read and every decrypted Noise message is a new buffer, and while bytes wait in them (a chunk
 * is complete only after a few milliseconds) they outlive two young-generation collections; V8 then moves them to
 * the old generation, which only a full collection clears. A 500 MB read ran 6 or 7 full collections that way,
 * about a fifth of the reading daemon's CPU time, and its RSS rose by the 64 MB of external memory V8 lets pile up
 * between them. Bytes copied into a reused buffer on arrival let the network's buffers die young.
 *
 * A buffer that is never given back is simply garbage; `take()` then makes a new one. Memory kept is at most
 * `maxFree` buffers, and none after `idleMs` of no use.
 */
export class ReceiveBufferPool {
  readonly bufferBytes: number
  private readonly maxFree: number
  private readonly idleMs: number
  private readonly free: Uint8Array[] = []
  /** The memory of every buffer this pool made: nothing else is taken back */
  private readonly own = new WeakSet<ArrayBufferLike>()
  private lastTake = 0
  private idleTimer?: ReturnType<typeof setTimeout>

  constructor (init: ReceiveBufferPoolInit) {
    this.maxFree = init.maxFree ?? 6
    this.idleMs = init.idleMs ?? 30_000
    this.bufferBytes = alignedMemoryBytes(init.bufferBytes)
  }

  /** A buffer of `bufferBytes`: a kept one, else a new one */
  take (): Uint8Array {
    this.lastTake = Date.now()
    const kept = this.free.pop()
    if (kept != null) return kept
    const buffer = alignedMemory(this.bufferBytes)
    this.own.add(buffer.buffer)
    return buffer
  }

  /** Gives a buffer from `take()` back; nothing may read or write it afterwards */
  give (buffer: Uint8Array): void {
    if (!this.own.has(buffer.buffer) || buffer.byteOffset !== 0 || buffer.byteLength !== this.bufferBytes) return
    if (this.free.length >= this.maxFree || this.free.some(kept => kept.buffer === buffer.buffer)) return
    this.free.push(buffer)
    this.armIdle()
  }

  /** Buffers kept for reuse */
  get kept (): number {
    return this.free.length
  }

  /** Drops the kept buffers and the idle timer */
  clear (): void {
    this.free.length = 0
    clearTimeout(this.idleTimer)
    this.idleTimer = undefined
  }

  private armIdle (): void {
    if (this.idleTimer != null) return
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined
      if (Date.now() - this.lastTake >= this.idleMs) this.free.length = 0
      else if (this.free.length > 0) this.armIdle()
    }, this.idleMs)
    this.idleTimer.unref?.()
  }
}
