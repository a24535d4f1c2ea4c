import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { normalizePath } from '../metadata/paths.js'
import { validateDomainLabel } from '../identity/index.js'
import {
  GuestNameTakenError, InvalidInviteError, InvalidRedemptionError, InviteExhaustedError, InviteExpiredError,
  InviteRevokedError, PermissionDeniedError, UnknownInviteError
} from './errors.js'
import { generateInviteCode, parseInviteCode } from './join-string.js'
import { NO_RIGHTS, fromMask, toMask, type Right } from './rights.js'
import { GUEST_PREFIX, isGuestPrincipal, principalOf, type Caller } from './subjects.js'
import type { PermissionsDatabase } from './database.js'
import type { DataStoreRegistry, Grant } from './datastores.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'

export const DEFAULT_INVITE_VALIDITY_MS = 7 * 24 * 3_600_000
export const MAX_INVITE_VALIDITY_MS = 365 * 24 * 3_600_000
export const MAX_INVITE_USES = 1000
export const MAX_INVITE_GRANTS = 32

export interface InviteGrant {
  /** A path in a DataStore this coordinator owns; the guest's grant covers its subtree */
  path: string
  rights: Right[]
}

export interface Invite {
  /** Public handle for `invite ls` and `invite revoke`: the first 8 hex digits of the code's SHA-256 */
  id: string
  grants: InviteGrant[]
  maxUses: number
  uses: number
  expiresAtMs: number
  createdAtMs: number
  /** Principal of the member that created it; guests are certified in its domain and granted in its name */
  createdBy: string
  revokedAtMs?: number
}

export interface CreateInviteOptions {
  grants: InviteGrant[]
  /** Default: 1 */
  maxUses?: number
  /** Default: 7 days */
  validForMs?: number
}

export interface CreatedInvite {
  /** The secret: shown once, stored only as a hash */
  code: string
  invite: Invite
}

export interface Redemption {
  /** Federated name to certify, `guest-dave@office.collective.local`: role `client`, the inviting member's CA */
  name: string
  /** Its local part, `guest-dave` */
  local: string
  peerId: string
  inviteId: string
  grants: Grant[]
  /** A repeat of an earlier successful redemption: nothing was counted or granted this time */
  retry: boolean
}

export interface InviteStoreComponents {
  database: PermissionsDatabase
  datastores: DataStoreRegistry
  logger: ComponentLogger
  /** Default: Date.now */
  now?: () => number
}

interface InviteRow {
  code_hash: string
  id: string
  grants: string
  max_uses: number
  uses: number
  expires_at_ms: number
  created_at_ms: number
  created_by: string
  revoked_at_ms: number | null
}

interface RedemptionRow {
  name: string
  peer_id: string
  code_hash: string
}

function hashCode (code: string): string {
  return createHash('sha256').update(code).digest('hex')
}

function toInvite (row: InviteRow): Invite {
  const invite: Invite = {
    id: row.id,
    grants: JSON.parse(row.grants),
    maxUses: row.max_uses,
    uses: row.uses,
    expiresAtMs: row.expires_at_ms,
    createdAtMs: row.created_at_ms,
    createdBy: row.created_by
  }
  if (row.revoked_at_ms != null) invite.revokedAtMs = row.revoked_at_ms
  return invite
}

/**
 * Invites: pre-authorised codes a member hands to a person who has no identity in the federation yet. Redeeming
 * one names a guest in the creator's domain for the redeemer's own key and grants it exactly the invite's access,
 * in the creator's name (so the share rule still applies, and revoking the creator's rights withdraws the
 * guest's). Persistent; codes are stored only as SHA-256 hashes.
 */
export class InviteStore {
  private readonly components: InviteStoreComponents
  private readonly log: Logger

  constructor (components: InviteStoreComponents) {
    this.components = components
    this.log = components.logger.forComponent('collective:permissions:invites')
  }

  private get db (): PermissionsDatabase {
    return this.components.database
  }

  private now (): number {
    return (this.components.now ?? Date.now)()
  }

