// Each failure has its own class with a stable `name`, so a protocol handler can map a refusal to a reason
// code without parsing messages. All of them extend StorageError so "any storage failure" is one instanceof.

export class StorageError extends Error {
  static override name = 'StorageError'
  override name = 'StorageError'
}

/** The bytes offered for a CID do not hash to it (or what is on disk no longer does) */
export class ChunkVerificationError extends StorageError {
  static override name = 'ChunkVerificationError'
  override name = 'ChunkVerificationError'
}

export class ChunkNotFoundError extends StorageError {
  static override name = 'ChunkNotFoundError'
  override name = 'ChunkNotFoundError'
}

/** Storing the chunk would exceed the configured capacity or eat into the disk's reserve */
export class StoreFullError extends StorageError {
  static override name = 'StoreFullError'
  override name = 'StoreFullError'
}

/** A chunk larger than the store accepts: no chunker produces one, so it is a bug or an abuse */
export class ChunkTooLargeError extends StorageError {
  static override name = 'ChunkTooLargeError'
  override name = 'ChunkTooLargeError'
}

/** A CID we cannot verify: chunks are CIDv1, raw codec, a 32-byte sha2-256 or blake3 hash */
export class UnsupportedCidError extends StorageError {
  static override name = 'UnsupportedCidError'
  override name = 'UnsupportedCidError'
}

/** A size or chunk size that is negative, fractional or otherwise meaningless */
export class InvalidSizeError extends StorageError {
  static override name = 'InvalidSizeError'
  override name = 'InvalidSizeError'
}

export class NotStartedError extends StorageError {
  static override name = 'NotStartedError'
  override name = 'NotStartedError'
}
