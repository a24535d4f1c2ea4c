export class NoRepairTargetError extends Error {
  static name = 'NoRepairTargetError'
  name = 'NoRepairTargetError'
}

export class NoReadableReplicaError extends Error {
  static name = 'NoReadableReplicaError'
  name = 'NoReadableReplicaError'
}

export class UnknownNodeError extends Error {
  static name = 'UnknownNodeError'
  name = 'UnknownNodeError'
}