  /**
   * Creates an invite. The creator must be a member (not a guest) allowed to grant every right of every grant
   * right now; redemption checks that again.
   *
   * @throws InvalidInviteError, PermissionDeniedError, NoSuchDataStoreError, InvalidRightsError, InvalidPathError
   */
  create (caller: Caller, options: CreateInviteOptions, now = this.now()): CreatedInvite {
    const createdBy = principalOf(caller)
    if (isGuestPrincipal(createdBy)) throw new PermissionDeniedError(createdBy, '/', 'share', { action: 'invite others to', detail: 'guests cannot create invites' })
    if (!Array.isArray(options.grants) || options.grants.length === 0) throw new InvalidInviteError('an invite needs at least one grant')
    if (options.grants.length > MAX_INVITE_GRANTS) throw new InvalidInviteError(`an invite carries at most ${MAX_INVITE_GRANTS} grants`)
    const maxUses = options.maxUses ?? 1
    if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > MAX_INVITE_USES) {
      throw new InvalidInviteError(`max uses must be an integer from 1 to ${MAX_INVITE_USES}, got ${maxUses}`)
    }
    const validForMs = options.validForMs ?? DEFAULT_INVITE_VALIDITY_MS
    if (!Number.isSafeInteger(validForMs) || validForMs <= 0 || validForMs > MAX_INVITE_VALIDITY_MS) {
      throw new InvalidInviteError(`validity must be a positive duration of at most 365 days, got ${validForMs} ms`)
    }
    const grants = options.grants.map(g => {
      const mask = toMask(g.rights)
      if (mask === NO_RIGHTS) throw new InvalidInviteError(`the grant on ${g.path} has no rights`)
      return { path: normalizePath(g.path), rights: fromMask(mask) }
    })
    for (const g of grants) {
      const ds = this.components.datastores.datastoreOf(g.path)
      this.components.datastores.assertMayGrant(createdBy, ds, g.path, toMask(g.rights), now)
    }

