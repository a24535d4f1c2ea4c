// A fake daemon stream for the read-ahead tests: a file's bytes from an offset to the end, in socket-sized pieces.

export interface FakeSource {
  open: (offset: number, signal: AbortSignal) => AsyncIterable<Uint8Array>
  /** Offset of every stream opened, in order */
  opens: number[]
  /** Streams not finished yet (their finally has not run) */
  live: () => number
  /** Bytes handed out by all streams */
  pulled: () => number
  /** Makes every stream opened from now on fail after `afterBytes` */
  failAfter: (afterBytes: number | undefined) => void
}

export function fakeSource (bytes: Uint8Array, piece = 64 * 1024): FakeSource {
  const opens: number[] = []
  let live = 0
  let pulled = 0
  let failAfter: number | undefined
  return {
    opens,
    live: () => live,
    pulled: () => pulled,
    failAfter: (n) => { failAfter = n },
    open: (offset, signal) => {
      opens.push(offset)
      const failAt = failAfter
      return (async function * () {
        live++
        try {
          for (let at = offset; at < bytes.length; at += piece) {
            // A socket delivers asynchronously; an abort ends the stream as a destroyed socket does.
            await new Promise(resolve => setImmediate(resolve))
            signal.throwIfAborted()
            if (failAt != null && at - offset >= failAt) throw new Error('backend down')
            const out = bytes.slice(at, Math.min(bytes.length, at + piece))
            pulled += out.length
            yield out
          }
        } finally {
          live--
        }
      })()
    }
  }
}

/** A deterministic generator, so a failing case can be replayed */
export function lcg (seed: number): (n: number) => number {
  let s = seed
  return (n) => { s = (s * 1103515245 + 12345) % 2147483648; return s % n }
}

/** What `reader` answers for `length` bytes at `offset` (a ReadStream or a ReadAhead) */
export async function readBytes (reader: { read: (buf: Buffer, offset: number, length: number) => Promise<number> }, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length)
  const n = await reader.read(buf, offset, length)
  return buf.subarray(0, n)
}

/** Lets the fake sources' pieces arrive and the streams react to them */
export async function settled (): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
}
