import { formatJoinString, MAX_JOIN_ADDRS } from '../permissions/join-string.js'
import { InvalidInviteError, parseRights } from '../permissions/index.js'
import { parseDuration } from '../util/units.js'
import type { ControlServer } from '../control/server.js'
import type { Invite, InviteGrant, InviteStore } from '../permissions/index.js'
import type { TrustStore, VerifiedIdentity } from '../identity/index.js'
import type { Multiaddr } from '@multiformats/multiaddr'

/** `invite create` on a coordinator that cannot certify anyone: its config names no member CA */
export class MemberCaNotConfiguredError extends Error {
  static name = 'MemberCaNotConfiguredError'
  name = 'MemberCaNotConfiguredError'
}

export interface InviteMethodsInit {
  /** The coordinator's own identity: invites are created and revoked in its member's name */
  identity: VerifiedIdentity
  invites: InviteStore
  /** Whether a member CA is configured: without one no redemption could be certified, so no invite is created */
  canCertify: boolean
  /** Named in the error when `canCertify` is false */
  configPath: string
  trustStore: TrustStore
  /** The coordinator's addresses, each ending in /p2p/<peer ID>: where newcomers dial */
  addrs: () => Multiaddr[]
  /** Told after an invite was created or revoked (metrics) */
  onChanged?: (change: 'created' | 'revoked') => void
}

export type InviteState = 'open' | 'used up' | 'expired' | 'revoked'

export function inviteState (invite: Invite, now = Date.now()): InviteState {
  if (invite.revokedAtMs != null) return 'revoked'
  if (now >= invite.expiresAtMs) return 'expired'
  return invite.uses >= invite.maxUses ? 'used up' : 'open'
}

function grantsParam (value: unknown): InviteGrant[] {
  if (!Array.isArray(value)) throw new TypeError('parameter "grants" must be a list of { path, rights }')
  return value.map(g => {
    if (typeof g?.path !== 'string' || typeof g?.rights !== 'string') throw new TypeError('every grant needs a path and rights, e.g. { path: "/shared", rights: "read+write" }')
    return { path: g.path, rights: parseRights(g.rights) }
  })
}

/**
 * `invite create`, `invite ls` and `invite revoke` on a coordinator. The code is returned once, with the join
 * string that carries it; the store keeps only its hash.
 */
export function registerInviteMethods (control: ControlServer, init: InviteMethodsInit): void {
  const { identity, invites, trustStore } = init
  const describe = (invite: Invite): Invite & { state: InviteState } => ({ ...invite, state: inviteState(invite) })

  control.register('invite.create', async p => {
    if (!init.canCertify) {
      throw new MemberCaNotConfiguredError(`this coordinator has no member CA (set memberCa in ${init.configPath} to the folder holding ca.key and ca.crt): it could not certify a newcomer, so it creates no invites`)
    }
    let validForMs: number | undefined
    if (p.validFor != null) {
      if (typeof p.validFor !== 'string') throw new TypeError('parameter "validFor" must be a duration such as 7d')
      validForMs = parseDuration(p.validFor)
    }
    if (p.maxUses != null && typeof p.maxUses !== 'number') throw new InvalidInviteError('max uses must be a whole number')
    const { code, invite } = invites.create(identity, { grants: grantsParam(p.grants), maxUses: p.maxUses as number | undefined, validForMs })
    const joinString = formatJoinString({ federation: trustStore.federation, rootFingerprint: trustStore.rootFingerprint, addrs: init.addrs().slice(0, MAX_JOIN_ADDRS), code })
    init.onChanged?.('created')
    return { code, joinString, ...describe(invite) }
  })

  control.register('invite.ls', async () => invites.list().map(describe))

  control.register('invite.revoke', async p => {
    if (typeof p.code !== 'string') throw new TypeError('parameter "code" must be an invite code or id')
    const invite = invites.revoke(identity, p.code)
    init.onChanged?.('revoked')
    return describe(invite)
  })
}
