export class ReplicationError extends Error {
  static name = 'ReplicationError'
  name = 'ReplicationError'
}

export class ChunkUnavailableError extends Error {
  static name = 'ChunkUnavailableError'
  name = 'ChunkUnavailableError'
}

export class SizeMismatchError extends Error {
  static name = 'SizeMismatchError'
  name = 'SizeMismatchError'
}
