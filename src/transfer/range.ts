import { readFile } from './reader.js'
import type { ReadComponents, ReadOptions } from './reader.js'
import type { FileManifest } from '../metadata/store.js'
import type { Uint8ArrayList } from 'uint8arraylist'

/** A ranged read with a negative or non-integer offset or length */
export class InvalidRangeError extends Error {
  static name = 'InvalidRangeError'
  name = 'InvalidRangeError'
}

export interface ByteRange {
  offset: number
  /** Bytes actually available from `offset`: the request clamped to the end of the file */
  length: number
}

/** Clamps a requested range to the file, as a read(2) past the end returns fewer bytes or none */
export function clampRange (size: number, offset: number, length: number): ByteRange {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidRangeError(`offset must be a non-negative integer, got ${offset}`)
  if (!Number.isSafeInteger(length) || length < 0) throw new InvalidRangeError(`length must be a non-negative integer, got ${length}`)
  return { offset, length: Math.max(0, Math.min(length, size - offset)) }
}

/**
 * Streams `length` bytes of a file from `offset`, fetching only the chunks that cover the range (with the same
 * read-ahead, verification and failover as a whole-file read). Chunk boundaries come from the chunk sizes, not
 * from `chunkSize`, so a manifest with uneven chunks is still cut at the right place.
 */
export async function * readRange (components: ReadComponents, manifest: FileManifest, offset: number, length: number, options: ReadOptions = {}): AsyncGenerator<Uint8ArrayList> {
  const range = clampRange(manifest.size, offset, length)
  if (range.length === 0) return
  const end = range.offset + range.length

  let first = -1
  let firstStart = 0
  let last = -1
  let pos = 0
  for (const [i, chunk] of manifest.chunks.entries()) {
    const next = pos + chunk.size
    if (first === -1 && next > range.offset) { first = i; firstStart = pos }
    if (next >= end) { last = i; break }
    pos = next
  }

  const covering: FileManifest = { ...manifest, chunks: manifest.chunks.slice(first, last + 1) }
  yield * trimToRange(readFile(components, covering, options), firstStart, range)
}

/**
 * The part of consecutive chunks that falls in `range`, the first chunk starting at file offset `start`: the
 * chunks covering a range begin before it and end after it.
 */
export async function * trimToRange (chunks: AsyncIterable<Uint8ArrayList>, start: number, range: ByteRange): AsyncGenerator<Uint8ArrayList> {
  const end = range.offset + range.length
  let at = start
  for await (const bytes of chunks) {
    const from = Math.max(0, range.offset - at)
    const to = Math.min(bytes.byteLength, end - at)
    at += bytes.byteLength
    if (to > from) yield from === 0 && to === bytes.byteLength ? bytes : bytes.sublist(from, to)
  }
}
