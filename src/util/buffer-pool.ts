export interface BufferPoolInit {
  /** Makes a buffer of at least the size asked for (default `allocate`: plain memory, not zero-filled) */
  allocate?: (size: number) => Uint8Array
  /** Buffers kept for reuse once given back (default: all of them); those beyond are left to the collector */
  maxFree?: number
  /** Kept buffers are dropped after this long without a borrow (default: never), so an idle daemon gives them back */
  idleMs?: number
}

/**
 * Buffers of one size lent out and taken back. Chunks held by a transfer live long enough to outlast several minor
 * collections, so without reuse every one of them ends as old-generation garbage that only a full collection frees:
 * a 2 GB transfer made the daemon run one every few hundred milliseconds and carry tens of megabytes of dead chunks.
 * Buffers of other sizes (a file's short last chunk) are allocated and left to the collector, and so is a lent
 * buffer that never comes back: the pool holds only those given back.
 */
export class BufferPool {
  readonly size: number
  private readonly allocate: (size: number) => Uint8Array
  private readonly maxFree: number
  private readonly idleMs?: number
  private readonly free: Uint8Array[] = []
  /** Buffers lent and not yet back; weak, so one that never comes back is not kept alive here */
  private readonly lent = new WeakSet<Uint8Array>()
  private lastBorrow = 0
  private idleTimer?: ReturnType<typeof setTimeout>

  constructor (size: number, init: BufferPoolInit = {}) {
    this.size = size
    this.allocate = init.allocate ?? allocate
    this.maxFree = init.maxFree ?? Infinity
    this.idleMs = init.idleMs
  }

  borrow (size: number = this.size): Uint8Array {
    if (size !== this.size) return this.allocate(size)
    this.lastBorrow = Date.now()
    const buf = this.free.pop() ?? this.allocate(size)
    this.lent.add(buf)
    return buf
  }

  /** Takes a buffer back if it was lent (once); anything else is left to the garbage collector */
  giveBack (buf: Uint8Array): void {
    if (!this.lent.delete(buf) || this.free.length >= this.maxFree) return
    this.free.push(buf)
    this.armIdle()
  }

  /** Buffers kept for reuse */
  get kept (): number {
    return this.free.length
  }

  /** Drops the kept buffers */
  clear (): void {
    this.free.length = 0
    clearTimeout(this.idleTimer)
    this.idleTimer = undefined
  }

  private armIdle (): void {
    const idleMs = this.idleMs
    if (idleMs == null || this.idleTimer != null) return
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined
      if (Date.now() - this.lastBorrow >= idleMs) this.free.length = 0
      else if (this.free.length > 0) this.armIdle()
    }, idleMs)
    this.idleTimer.unref?.()
  }
}

/** A plain Uint8Array of its own, not from Node's pool and not zero-filled: the borrower overwrites every byte */
export function allocate (size: number): Uint8Array {
  return new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size)
}
