import { normalizePath, splitPath } from '../metadata/paths.js'
import {
  DataStoreExistsError, InvalidDataStoreError, InvalidGrantError, InvalidRightsError, NestedDataStoreError,
  NoSuchDataStoreError, NoSuchGrantError, PermissionDeniedError
} from './errors.js'
import { ALL_RIGHTS, NO_RIGHTS, fromMask, isRight, isSubset, rightBit, toMask, type Right, type RightMask } from './rights.js'
import { isGuestPrincipal, parseSubject, principalOf, subjectsCovering, type Caller } from './subjects.js'
import type { PermissionsDatabase } from './database.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'

export type Strategy = 'media' | 'backup' | 'hybrid'

export const STRATEGIES: readonly Strategy[] = Object.freeze(['media', 'backup', 'hybrid'])

export const DEFAULT_STRATEGY: Strategy = 'hybrid'
export const DEFAULT_REPLICAS = 2
export const MAX_REPLICAS = 16

export interface DataStore {
  /** Normalized path, e.g. `/media` */
  path: string
  /** Principal of the owning member, e.g. `alice@home.collective.local` */
  owner: string
  strategy: Strategy
  replicas: number
  createdAtMs: number
  /** +1 on every change to the DataStore or its grants: the newer announcement wins */
  version: number
}

/** Rights one grantor gave one subject at one path, with one expiry */
export interface Grant {
  datastore: string
  path: string
  /** Canonical subject text: a principal or a wildcard */
  subject: string
  /** Principal that made the grant: the owner, or a grantee holding `share` */
  grantor: string
  rights: Right[]
  /** Undefined: until revoked */
  expiresAtMs?: number
}

export interface CreateDataStoreOptions {
  path: string
  /** Default: hybrid */
  strategy?: Strategy
  /** Copies of every chunk, 1..16. Default: 2 */
  replicas?: number
}

export interface GrantOptions {
  /** The DataStore's path or any path below it: the grant covers that subtree */
  path: string
  /** `bob@garage.collective.local`, `*@garage.collective.local` or `*@*.collective.local` */
  subject: string
  rights: Iterable<Right>
  /** Undefined: until revoked */
  expiresAtMs?: number
}

export interface RevokeOptions {
  /** The exact path the grant was made at */
  path: string
  /** The subject exactly as granted */
  subject: string
  /** Default: every right */
  rights?: Iterable<Right>
}

export interface DataStoreRegistryComponents {
  database: PermissionsDatabase
  logger: ComponentLogger
  /** Default: Date.now */
  now?: () => number
}

interface DataStoreRow {
  path: string
  owner: string
  strategy: Strategy
  replicas: number
  created_at_ms: number
  version: number
}

interface GrantRow {
  datastore: string
  path: string
  subject: string
  grantor: string
  right: Right
  expires_at_ms: number | null
}

function toDataStore (row: DataStoreRow): DataStore {
  return { path: row.path, owner: row.owner, strategy: row.strategy, replicas: row.replicas, createdAtMs: row.created_at_ms, version: row.version }
}

/** `path` itself and every ancestor, deepest first */
function selfAndAncestors (path: string): string[] {
  const segments = splitPath(path)
  const out = ['/']
  for (let i = 1; i <= segments.length; i++) out.push('/' + segments.slice(0, i).join('/'))
  return out.reverse()
}

/** `path` is `base` or lies below it; both already normalized (this runs per grant row in every check) */
function isWithin (path: string, base: string): boolean {
  return path === base || base === '/' || path.startsWith(base + '/')
}

/**
 * The DataStores this coordinator owns and their grants, persistent, and the permission check every metadata
 * operation goes through.
 *
 * Rights at a path are the union of the grants at that path and at its ancestors within the DataStore (a grant
 * covers its subtree), for subjects matching the caller's principal, that have not expired. The owner holds every
 * right everywhere in its DataStore. A grant made by anyone but the owner counts only while its grantor still holds
 * `share` at the grant's path, and never for more than the grantor's own rights there: rights are evaluated along
 * the grant chain at check time, so revoking or expiring a grantor's rights also withdraws what it passed on.
 */
export class DataStoreRegistry {
  private readonly components: DataStoreRegistryComponents
  private readonly log: Logger

  constructor (components: DataStoreRegistryComponents) {
    this.components = components
    this.log = components.logger.forComponent('collective:permissions:datastores')
  }

  private get db (): PermissionsDatabase {
    return this.components.database
  }

  private now (): number {
    return (this.components.now ?? Date.now)()
  }

