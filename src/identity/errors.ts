// Each failure has its own class with a stable `name`, so callers (the handshake, the CLI) can map a refusal to a
// reason without parsing messages. All of them extend IdentityError so "any identity failure" is one instanceof.

export class IdentityError extends Error {
  static override name = 'IdentityError'
  override name = 'IdentityError'
}

export class InvalidNameError extends IdentityError {
  static override name = 'InvalidNameError'
  override name = 'InvalidNameError'
}

export class InvalidPemError extends IdentityError {
  static override name = 'InvalidPemError'
  override name = 'InvalidPemError'
}

export class KeyFileMissingError extends IdentityError {
  static override name = 'KeyFileMissingError'
  override name = 'KeyFileMissingError'
}

export class KeyExistsError extends IdentityError {
  static override name = 'KeyExistsError'
  override name = 'KeyExistsError'
}

export class UnsupportedKeyTypeError extends IdentityError {
  static override name = 'UnsupportedKeyTypeError'
  override name = 'UnsupportedKeyTypeError'
}

export class InvalidSerialError extends IdentityError {
  static override name = 'InvalidSerialError'
  override name = 'InvalidSerialError'
}

export class ChainInvalidError extends IdentityError {
  static override name = 'ChainInvalidError'
  override name = 'ChainInvalidError'
}

export class UntrustedIssuerError extends IdentityError {
  static override name = 'UntrustedIssuerError'
  override name = 'UntrustedIssuerError'
}

/** Also thrown for certificates that are not valid yet. */
export class CertificateExpiredError extends IdentityError {
  static override name = 'CertificateExpiredError'
  override name = 'CertificateExpiredError'
}

export class NameConstraintError extends IdentityError {
  static override name = 'NameConstraintError'
  override name = 'NameConstraintError'
}

export class PeerKeyMismatchError extends IdentityError {
  static override name = 'PeerKeyMismatchError'
  override name = 'PeerKeyMismatchError'
}

export class RoleNotAllowedError extends IdentityError {
  static override name = 'RoleNotAllowedError'
  override name = 'RoleNotAllowedError'
}

export class CertificateRevokedError extends IdentityError {
  static override name = 'CertificateRevokedError'
  override name = 'CertificateRevokedError'
}
