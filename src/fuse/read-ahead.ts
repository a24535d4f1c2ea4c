/** Fetches up to `length` bytes from `offset`; fewer only at the end of the file */
export type RangeFetcher = (offset: number, length: number) => Promise<Buffer>

export interface ReadAheadInit {
  /** Bytes fetched per request, and ahead of a sequential reader (default 8 MiB, two of the largest chunks). Two windows at most are held. */
  windowBytes?: number
}

interface Window { offset: number, bytes: Buffer, asked: number }

/**
 * Read-ahead for one open file: the kernel asks for 128 KiB at a time, and a daemon round trip per request would
 * cap throughput far below the chunk transfer rate. Each miss fetches a whole window; a reader that has consumed
 * half of a window gets the next one fetched in the background. Memory is bounded by two windows.
 */
export class ReadAhead {
  private readonly windowBytes: number
  private readonly fetch: RangeFetcher
  private current?: Window
  private next?: { offset: number, asked: number, bytes: Promise<Buffer> }
  private queue: Promise<unknown> = Promise.resolve()

  constructor (fetch: RangeFetcher, init: ReadAheadInit = {}) {
    this.fetch = fetch
    this.windowBytes = init.windowBytes ?? 8 * 1024 * 1024
  }

  /** Up to `length` bytes from `offset` (fewer at the end of the file, none past it) */
  async read (offset: number, length: number): Promise<Buffer> {
    // Concurrent kernel reads would race for the windows; one at a time keeps the bookkeeping simple.
    const result = this.queue.then(async () => await this.serve(offset, length))
    this.queue = result.catch(() => {})
    return await result
  }

  /** Drops what was fetched: the file changed */
  invalidate (): void {
    this.current = undefined
    this.next?.bytes.catch(() => {})
    this.next = undefined
  }

  private async serve (offset: number, length: number): Promise<Buffer> {
    let hit = this.slice(this.current, offset, length)
    if (hit == null && this.next != null && offset >= this.next.offset && offset < this.next.offset + this.next.asked) {
      const next = this.next
      this.next = undefined
      try {
        this.current = { offset: next.offset, asked: next.asked, bytes: await next.bytes }
      } catch {
        // A failed prefetch is retried by the fetch below, which reports its own error.
        this.current = undefined
      }
      hit = this.slice(this.current, offset, length)
    }
    if (hit == null) {
      const asked = Math.max(length, this.windowBytes)
      this.next?.bytes.catch(() => {})
      this.next = undefined
      this.current = { offset, asked, bytes: await this.fetch(offset, asked) }
      hit = this.slice(this.current, offset, length) as Buffer
    }
    this.prefetch(offset + length)
    return hit
  }

  private slice (w: Window | undefined, offset: number, length: number): Buffer | undefined {
    if (w == null || offset < w.offset) return undefined
    const end = w.offset + w.bytes.length
    const atEof = w.bytes.length < w.asked
    // A short window ends at the end of the file, so it answers everything after its start.
    if (offset + length <= end || atEof) {
      return w.bytes.subarray(Math.min(offset, end) - w.offset, Math.min(end, offset + length) - w.offset)
    }
    return undefined
  }

  private prefetch (position: number): void {
    const w = this.current
    if (w == null || this.next != null || w.bytes.length < w.asked) return
    if (position < w.offset + w.bytes.length / 2) return
    const offset = w.offset + w.bytes.length
    const bytes = this.fetch(offset, this.windowBytes)
    bytes.catch(() => {})
    this.next = { offset, asked: this.windowBytes, bytes }
  }
}
