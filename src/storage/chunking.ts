import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import type { Uint8ArrayList } from 'uint8arraylist'
import { InvalidSizeError, UnsupportedCidError } from './errors.js'

export const KiB = 1024
export const MiB = 1024 * KiB

export const SMALL_CHUNK_SIZE = 64 * KiB
export const MEDIUM_CHUNK_SIZE = MiB
export const LARGE_CHUNK_SIZE = 4 * MiB

/** No chunker cuts bigger chunks, so stores and protocols may refuse anything above this */
export const MAX_CHUNK_SIZE = LARGE_CHUNK_SIZE

/** The chunk sizes a file may be cut at; a remote writer names one of them */
export const CHUNK_SIZES: readonly number[] = [SMALL_CHUNK_SIZE, MEDIUM_CHUNK_SIZE, LARGE_CHUNK_SIZE]

const SMALL_FILE_LIMIT = MiB
const MEDIUM_FILE_LIMIT = 100 * MiB

/**
 * The chunk size for a file of `fileSize` bytes: small files get small chunks so they do not pad a node with
 * one oversized block, huge files get big chunks so their manifests and per-chunk round trips stay few.
 */
export function chunkSizeFor (fileSize: number): number {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) {
    throw new InvalidSizeError(`file size must be a non-negative integer, got ${fileSize}`)
  }
  if (fileSize < SMALL_FILE_LIMIT) return SMALL_CHUNK_SIZE
  if (fileSize <= MEDIUM_FILE_LIMIT) return MEDIUM_CHUNK_SIZE
  return LARGE_CHUNK_SIZE
}

/**
 * Re-cuts a byte stream into chunks of exactly `chunkSize` bytes (the last may be shorter; an empty source yields
 * nothing). Every yielded chunk owns its memory, so the consumer may keep it while the source reuses its
 * buffers; at most one partly filled chunk is held at a time, so memory stays bounded whatever the file size.
 */
export async function * chunkStream (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, chunkSize: number): AsyncGenerator<Uint8Array> {
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
    throw new InvalidSizeError(`chunk size must be a positive integer, got ${chunkSize}`)
  }

  let chunk: Uint8Array | undefined
  let filled = 0

  for await (const piece of source) {
    let offset = 0
    while (offset < piece.byteLength) {
      // allocate lazily so an exhausted source never leaves an empty chunk behind
      chunk ??= new Uint8Array(chunkSize)
      const n = Math.min(chunkSize - filled, piece.byteLength - offset)
      chunk.set(piece.subarray(offset, offset + n), filled)
      filled += n
      offset += n
      if (filled === chunkSize) {
        yield chunk
        chunk = undefined
        filled = 0
      }
    }
  }

  if (chunk != null && filled > 0) {
    // slice rather than subarray so the short tail does not pin a whole chunk-sized buffer
    yield chunk.slice(0, filled)
  }
}

/**
 * sha2-256 of `bytes` on the calling thread. node:crypto hashes the view in place: WebCrypto's digest would copy
 * every chunk first (a fresh 4 MiB buffer per chunk read, which the garbage collector then has to chase), and a
 * JS sha256 is several times slower.
 */
export function sha256Digest (bytes: Uint8Array | Uint8ArrayList): Uint8Array {
  if (bytes instanceof Uint8Array) return createHash('sha256').update(bytes).digest()
  const hash = createHash('sha256')
  for (const piece of bytes) hash.update(piece)
  return hash.digest()
}

/** The content address of a chunk: CIDv1, raw codec, sha2-256 */
export async function cidOf (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, createDigest(sha256.code, sha256Digest(bytes)))
}

/** Throws UnsupportedCidError unless `cid` is one we can verify (CIDv1, raw, sha2-256) */
export function assertChunkCid (cid: CID): void {
  if (cid.version !== 1 || cid.code !== raw.code || cid.multihash.code !== sha256.code) {
    throw new UnsupportedCidError(`chunks are CIDv1 raw sha2-256, got version ${cid.version} codec 0x${cid.code.toString(16)} hash 0x${cid.multihash.code.toString(16)} (${cid.toString()})`)
  }
}

/** True when `bytes` hash to `cid`; throws UnsupportedCidError for a CID we cannot verify */
export async function verifyChunk (cid: CID, bytes: Uint8Array | Uint8ArrayList): Promise<boolean> {
  assertChunkCid(cid)
  return equalBytes(sha256Digest(bytes), cid.multihash.digest)
}

export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) {
    if (a[i] !== b[i]) return false
  }
  return true
}
