import { createHash, randomFillSync } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'

/** Pieces of 4 MiB: the file is written as it is generated and never held in memory whole */
const PIECE_BYTES = 4 * 1024 * 1024

/**
 * Writes `bytes` random bytes to `path` and returns their sha256. Random, because the collective stores chunks
 * by content: repeated or zero bytes would be deduplicated and measure nothing.
 */
export async function writeRandomFile (path: string, bytes: number): Promise<string> {
  const hash = createHash('sha256')
  const piece = Buffer.allocUnsafe(PIECE_BYTES)
  const handle = await open(path, 'wx', 0o600)
  try {
    for (let left = bytes; left > 0;) {
      const n = Math.min(left, PIECE_BYTES)
      randomFillSync(piece, 0, n)
      const view = piece.subarray(0, n)
      hash.update(view)
      for (let off = 0; off < n;) {
        const { bytesWritten } = await handle.write(view, off, n - off)
        off += bytesWritten
      }
      left -= n
    }
    // On disk before anything is timed: the kernel writing it back during a measurement takes CPU time from it
    // (measured here: a baseline of 137 MB/s while 500 MB were written back, 390 MB/s without).
    await handle.sync()
  } finally {
    await handle.close()
  }
  return hash.digest('hex')
}

export async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: PIECE_BYTES }) as AsyncIterable<Buffer>) hash.update(chunk)
  return hash.digest('hex')
}
