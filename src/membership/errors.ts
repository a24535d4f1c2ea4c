// Errors of the membership layer. Each has a stable `name` that tests and the wire protocol rely on.

/** No seed answered a join */
export class JoinError extends Error {
  static name = 'JoinError'
  name = 'JoinError'
}

/** A record failed validation: bad shape, too large, or a signature that does not verify */
export class InvalidRecordError extends Error {
  static name = 'InvalidRecordError'
  name = 'InvalidRecordError'
}

/** The calling peer may not take part in membership (no verified certificate) */
export class UnauthorizedPeerError extends Error {
  static name = 'UnauthorizedPeerError'
  name = 'UnauthorizedPeerError'
}

/** A request was well-formed protobuf but breaks the protocol (e.g. a ping-req without a target) */
export class InvalidRequestError extends Error {
  static name = 'InvalidRequestError'
  name = 'InvalidRequestError'
}

/** The member was stopped or has left */
export class NotRunningError extends Error {
  static name = 'NotRunningError'
  name = 'NotRunningError'
}

/** The remote side answered with an error */
export class RemoteMembershipError extends Error {
  static name = 'RemoteMembershipError'
  name = 'RemoteMembershipError'
  /** Stable name of the error the remote raised */
  readonly remoteName: string
  constructor (remoteName: string, message: string) {
    super(`${remoteName}: ${message}`)
    this.remoteName = remoteName
  }
}