  /**
   * Creates a DataStore owned by the caller's member. Guests own nothing.
   *
   * @throws InvalidDataStoreError, DataStoreExistsError, NestedDataStoreError, PermissionDeniedError, InvalidPathError
   */
  create (caller: Caller, options: CreateDataStoreOptions, now = this.now()): DataStore {
    const path = normalizePath(options.path)
    if (path === '/') throw new InvalidDataStoreError('/ cannot be a DataStore: DataStores are subtrees such as /media')
    const strategy = options.strategy ?? DEFAULT_STRATEGY
    if (!STRATEGIES.includes(strategy)) {
      throw new InvalidDataStoreError(`unknown strategy ${JSON.stringify(strategy)} (strategies: ${STRATEGIES.join(', ')})`)
    }
    const replicas = options.replicas ?? DEFAULT_REPLICAS
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
      throw new InvalidDataStoreError(`replicas must be an integer from 1 to ${MAX_REPLICAS}, got ${replicas}`)
    }
    const owner = principalOf(caller)
    if (isGuestPrincipal(owner)) throw new PermissionDeniedError(owner, path, 'create', { action: 'create the DataStore', detail: 'guests cannot own DataStores' })

    return this.db.transaction(() => {
      if (this.row(path) != null) throw new DataStoreExistsError(`a DataStore already exists at ${path}`)
      const enclosing = this.enclosing(path)
      if (enclosing != null) throw new NestedDataStoreError(`${path} lies inside the DataStore ${enclosing.path}; DataStores cannot nest`)
      const inner = this.db.stmt<{ path: string }>('SELECT path FROM perm_datastore WHERE path >= ? AND path < ? LIMIT 1')
        .get(path + '/', path + '0')
      if (inner != null) throw new NestedDataStoreError(`the DataStore ${inner.path} lies inside ${path}; DataStores cannot nest`)
      this.db.stmt('INSERT INTO perm_datastore (path, owner, strategy, replicas, created_at_ms, version) VALUES (?, ?, ?, ?, ?, 1)')
        .run(path, owner, strategy, replicas, now)
      this.log('%s created DataStore %s (%s, %d replicas)', owner, path, strategy, replicas)
      return toDataStore(this.row(path) as DataStoreRow)
    })
  }

  /** The DataStore at exactly `path`, if any */
  get (path: string): DataStore | undefined {
    const row = this.row(normalizePath(path))
    return row == null ? undefined : toDataStore(row)
  }

  list (): DataStore[] {
    return (this.db.stmt<DataStoreRow>('SELECT * FROM perm_datastore ORDER BY path').all() as DataStoreRow[]).map(toDataStore)
  }

  /** The DataStore containing `path`, if any. @throws InvalidPathError */
  find (path: string): DataStore | undefined {
    const row = this.enclosing(normalizePath(path))
    return row == null ? undefined : toDataStore(row)
  }

  /**
   * The DataStore containing `path`.
   *
   * @throws NoSuchDataStoreError, InvalidPathError
   */
  datastoreOf (path: string): DataStore {
    const ds = this.find(path)
    if (ds == null) throw new NoSuchDataStoreError(`no DataStore contains ${normalizePath(path)}`)
    return ds
  }

  /** Grants of a DataStore that have not expired, sorted by path, then subject */
  grants (datastore: string, now = this.now()): Grant[] {
    const ds = this.require(datastore)
    const rows = this.db.stmt<GrantRow>(`
      SELECT * FROM perm_grant WHERE datastore = ? AND (expires_at_ms IS NULL OR expires_at_ms > ?)
      ORDER BY path, subject, grantor`).all(ds.path, now) as GrantRow[]
    return groupGrants(rows)
  }

  /** The caller's rights at `path`, in canonical order (empty when it has none). @throws NoSuchDataStoreError */
  rights (caller: Caller, path: string, now = this.now()): Right[] {
    const p = normalizePath(path)
    return fromMask(this.mask(principalOf(caller), this.datastoreOf(p), p, now))
  }

  /**
   * Passes when the caller holds `right` at `path`; the check every metadata operation and every capability issue
   * goes through.
   *
   * @throws PermissionDeniedError (naming the principal, the path and the right), NoSuchDataStoreError
   */
  check (caller: Caller, path: string, right: Right, now = this.now()): void {
    if (!isRight(right)) throw new InvalidRightsError(`unknown right ${JSON.stringify(right)}`)
    const p = normalizePath(path)
    const principal = principalOf(caller)
    if ((this.mask(principal, this.datastoreOf(p), p, now) & rightBit(right)) === 0) {
      throw new PermissionDeniedError(principal, p, right)
    }
  }

  /**
   * When the caller's `right` at `path` lapses by expiry within `horizonMs` (undefined: it does not). Capabilities
   * are cut to this, so a time-limited grant stops working at its expiry even for tokens handed out before it.
   */
  lapseOf (caller: Caller, path: string, right: Right, horizonMs: number, now = this.now()): number | undefined {
    const p = normalizePath(path)
    const ds = this.datastoreOf(p)
    const principal = principalOf(caller)
    if (principal === ds.owner) return undefined
    const times = this.db.stmt<{ t: number }>(`
      SELECT DISTINCT expires_at_ms AS t FROM perm_grant WHERE datastore = ? AND expires_at_ms > ? AND expires_at_ms <= ?
      ORDER BY t`).all(ds.path, now, now + horizonMs) as Array<{ t: number }>
    // At the moment a grant expires it no longer counts (expires_at_ms > now), so the first such moment without
    // the right is when the right lapses.
    return times.find(({ t }) => (this.mask(principal, ds, p, t) & rightBit(right)) === 0)?.t
  }

  /**
   * Grants `subject` rights on the subtree at `path`. The owner may grant anything; anyone else needs `share` at
   * `path` and may grant only rights it holds there. Granting rights the subject already has from this grantor at
   * this path replaces their expiry.
   *
   * @throws PermissionDeniedError, InvalidGrantError, InvalidSubjectError, InvalidRightsError, NoSuchDataStoreError
   */
  grant (caller: Caller, options: GrantOptions, now = this.now()): Grant {
    return this.grantAs(principalOf(caller), options, now)
  }

  /**
   * grant, made by a principal rather than a connected caller: for invites, whose creator's authority is checked
   * again here when a guest redeems. Never pass a principal a peer sent over the wire.
   */
  grantAs (grantor: string, options: GrantOptions, now = this.now()): Grant {
    const path = normalizePath(options.path)
    const subject = parseSubject(options.subject)
    const mask = toMask(options.rights)
    if (mask === NO_RIGHTS) throw new InvalidRightsError('a grant needs at least one right')
    const expires = options.expiresAtMs
    if (expires != null && (!Number.isSafeInteger(expires) || expires <= now)) {
      throw new InvalidGrantError(`expiry ${Number.isFinite(expires) ? new Date(expires).toISOString() : String(expires)} is not in the future`)
    }

    return this.db.transaction(() => {
      const ds = this.datastoreOf(path)
      if (subject.kind === 'principal' && subject.text === ds.owner) {
        throw new InvalidGrantError(`${subject.text} owns ${ds.path} and already holds every right`)
      }
      this.assertMayGrant(grantor, ds, path, mask, now)
      const insert = this.db.stmt(`
        INSERT OR REPLACE INTO perm_grant (datastore, path, subject, grantor, right, expires_at_ms, granted_at_ms)
        VALUES (?, ?, ?, ?, ?, ?, ?)`)
      for (const right of fromMask(mask)) insert.run(ds.path, path, subject.text, grantor, right, expires ?? null, now)
      this.bump(ds.path)
      this.log('%s granted %s %s on %s', grantor, subject.text, fromMask(mask).join('+'), path)
      return { datastore: ds.path, path, subject: subject.text, grantor, rights: fromMask(mask), expiresAtMs: expires }
    })
  }

  /**
   * Removes `rights` (default: all) of the grants to `subject` at exactly `path`. The owner removes them whoever
   * granted them; anyone else needs `share` at `path` and removes only the grants it made. Returns the rights
   * removed.
   *
   * @throws NoSuchGrantError when nothing matched, PermissionDeniedError, NoSuchDataStoreError
   */
  revoke (caller: Caller, options: RevokeOptions, now = this.now()): Right[] {
    const path = normalizePath(options.path)
    const subject = parseSubject(options.subject)
    const mask = options.rights == null ? ALL_RIGHTS : toMask(options.rights)
    if (mask === NO_RIGHTS) throw new InvalidRightsError('nothing to revoke: no rights given')
    const principal = principalOf(caller)

    return this.db.transaction(() => {
      const ds = this.datastoreOf(path)
      const isOwner = principal === ds.owner
      if (!isOwner && (this.mask(principal, ds, path, now) & rightBit('share')) === 0) {
        throw new PermissionDeniedError(principal, path, 'share', { action: 'revoke grants on' })
      }
      const rights = fromMask(mask)
      const rows = this.db.stmt<GrantRow>(`
        SELECT * FROM perm_grant WHERE datastore = ? AND path = ? AND subject = ?
        AND right IN (SELECT value FROM json_each(?)) AND (? OR grantor = ?)`)
        .all(ds.path, path, subject.text, JSON.stringify(rights), isOwner ? 1 : 0, principal) as GrantRow[]
      if (rows.length === 0) {
        throw new NoSuchGrantError(`no grant ${isOwner ? '' : `by ${principal} `}to ${subject.text} of ${rights.join('+')} at ${path}`)
      }
      const del = this.db.stmt('DELETE FROM perm_grant WHERE datastore = ? AND path = ? AND subject = ? AND grantor = ? AND right = ?')
      for (const row of rows) del.run(row.datastore, row.path, row.subject, row.grantor, row.right)
      this.bump(ds.path)
      const removed = toMask(rows.map(row => row.right))
      this.log('%s revoked %s %s on %s', principal, subject.text, fromMask(removed).join('+'), path)
      return fromMask(removed)
    })
  }

  /** Deletes grant rows whose expiry has passed; they no longer count anyway. Returns how many went. */
  pruneExpired (now = this.now()): number {
    return this.db.stmt('DELETE FROM perm_grant WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?').run(now).changes
  }

  /** Used by invites: the same rule as grant, without writing anything. @throws PermissionDeniedError */
  assertMayGrant (grantor: string, ds: DataStore, path: string, mask: RightMask, now: number): void {
    if (!isWithin(path, ds.path)) throw new InvalidGrantError(`${path} is outside the DataStore ${ds.path}`)
    if (grantor === ds.owner) return
    const own = this.mask(grantor, ds, path, now)
    if ((own & rightBit('share')) === 0) throw new PermissionDeniedError(grantor, path, 'share', { action: 'grant rights on' })
    if (!isSubset(mask, own)) {
      const missing = fromMask(mask & ~own)[0]
      // the share rule: a grantee passes on at most what it holds itself
      throw new PermissionDeniedError(grantor, path, missing, { action: `grant ${missing} on` })
    }
  }

  private mask (principal: string, ds: DataStore, path: string, now: number): RightMask {
    const lookup = this.db.stmt<Pick<GrantRow, 'path' | 'grantor' | 'right'>>(`
      SELECT path, grantor, right FROM perm_grant WHERE datastore = ? AND path IN (SELECT value FROM json_each(?))
      AND subject IN (SELECT value FROM json_each(?)) AND (expires_at_ms IS NULL OR expires_at_ms > ?)`)
    // `visiting` breaks cycles (alice shares with bob, bob shares back with alice): a chain through a principal
    // already being evaluated adds nothing it could not add on its own
    const evaluate = (who: string, at: string, visiting: Set<string>): RightMask => {
      if (who === ds.owner) return ALL_RIGHTS
      const inner = new Set(visiting).add(who)
      const chain = selfAndAncestors(at).filter(p => isWithin(p, ds.path))
      const rows = lookup.all(ds.path, JSON.stringify(chain), JSON.stringify(subjectsCovering(who)), now) as Array<Pick<GrantRow, 'path' | 'grantor' | 'right'>>
      let result = NO_RIGHTS
      for (const row of rows) {
        const bit = rightBit(row.right)
        if ((result & bit) !== 0 || inner.has(row.grantor)) continue
        const theirs = evaluate(row.grantor, row.path, inner)
        if ((theirs & rightBit('share')) !== 0) result |= bit & theirs
      }
      return result
    }
    return evaluate(principal, path, new Set())
  }

  private bump (path: string): void {
    this.db.stmt('UPDATE perm_datastore SET version = version + 1 WHERE path = ?').run(path)
  }

  private row (path: string): DataStoreRow | undefined {
    return this.db.stmt<DataStoreRow>('SELECT * FROM perm_datastore WHERE path = ?').get(path) as DataStoreRow | undefined
  }

  private enclosing (path: string): DataStoreRow | undefined {
    return this.db.stmt<DataStoreRow>('SELECT * FROM perm_datastore WHERE path IN (SELECT value FROM json_each(?)) LIMIT 1')
      .get(JSON.stringify(selfAndAncestors(path))) as DataStoreRow | undefined
  }

  private require (path: string): DataStore {
    const ds = this.get(path)
    if (ds == null) throw new NoSuchDataStoreError(`no DataStore at ${normalizePath(path)}`)
    return ds
  }
}

/** Folds per-right rows into one grant per (path, subject, grantor, expiry) */
function groupGrants (rows: GrantRow[]): Grant[] {
  const out = new Map<string, Grant & { mask: RightMask }>()
  for (const row of rows) {
    const key = [row.path, row.subject, row.grantor, row.expires_at_ms ?? ''].join('\n')
    let g = out.get(key)
    if (g == null) {
      g = { datastore: row.datastore, path: row.path, subject: row.subject, grantor: row.grantor, rights: [], mask: NO_RIGHTS }
      if (row.expires_at_ms != null) g.expiresAtMs = row.expires_at_ms
      out.set(key, g)
    }
    g.mask |= rightBit(row.right)
  }
  return [...out.values()].map(({ mask, ...g }) => ({ ...g, rights: fromMask(mask) }))
}
