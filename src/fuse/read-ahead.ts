import { ReadStream } from './read-stream.js'
import type { StreamOpener } from './read-stream.js'

export interface ReadAheadInit {
  /** Bytes each stream holds ahead of its reader (default 8 MiB, two of the largest chunks); see ReadStreamInit */
  aheadBytes?: number
  /** Bytes each stream keeps behind its reader (default 1 MiB); see ReadStreamInit */
  behindBytes?: number
  /**
   * Streams open at once (default 2), so that two readers of one open file at different places (two processes, or
   * a tool that reads a header at the end) do not take the stream from each other on every request.
   */
  maxStreams?: number
}

/**
 * Read-ahead for one open file. The kernel asks for 128 KiB at a time, and a daemon round trip per request would
 * cap throughput far below the chunk transfer rate, so reads are served from long-lived streams (ReadStream) that
 * run from where a reader started to the end of the file: a sequential reader gets the daemon's continuous chunk
 * read-ahead, with backpressure, just as `get` does. A read no stream is near starts a new one there; the least
 * recently used stream then answers the reads it has waiting and closes.
 *
 * Memory is bounded by `maxStreams` streams of `behindBytes` + `aheadBytes` each (plus the reads waiting on them),
 * 18 MiB by default; the daemon holds its own read-ahead per stream.
 */
export class ReadAhead {
  private readonly open: StreamOpener
  private readonly init: ReadAheadInit
  private readonly maxStreams: number
  /** Most recently used first */
  private streams: ReadStream[] = []

  constructor (open: StreamOpener, init: ReadAheadInit = {}) {
    this.open = open
    this.init = init
    this.maxStreams = Math.max(1, init.maxStreams ?? 2)
  }

  /**
   * Copies up to `length` bytes from `offset` into `buf` (fewer at the end of the file, none past it).
   *
   * @throws ReadStreamClosedError when invalidate() came first: the caller reads the file anew
   */
  async read (buf: Buffer, offset: number, length: number): Promise<number> {
    // A stream that failed (the daemon went away, or cut an idle connection) gives way to a new one.
    for (const failed of this.streams.filter(s => !s.usable)) failed.retire()
    this.streams = this.streams.filter(s => s.usable)
    let stream = this.streams.find(s => s.serves(offset))
    if (stream == null) {
      stream = new ReadStream(this.open, offset, { aheadBytes: this.init.aheadBytes, behindBytes: this.init.behindBytes })
      for (const old of this.streams.splice(this.maxStreams - 1)) old.retire()
    } else {
      this.streams.splice(this.streams.indexOf(stream), 1)
    }
    this.streams.unshift(stream)
    return await stream.read(buf, offset, length)
  }

  /** Drops every stream: the file changed, or is closed */
  invalidate (): void {
    for (const stream of this.streams) stream.close()
    this.streams = []
  }
}
