/**
 * Opens the bytes of a file from `offset` to its end, in order. Aborting `signal` must end the iteration and release
 * what the source holds (the daemon connection).
 */
export type StreamOpener = (offset: number, signal: AbortSignal) => AsyncIterable<Uint8Array>

export interface ReadStreamInit {
  /**
   * Bytes held ahead of the furthest read answered before the stream stops pulling (default 8 MiB). Past that the
   * source is left unread, so the socket and the daemon's own read-ahead wait too.
   */
  aheadBytes?: number
  /**
   * Bytes kept behind the furthest read answered (default 1 MiB): the kernel sends the reads of one read-ahead
   * concurrently, and they can arrive here out of order.
   */
  behindBytes?: number
}

/** The stream was closed (the file changed, or it was closed) before it could answer a read; ask again */
export class ReadStreamClosedError extends Error {
  static name = 'ReadStreamClosedError'
  name = 'ReadStreamClosedError'
}

interface Waiter {
  buf: Buffer
  offset: number
  length: number
  resolve: (n: number) => void
  reject: (err: Error) => void
}

/**
 * One long-lived read of a file from an offset to its end, consumed as a sequential reader asks for it: the daemon
 * streams the whole range with its continuous chunk read-ahead, as it does for `get`, instead of restarting per
 * window. Reads wait for the bytes they need and are copied straight into the caller's buffer.
 *
 * Memory: what is held spans at most `behindBytes` behind the furthest read answered and `aheadBytes` plus one read's
 * length ahead of it (`serves` admits no read further ahead than `aheadBytes`), plus the last piece the source
 * yielded (a socket read, 64 KiB or so).
 */
export class ReadStream {
  /** Offset of the first byte held */
  private base: number
  /** Offset just past the last byte received */
  private end: number
  /** End of the furthest read answered: what the stream keeps ahead of and behind */
  private furthest: number
  private pieces: Uint8Array[] = []
  private waiters: Waiter[] = []
  private done = false
  private error?: Error
  private closed = false
  /** Answers the reads waiting and then closes, pulling only what they need: another stream took over */
  private retiring = false
  private room?: () => void
  private readonly aheadBytes: number
  private readonly behindBytes: number
  private readonly controller = new AbortController()

  constructor (open: StreamOpener, offset: number, init: ReadStreamInit = {}) {
    this.base = this.end = this.furthest = offset
    this.aheadBytes = init.aheadBytes ?? 8 * 1024 * 1024
    this.behindBytes = init.behindBytes ?? 1024 * 1024
    void this.pump(open(offset, this.controller.signal))
  }

  /** Bytes held now (for tests and the memory bound) */
  get heldBytes (): number {
    return this.end - this.base
  }

  /** False once the stream is closed, retiring or failed: it takes no new reads */
  get usable (): boolean {
    return !this.closed && !this.retiring && this.error == null
  }

  /** True when a read at `offset` is this stream's to answer: from bytes it holds, or will receive shortly */
  serves (offset: number): boolean {
    return this.usable && offset >= this.base && offset <= this.furthest + this.aheadBytes
  }

  /**
   * Copies up to `length` bytes from `offset` into `buf` once they have arrived; fewer only at the end of the file.
   *
   * @throws ReadStreamClosedError when the stream is closed first; the source's error when it fails
   */
  async read (buf: Buffer, offset: number, length: number): Promise<number> {
    if (this.closed) throw new ReadStreamClosedError('the read stream is closed')
    if (this.error != null) throw this.error
    if (offset < this.base) throw new RangeError(`offset ${offset} is before the stream's first byte ${this.base}`)
    if (this.done || offset + length <= this.end) return this.copy(buf, offset, length)
    return await new Promise<number>((resolve, reject) => {
      this.waiters.push({ buf, offset, length, resolve, reject })
      this.wake()
    })
  }

  /** Lets the reads waiting finish, then closes: a read elsewhere in the file took over */
  retire (): void {
    this.retiring = true
    if (this.waiters.length === 0) this.close()
    else this.wake()
  }

  /** Stops the source and drops what is held; reads waiting fail with ReadStreamClosedError */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.controller.abort(new ReadStreamClosedError('the read stream is closed'))
    this.pieces = []
    this.base = this.end
    this.settle()
    this.wake()
  }

  private async pump (source: AsyncIterable<Uint8Array>): Promise<void> {
    try {
      for await (const bytes of source) {
        if (this.closed) break
        if (bytes.byteLength > 0) {
          this.pieces.push(bytes)
          this.end += bytes.byteLength
          this.settle()
        }
        while (!this.closed && !this.wantsMore()) await new Promise<void>(resolve => { this.room = resolve })
        if (this.closed) break
      }
      this.done = true
    } catch (err: any) {
      this.error = err instanceof Error ? err : new Error(String(err))
    }
    this.settle()
    if (this.retiring) this.close()
  }

  /** Whether to pull the next piece from the source */
  private wantsMore (): boolean {
    if (this.waiters.some(w => w.offset + w.length > this.end)) return true
    return !this.retiring && this.end - this.furthest < this.aheadBytes
  }

  private wake (): void {
    const room = this.room
    this.room = undefined
    room?.()
  }

  /** Answers every waiting read that can be answered now */
  private settle (): void {
    for (const w of [...this.waiters]) {
      const ready = this.done || w.offset + w.length <= this.end
      const failure = this.closed ? new ReadStreamClosedError('the read stream is closed') : ready ? undefined : this.error
      if (!ready && failure == null) continue
      this.waiters.splice(this.waiters.indexOf(w), 1)
      if (failure != null) w.reject(failure)
      else w.resolve(this.copy(w.buf, w.offset, w.length))
    }
    if (this.retiring && this.waiters.length === 0 && !this.closed) this.close()
  }

  /** Copies what is held of [offset, offset + length) into `buf`, then lets go of what is too far behind */
  private copy (buf: Buffer, offset: number, length: number): number {
    const stop = Math.min(this.end, offset + length)
    let at = this.base
    let copied = 0
    for (const piece of this.pieces) {
      const pieceEnd = at + piece.byteLength
      if (pieceEnd > offset + copied && at < stop) {
        const from = offset + copied - at
        const to = Math.min(piece.byteLength, stop - at)
        buf.set(piece.subarray(from, to), copied)
        copied += to - from
      }
      at = pieceEnd
      if (at >= stop) break
    }
    this.furthest = Math.max(this.furthest, offset + copied)
    this.trim()
    this.wake()
    return copied
  }

  private trim (): void {
    let keepFrom = this.furthest - this.behindBytes
    for (const w of this.waiters) keepFrom = Math.min(keepFrom, w.offset)
    while (this.pieces.length > 0 && this.base + this.pieces[0].byteLength <= keepFrom) {
      this.base += (this.pieces.shift() as Uint8Array).byteLength
    }
  }
}
