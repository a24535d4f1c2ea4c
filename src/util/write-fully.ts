import type { FileHandle } from 'node:fs/promises'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * Writes all of `bytes` at the handle's position (or at `position`): one buffer, or a chunk in the pieces it
 * arrived in, with one writev per attempt rather than a copy into one buffer first. A short write is followed by
 * another for the rest.
 */
export async function writeFully (handle: FileHandle, bytes: Uint8Array | Uint8ArrayList, position?: number): Promise<void> {
  let rest = bytes instanceof Uint8Array ? [bytes] : [...bytes]
  let at = position
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest, at)
    // a regular file takes at least a byte or fails; never spin on a write that makes no progress
    if (bytesWritten === 0) throw new Error('the file took none of the bytes written to it')
    if (at != null) at += bytesWritten
    rest = skipBytes(rest, bytesWritten)
  }
}

/** What is left of `pieces` once their first `n` bytes are written */
function skipBytes (pieces: Uint8Array[], n: number): Uint8Array[] {
  let i = 0
  while (i < pieces.length && n >= pieces[i].byteLength) n -= pieces[i++].byteLength
  if (i === pieces.length) return []
  return [pieces[i].subarray(n), ...pieces.slice(i + 1)]
}
