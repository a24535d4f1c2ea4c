// Each failure has its own class with a stable `name`: the meta protocol carries the name as its error code, the
// CLI prints it, tests assert on it. All extend PermissionError.

/** Base of every permissions failure, so "any permissions refusal" is one instanceof */
export class PermissionError extends Error {
  static override name = 'PermissionError'
  override name = 'PermissionError'
}

/**
 * The caller lacks a right. `subject` is the caller's principal, `path` what it tried to act on, `right` the right
 * it is missing. The message names all three, e.g. "permission denied: bob@garage.collective.local may not write
 * /media/x (missing right: write)".
 */
export class PermissionDeniedError extends PermissionError {
  static override name = 'PermissionDeniedError'
  override name = 'PermissionDeniedError'
  readonly subject: string
  readonly path: string
  readonly right: string

  /** `action` defaults to the right itself; `detail` replaces "missing right: ..." when the right is not the point */
  constructor (subject: string, path: string, right: string, options: { action?: string, detail?: string } = {}) {
    super(`permission denied: ${subject} may not ${options.action ?? right} ${path} (${options.detail ?? `missing right: ${right}`})`)
    this.subject = subject
    this.path = path
    this.right = right
  }
}

/** A rights list that does not parse: empty, an unknown right, a repeated right */
export class InvalidRightsError extends PermissionError {
  static override name = 'InvalidRightsError'
  override name = 'InvalidRightsError'
}

/** A grant subject that is neither `name@domain`, `*@domain` nor `*@*.domain` */
export class InvalidSubjectError extends PermissionError {
  static override name = 'InvalidSubjectError'
  override name = 'InvalidSubjectError'
}

/** A DataStore already exists at the path */
export class DataStoreExistsError extends PermissionError {
  static override name = 'DataStoreExistsError'
  override name = 'DataStoreExistsError'
}

/** The path lies inside an existing DataStore, or one lies inside it */
export class NestedDataStoreError extends PermissionError {
  static override name = 'NestedDataStoreError'
  override name = 'NestedDataStoreError'
}

/** No DataStore contains the path */
export class NoSuchDataStoreError extends PermissionError {
  static override name = 'NoSuchDataStoreError'
  override name = 'NoSuchDataStoreError'
}

/** A DataStore definition that cannot be stored: `/` as its path, an unknown strategy, a bad replica count */
export class InvalidDataStoreError extends PermissionError {
  static override name = 'InvalidDataStoreError'
  override name = 'InvalidDataStoreError'
}

/** A grant that cannot be stored as asked: a path outside the DataStore, an expiry in the past, a subject owning the DataStore */
export class InvalidGrantError extends PermissionError {
  static override name = 'InvalidGrantError'
  override name = 'InvalidGrantError'
}

/** A revoke that matches no grant the caller may remove */
export class NoSuchGrantError extends PermissionError {
  static override name = 'NoSuchGrantError'
  override name = 'NoSuchGrantError'
}

/** Base of every capability refusal; storage nodes answer DENIED with the subclass's name */
export class CapabilityError extends PermissionError {
  static override name = 'CapabilityError'
  override name = 'CapabilityError'
}

/** Bytes that do not decode as a capability, or a capability missing a required field */
export class MalformedCapabilityError extends CapabilityError {
  static override name = 'MalformedCapabilityError'
  override name = 'MalformedCapabilityError'
}

/** A token above MAX_CAPABILITY_BYTES, refused before it is decoded; also too many CIDs at issue time */
export class CapabilityTooLargeError extends CapabilityError {
  static override name = 'CapabilityTooLargeError'
  override name = 'CapabilityTooLargeError'
}

/** The capability's expiry has passed (or it claims to be issued in the future) */
export class CapabilityExpiredError extends CapabilityError {
  static override name = 'CapabilityExpiredError'
  override name = 'CapabilityExpiredError'
}

/** The signature does not verify with the issuer's key */
export class CapabilitySignatureError extends CapabilityError {
  static override name = 'CapabilitySignatureError'
  override name = 'CapabilitySignatureError'
}

/** The issuer is not one of the coordinators the verifier trusts */
export class UntrustedCapabilityIssuerError extends CapabilityError {
  static override name = 'UntrustedCapabilityIssuerError'
  override name = 'UntrustedCapabilityIssuerError'
}

/** The capability is for another operation */
export class CapabilityOperationError extends CapabilityError {
  static override name = 'CapabilityOperationError'
  override name = 'CapabilityOperationError'
}

/** The capability does not cover the chunk */
export class CapabilityCidError extends CapabilityError {
  static override name = 'CapabilityCidError'
  override name = 'CapabilityCidError'
}

/** The capability is addressed to another storage node */
export class CapabilityAudienceError extends CapabilityError {
  static override name = 'CapabilityAudienceError'
  override name = 'CapabilityAudienceError'
}

/** The capability was issued to another peer than the one presenting it */
export class CapabilityHolderError extends CapabilityError {
  static override name = 'CapabilityHolderError'
  override name = 'CapabilityHolderError'
}

/** Base of every invite refusal */
export class InviteError extends PermissionError {
  static override name = 'InviteError'
  override name = 'InviteError'
}

/** A join string or invite code that does not parse */
export class InvalidJoinStringError extends InviteError {
  static override name = 'InvalidJoinStringError'
  override name = 'InvalidJoinStringError'
}

/** No invite has this code */
export class UnknownInviteError extends InviteError {
  static override name = 'UnknownInviteError'
  override name = 'UnknownInviteError'
}

/** The invite's validity has passed */
export class InviteExpiredError extends InviteError {
  static override name = 'InviteExpiredError'
  override name = 'InviteExpiredError'
}

/** Every use of the invite has been redeemed */
export class InviteExhaustedError extends InviteError {
  static override name = 'InviteExhaustedError'
  override name = 'InviteExhaustedError'
}

/** The invite was revoked by its creator */
export class InviteRevokedError extends InviteError {
  static override name = 'InviteRevokedError'
  override name = 'InviteRevokedError'
}

/** An invite that cannot be created as asked: no grants, a bad use count or validity */
export class InvalidInviteError extends InviteError {
  static override name = 'InvalidInviteError'
  override name = 'InvalidInviteError'
}

/** Another peer already redeemed an invite under the requested name */
export class GuestNameTakenError extends InviteError {
  static override name = 'GuestNameTakenError'
  override name = 'GuestNameTakenError'
}

/** A redemption that cannot be certified: a peer ID that is not Ed25519, a name that is not a DNS label */
export class InvalidRedemptionError extends InviteError {
  static override name = 'InvalidRedemptionError'
  override name = 'InvalidRedemptionError'
}

/** Base of every revocation refusal */
export class RevocationError extends PermissionError {
  static override name = 'RevocationError'
  override name = 'RevocationError'
}

/** Bytes that do not decode as a revocation record, or a record missing a required part */
export class MalformedRevocationError extends RevocationError {
  static override name = 'MalformedRevocationError'
  override name = 'MalformedRevocationError'
}

/** The record's signature does not verify, or its signer may not revoke what it names */
export class RevocationSignatureError extends RevocationError {
  static override name = 'RevocationSignatureError'
  override name = 'RevocationSignatureError'
}
