// Each failure has its own class with a stable `name`: the meta protocol and the FUSE layer map them to status
// codes (ENOENT, ENOTDIR, EEXIST, ENOTEMPTY, EISDIR, EINVAL) by name. All extend MetadataError.

export class MetadataError extends Error {
  static override name = 'MetadataError'
  override name = 'MetadataError'
}

/**
 * A path that is not absolute, has `.`/`..`, a control character or a lone surrogate, or is too long; also operations
 * on `/` that make no sense
 */
export class InvalidPathError extends MetadataError {
  static override name = 'InvalidPathError'
  override name = 'InvalidPathError'
}

export class NotFoundError extends MetadataError {
  static override name = 'NotFoundError'
  override name = 'NotFoundError'
}

export class NotADirectoryError extends MetadataError {
  static override name = 'NotADirectoryError'
  override name = 'NotADirectoryError'
}

export class IsADirectoryError extends MetadataError {
  static override name = 'IsADirectoryError'
  override name = 'IsADirectoryError'
}

export class AlreadyExistsError extends MetadataError {
  static override name = 'AlreadyExistsError'
  override name = 'AlreadyExistsError'
}

export class NotEmptyError extends MetadataError {
  static override name = 'NotEmptyError'
  override name = 'NotEmptyError'
}

/** A manifest whose chunks do not add up, or that contradicts what is known about a chunk */
export class InvalidManifestError extends MetadataError {
  static override name = 'InvalidManifestError'
  override name = 'InvalidManifestError'
}

/** A mode, owner, size or time that cannot be stored */
export class InvalidAttributeError extends MetadataError {
  static override name = 'InvalidAttributeError'
  override name = 'InvalidAttributeError'
}

/** A location for a chunk the store has never heard of, given without the size that would register it */
export class UnknownChunkError extends MetadataError {
  static override name = 'UnknownChunkError'
  override name = 'UnknownChunkError'
}

/**
 * The file at a path is no longer the one the reader opened: it was given a new version, replaced by another file
 * (`mv new old`), or removed and created again. Reading on would mix two contents.
 */
export class FileChangedError extends MetadataError {
  static override name = 'FileChangedError'
  override name = 'FileChangedError'
}

/** The database was written by a newer version of this program */
export class SchemaVersionError extends MetadataError {
  static override name = 'SchemaVersionError'
  override name = 'SchemaVersionError'
}

export class NotStartedError extends MetadataError {
  static override name = 'NotStartedError'
  override name = 'NotStartedError'
}

/** A string that does not parse as a CID */
export class InvalidCidError extends MetadataError {
  static override name = 'InvalidCidError'
  override name = 'InvalidCidError'
}
