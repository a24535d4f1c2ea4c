import { createHash } from 'node:crypto'
import { Blake3Hasher } from '@napi-rs/blake-hash'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
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

/** Multihash codes (multicodec table) of the hashes a chunk's CID may use */
export const SHA2_256 = 0x12
export const BLAKE3 = 0x1e

/**
 * The hash new chunks are addressed by. Every chunk is hashed three times on its way in (by the writer and by each
 * of two replicas) and once on every read, and on these machines BLAKE3 (native, SIMD) hashes 4-5 GB/s where
 * node:crypto's SHA-256 manages 1.1-1.8: the difference is a fifth of a put's CPU. Chunks addressed by SHA-256,
 * which collectives stored before, still verify and read.
 */
export const CHUNK_HASH = BLAKE3

/** Digest length of both chunk hashes; a CID with another length is refused rather than half-compared */
const DIGEST_LENGTH = 32

const CHUNK_HASHES: ReadonlySet<number> = new Set([SHA2_256, BLAKE3])

interface ChunkHasher {
  update: (bytes: Uint8Array) => void
  digest: () => Uint8Array
}

/**
 * An incremental hasher for multihash `code`, hashing each view in place on the calling thread: WebCrypto's digest
 * would copy every chunk first (a fresh 4 MiB buffer per chunk read, which the garbage collector then has to
 * chase), and handing pieces to a hashing thread costs the copy too.
 */
export function createChunkHasher (code: number): ChunkHasher {
  if (code === BLAKE3) {
    const hasher = new Blake3Hasher()
    // the binding reads any Uint8Array view in place, though its typings (1.3.4) name only Buffer
    return { update: (bytes) => { hasher.update(bytes as Buffer) }, digest: () => hasher.digestBuffer() }
  }
  if (code === SHA2_256) {
    const hash = createHash('sha256')
    return { update: (bytes) => { hash.update(bytes) }, digest: () => hash.digest() }
  }
  throw new UnsupportedCidError(`no chunk hash has multihash code 0x${code.toString(16)}`)
}

/** The digest of `bytes` (one view, or the pieces a stream delivered) under multihash `code` */
export function chunkDigest (code: number, bytes: Uint8Array | Uint8ArrayList): Uint8Array {
  const hasher = createChunkHasher(code)
  if (bytes instanceof Uint8Array) {
    hasher.update(bytes)
  } else {
    for (const piece of bytes) hasher.update(piece)
  }
  return hasher.digest()
}

/** The content address of a chunk: CIDv1, raw codec, CHUNK_HASH */
export async function cidOf (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(raw.code, createDigest(CHUNK_HASH, chunkDigest(CHUNK_HASH, bytes)))
}

/** Throws UnsupportedCidError unless `cid` is one we can verify (CIDv1, raw, a 32-byte sha2-256 or blake3) */
export function assertChunkCid (cid: CID): void {
  if (cid.version !== 1 || cid.code !== raw.code || !CHUNK_HASHES.has(cid.multihash.code) || cid.multihash.size !== DIGEST_LENGTH) {
    throw new UnsupportedCidError(`chunks are CIDv1 raw with a 32-byte sha2-256 or blake3 hash, got version ${cid.version} codec 0x${cid.code.toString(16)} hash 0x${cid.multihash.code.toString(16)} of ${cid.multihash.size} bytes (${cid.toString()})`)
  }
}

/** True when `bytes` hash to `cid`; throws UnsupportedCidError for a CID we cannot verify */
export function verifyChunk (cid: CID, bytes: Uint8Array | Uint8ArrayList): boolean {
  assertChunkCid(cid)
  return equalBytes(chunkDigest(cid.multihash.code, bytes), cid.multihash.digest)
}

export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) {
    if (a[i] !== b[i]) return false
  }
  return true
}
