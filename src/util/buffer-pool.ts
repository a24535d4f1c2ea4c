/**
 * Buffers of one size lent out and taken back. Chunks held by a transfer live long enough to outlast several minor
 * collections, so without reuse every one of them ends as old-generation garbage that only a full collection frees:
 * a 2 GB transfer made the daemon run one every few hundred milliseconds and carry tens of megabytes of dead chunks.
 * Buffers of other sizes (a file's short last chunk) are allocated and left to the collector.
 */
export class BufferPool {
  private readonly size: number
  private readonly free: Uint8Array[] = []
  private readonly lent = new Set<Uint8Array>()

  constructor (size: number) {
    this.size = size
  }

  borrow (size: number): Uint8Array {
    const buf = (size === this.size ? this.free.pop() : undefined) ?? allocate(size)
    if (size === this.size) this.lent.add(buf)
    return buf
  }

  /** Takes a buffer back if it was lent; anything else is left to the garbage collector */
  giveBack (buf: Uint8Array): void {
    if (this.lent.delete(buf)) this.free.push(buf)
  }
}

/** A plain Uint8Array of its own, not from Node's pool and not zero-filled: the borrower overwrites every byte */
export function allocate (size: number): Uint8Array {
  return new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size)
}
