export class DaemonNotRunningError extends Error {
  static name = 'DaemonNotRunningError'
  name = 'DaemonNotRunningError'
}

export class DaemonAlreadyRunningError extends Error {
  static name = 'DaemonAlreadyRunningError'
  name = 'DaemonAlreadyRunningError'
}

export class UnknownMethodError extends Error {
  static name = 'UnknownMethodError'
  name = 'UnknownMethodError'
}

export class ControlProtocolError extends Error {
  static name = 'ControlProtocolError'
  name = 'ControlProtocolError'
}

/** A framed upload whose connection ended before its end frame: the bytes that came are not the whole input */
export class IncompleteUploadError extends Error {
  static name = 'IncompleteUploadError'
  name = 'IncompleteUploadError'
}

/** An error the daemon reported; keeps the daemon's stable error name */
export class DaemonError extends Error {
  static name = 'DaemonError'
  name = 'DaemonError'
  readonly remoteName: string
  readonly details?: unknown
  constructor (remoteName: string, message: string, details?: unknown) {
    super(message)
    this.remoteName = remoteName
    this.details = details
  }
}
