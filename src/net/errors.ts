// Errors of the network layer. Each has a stable `name` that tests and the CLI rely on.

export class CertificateRefusedError extends Error {
  static name = 'CertificateRefusedError'
  name = 'CertificateRefusedError'
  /** Stable name of the check that failed on the remote side (e.g. UntrustedIssuerError) */
  readonly reason: string
  constructor (reason: string) {
    super(`the remote peer refused our certificate: ${reason}`)
    this.reason = reason
  }
}

export class HandshakeTimeoutError extends Error {
  static name = 'HandshakeTimeoutError'
  name = 'HandshakeTimeoutError'
}

export class ProtocolError extends Error {
  static name = 'ProtocolError'
  name = 'ProtocolError'
}

export class RequestTimeoutError extends Error {
  static name = 'RequestTimeoutError'
  name = 'RequestTimeoutError'
}

/** A stream or its connection ended before the exchange on it was done (the peer went away, or reset it) */
export class StreamClosedError extends Error {
  static name = 'StreamClosedError'
  name = 'StreamClosedError'
}
