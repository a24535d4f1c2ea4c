export * from './errors.js'
export { RIGHTS, ALL_RIGHTS, NO_RIGHTS, parseRights, formatRights, isRight, toMask, fromMask, isSubset } from './rights.js'
export type { Right, RightMask } from './rights.js'
export { GUEST_PREFIX, principalOf, isGuestName, isGuestPrincipal, parseSubject, subjectsCovering } from './subjects.js'
export type { Caller, Subject } from './subjects.js'
export { PermissionsDatabase } from './database.js'
export type { PermissionsDatabaseInit, PermissionsDatabaseComponents } from './database.js'
export { DataStoreRegistry, STRATEGIES, DEFAULT_STRATEGY, DEFAULT_REPLICAS, MAX_REPLICAS } from './datastores.js'
export type { DataStore, Grant, Strategy, CreateDataStoreOptions, GrantOptions, RevokeOptions, DataStoreRegistryComponents } from './datastores.js'
export {
  issueCapability, issueCapabilities, verifyCapability, MAX_CAPABILITY_BYTES, MAX_CAPABILITY_CIDS, DEFAULT_CAPABILITY_TTL_MS, MAX_CLOCK_SKEW_MS
} from './capability.js'
export type { IssueCapabilityOptions, IssuedCapability, VerifyCapabilityOptions, VerifiedCapability } from './capability.js'
export { InviteStore, DEFAULT_INVITE_VALIDITY_MS, MAX_INVITE_VALIDITY_MS, MAX_INVITE_USES, MAX_INVITE_GRANTS } from './invites.js'
export type { Invite, InviteGrant, CreateInviteOptions, CreatedInvite, Redemption, InviteStoreComponents } from './invites.js'
export { formatJoinString, parseJoinString, generateInviteCode, parseInviteCode, MAX_JOIN_STRING_LENGTH } from './join-string.js'
export type { JoinInfo } from './join-string.js'
export { createRevocation, verifyRevocation, applyRevocation, RevocationStore, MAX_REVOCATION_BYTES } from './revocations.js'
export type { RevocationRecord, RevocationKindName, CreateRevocationOptions, RevocationStoreComponents, AddResult } from './revocations.js'
export {
  META_PROTOCOL, META_PROTOCOL_LIMITS, REQUIRED_RIGHT, metaStatusOf,
  InvalidMetaRequestError, NotOwnerError, UnknownWriteError, ConcurrentWriteError, TooManyWritesError, WriteTooLargeError
} from './meta-protocol.js'
export type { MetaProtocolLimits } from './meta-protocol.js'