    return this.db.transaction(() => {
      let code: string
      let hash: string
      // 32 bits of id: a clash is rare but possible, and the id must stay unique for `invite revoke ID`
      do {
        code = generateInviteCode()
        hash = hashCode(code)
      } while (this.db.stmt('SELECT 1 FROM perm_invite WHERE id = ?').get(hash.slice(0, 8)) != null)
      this.db.stmt(`
        INSERT INTO perm_invite (code_hash, id, grants, max_uses, expires_at_ms, created_at_ms, created_by)
        VALUES (?, ?, ?, ?, ?, ?, ?)`).run(hash, hash.slice(0, 8), JSON.stringify(grants), maxUses, now + validForMs, now, createdBy)
      this.log('%s created invite %s (%d uses)', createdBy, hash.slice(0, 8), maxUses)
      return { code, invite: toInvite(this.row(hash) as InviteRow) }
    })
  }

  /** Every invite, newest first, with its uses, expiry and revocation */
  list (): Invite[] {
    return (this.db.stmt<InviteRow>('SELECT * FROM perm_invite ORDER BY created_at_ms DESC, id').all() as InviteRow[]).map(toInvite)
  }

  /**
   * Revokes an invite by its code or its id. Only its creator (any component of the creating member) may.
   * Revoking stops further redemptions; guests already admitted keep their grants until those are revoked.
   *
   * @throws UnknownInviteError, PermissionDeniedError
   */
  revoke (caller: Caller, codeOrId: string, now = this.now()): Invite {
    const principal = principalOf(caller)
    return this.db.transaction(() => {
      const row = this.lookup(codeOrId)
      if (row.created_by !== principal) {
        throw new PermissionDeniedError(principal, `invite ${row.id}`, 'share', { action: 'revoke', detail: `only ${row.created_by} may revoke it` })
      }
      if (row.revoked_at_ms == null) this.db.stmt('UPDATE perm_invite SET revoked_at_ms = ? WHERE code_hash = ?').run(now, row.code_hash)
      this.log('%s revoked invite %s', principal, row.id)
      return toInvite(this.row(row.code_hash) as InviteRow)
    })
  }

  /**
   * Admits a newcomer: validates everything first, then, in one transaction, grants the invite's access to the
   * guest name and counts the use. A refused request counts nothing. Repeating a successful redemption (same code,
   * same peer, same name: a retry after a lost answer) returns the same result without counting a use.
   *
   * @param requestedName the local part the newcomer asked for; `guest-` is prefixed unless present
   * @throws InvalidJoinStringError (malformed code), InvalidRedemptionError, UnknownInviteError, InviteRevokedError,
   *   InviteExpiredError, InviteExhaustedError, GuestNameTakenError, PermissionDeniedError (the creator lost the
   *   right to grant what the invite grants)
   */
  redeem (code: string, peerId: string, requestedName: string, now = this.now()): Redemption {
    const hash = hashCode(parseInviteCode(code))
    let peer: string
    try {
      const id = peerIdFromString(peerId)
      if (id.type !== 'Ed25519') throw new Error(`a ${id.type} key`)
      peer = id.toString()
    } catch (err) {
      throw new InvalidRedemptionError(`invalid peer ID ${JSON.stringify(peerId)}: an Ed25519 libp2p peer ID is required (${(err as Error).message})`)
    }
    const requested = typeof requestedName === 'string' ? requestedName.trim().toLowerCase() : ''
    const local = requested.startsWith(GUEST_PREFIX) ? requested : GUEST_PREFIX + requested
    try {
      validateDomainLabel(requested, 'name')
      validateDomainLabel(local, 'guest name')
    } catch (err) {
      throw new InvalidRedemptionError((err as Error).message)
    }

    return this.db.transaction(() => {
      const row = this.row(hash)
      if (row == null) throw new UnknownInviteError('no such invite code')
      const name = `${local}@${row.created_by.slice(row.created_by.indexOf('@') + 1)}`
      const taken = this.db.stmt<RedemptionRow>('SELECT * FROM perm_redemption WHERE name = ? OR peer_id = ?').all(name, peer) as RedemptionRow[]
      const retry = taken.find(r => r.name === name && r.peer_id === peer && r.code_hash === hash)
      if (retry != null) return this.redemption(row, name, local, peer, now, true)

      if (row.revoked_at_ms != null) throw new InviteRevokedError(`invite ${row.id} was revoked`)
      if (now >= row.expires_at_ms) throw new InviteExpiredError(`invite ${row.id} expired at ${new Date(row.expires_at_ms).toISOString()}`)
      if (row.uses >= row.max_uses) throw new InviteExhaustedError(`invite ${row.id} has been used ${row.uses} of ${row.max_uses} times`)
      for (const r of taken) {
        if (r.name === name) throw new GuestNameTakenError(`the name ${name} is taken; ask for another`)
        throw new InvalidRedemptionError(`peer ${peer} was already admitted as ${r.name}`)
      }

      const invite = toInvite(row)
      for (const g of invite.grants) {
        this.components.datastores.grantAs(row.created_by, { path: g.path, subject: name, rights: g.rights }, now)
      }
      this.db.stmt('UPDATE perm_invite SET uses = uses + 1 WHERE code_hash = ?').run(hash)
      this.db.stmt('INSERT INTO perm_redemption (name, peer_id, code_hash, redeemed_at_ms) VALUES (?, ?, ?, ?)').run(name, peer, hash, now)
      this.log('invite %s redeemed by %s as %s', row.id, peer, name)
      return this.redemption(row, name, local, peer, now, false)
    })
  }

  /**
   * Whether any invite can still admit someone: not revoked and not expired. The handshake admits newcomers without
   * a certificate only then. A used-up invite still counts until it expires, so a newcomer whose answer was lost
   * can repeat its redemption.
   */
  hasOpen (now = this.now()): boolean {
    return this.db.stmt('SELECT 1 FROM perm_invite WHERE revoked_at_ms IS NULL AND expires_at_ms > ? LIMIT 1').get(now) != null
  }

  private redemption (row: InviteRow, name: string, local: string, peerId: string, now: number, retry: boolean): Redemption {
    const grants = toInvite(row).grants.flatMap(g => {
      const ds = this.components.datastores.datastoreOf(g.path)
      return this.components.datastores.grants(ds.path, now).filter(x => x.subject === name && x.path === g.path && x.grantor === row.created_by)
    })
    return { name, local, peerId, inviteId: row.id, grants, retry }
  }

  private row (hash: string): InviteRow | undefined {
    return this.db.stmt<InviteRow>('SELECT * FROM perm_invite WHERE code_hash = ?').get(hash) as InviteRow | undefined
  }

  private lookup (codeOrId: string): InviteRow {
    const text = typeof codeOrId === 'string' ? codeOrId.trim().toLowerCase() : ''
    const row = /^[0-9a-f]{8}$/.test(text)
      ? this.db.stmt<InviteRow>('SELECT * FROM perm_invite WHERE id = ?').get(text) as InviteRow | undefined
      : this.row(hashCode(parseInviteCode(text)))
    if (row == null) throw new UnknownInviteError(`no invite ${JSON.stringify(codeOrId)}`)
    return row
  }
}
