import { logger } from '@libp2p/logger'
import type Database from 'better-sqlite3'
import { openSqlite } from '../util/sqlite.js'
import { CID } from 'multiformats/cid'
import {
  AlreadyExistsError,
  InvalidAttributeError,
  InvalidCidError,
  InvalidManifestError,
  InvalidPathError,
  IsADirectoryError,
  NotADirectoryError,
  NotEmptyError,
  NotFoundError,
  NotStartedError,
  SchemaVersionError,
  UnknownChunkError
} from './errors.js'
import { MAX_PATH_BYTES, baseName, normalizePath, parentOf, splitPath } from './paths.js'

export type EntryType = 'dir' | 'file'

export interface Entry {
  path: string
  type: EntryType
  /** Permission bits (0 - 0o7777) */
  mode: number
  /** Bytes; 0 for directories */
  size: number
  mtimeMs: number
  ctimeMs: number
  /** Federated name of the owner, e.g. `alice.home.collective.local` */
  owner: string
  /** 1 for a new file, +1 on every commit; always 0 for directories */
  version: number
  /**
   * The entry's row: kept across renames and new versions, new for a file created again. With `version` it names
   * one content, so a reader can tell a replaced file (`mv new old`) from the one it opened. 0: not known (a
   * DataStore root listed on another member's behalf, an answer from an older coordinator).
   */
  id: number
}

export interface ManifestChunk {
  cid: string
  size: number
}

export interface Manifest {
  /** The size the file was cut at; every chunk but the last has exactly this size in practice */
  chunkSize: number
  chunks: ManifestChunk[]
}

export interface FileManifest extends Manifest {
  size: number
  version: number
}

export interface ChunkLocations {
  cid: string
  peerIds: string[]
}

export interface MkdirOptions {
  /** Create missing ancestors and accept an existing directory, like `mkdir -p`. Default: false */
  parents?: boolean
  /** Default: 0o755 */
  mode?: number
  owner: string
}

export interface CommitFileOptions {
  manifest: Manifest
  /** Must equal the sum of the chunk sizes */
  size: number
  /** Default: 0o644 for a new file, unchanged for a replaced one */
  mode?: number
  /** Owner of a new file; a replaced file keeps its owner, as a POSIX write does */
  owner: string
  /** Default: now */
  mtimeMs?: number
  /** Nodes now holding the manifest's chunks; each cid must appear in the manifest */
  locations?: ChunkLocations[]
  /** Copies the file's chunks are to be kept at (its DataStore's replica count); repair restores them to it */
  replication?: number
}

export interface SetAttributesOptions {
  mode?: number
  mtimeMs?: number
  owner?: string
}

export interface ListOptions {
  /** Only names sorting after this one: the cursor for listing a huge directory page by page */
  after?: string
  /** Default: no limit */
  limit?: number
}

export interface RemoveOptions {
  /** Remove a directory with everything below it. Default: false */
  recursive?: boolean
}

export interface RemoveResult {
  files: number
  dirs: number
  bytes: number
}

export interface ChunkInfo {
  cid: string
  size: number
  /** How many manifest slots reference the chunk (a chunk repeated in one file counts each time) */
  refcount: number
  /** When the refcount last dropped to 0; undefined while referenced */
  zeroSinceMs?: number
  /** Copies its files asked for (0: the coordinator's default) */
  target: number
  /** Copies popularity keeps it at while it is read often; above 0, its extra copies are trimmed as it cools */
  hotTarget: number
  locations: string[]
}

export interface HotChunk {
  cid: string
  size: number
  refcount: number
  target: number
  hotTarget: number
  locations: string[]
}

export interface GarbageChunk {
  cid: string
  size: number
  locations: string[]
}

export interface Usage {
  files: number
  /** Directories, the root included */
  dirs: number
  /** Logical bytes of all files */
  bytes: number
  /** Distinct chunks known, garbage awaiting collection included */
  chunks: number
  /** Bytes of distinct referenced chunks: what the files take once deduplicated, before replication */
  uniqueBytes: number
  /** Bytes held on storage nodes: every recorded replica of every known chunk */
  storedBytes: number
}

export interface UnderReplicatedChunk {
  cid: string
  size: number
  /** Copies on the counted nodes */
  copies: number
  /** Copies it is to be kept at: the most any file referencing it asked for, at least the default target, or more while it is hot */
  target: number
  /** Copies its files ask for (at least the default target), without the extra ones popularity adds */
  base: number
  /** Every recorded location, counted or not (a dead node's copy stays recorded: it may come back) */
  locations: string[]
}

export interface UnderReplicatedOptions {
  /** Only chunks with at least one copy on one of these nodes: the ones a copy can be read from */
  readableFrom?: string[]
  /** Default: no limit */
  limit?: number
}

export interface DurabilitySummary {
  chunks: number
  /** Bytes of distinct chunks, before replication */
  bytes: number
  atTarget: number
  belowTarget: number
  /** Below target with exactly one counted copy left: one failure from loss */
  atOneCopy: number
  /** No counted copy at all */
  noCopy: number
  /** Kept above target for now because they are read often (popularity) */
  hot: number
  /** Where the copies are: every recorded location, counted or not */
  locations: Array<{ peerId: string, chunks: number, bytes: number }>
}

export interface MetadataStoreInit {
  /** SQLite database file; parent directories are created on start. `:memory:` keeps it in RAM (tests) */
  path: string
  /** Owner of `/` when the database is created. Default: 'root' */
  rootOwner?: string
  /** Clock for ctime/mtime defaults and refcount-zero timestamps. Default: Date.now */
  now?: () => number
}

interface EntryRow {
  id: number
  path: string
  parent: string | null
  name: string
  type: EntryType
  mode: number
  size: number
  mtime_ms: number
  ctime_ms: number
  owner: string
  version: number
  chunk_size: number | null
}

interface ChunkRow {
  cid: string
  size: number
  refcount: number
  zero_since_ms: number | null
  target: number
  hot_target: number
}

const SCHEMA_VERSION = 4

// Entries are keyed by normalized path (stat is one index lookup, the hot path under FUSE) and carry their
// parent's path so a listing is a range scan of (parent, name). Manifests hang off the entry id, so renaming
// a subtree rewrites paths but never touches manifests.
const SCHEMA_V1 = `
CREATE TABLE entry (
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE,
  parent TEXT,
  name TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('dir', 'file')),
  mode INTEGER NOT NULL,
  size INTEGER NOT NULL DEFAULT 0,
  mtime_ms INTEGER NOT NULL,
  ctime_ms INTEGER NOT NULL,
  owner TEXT NOT NULL,
  version INTEGER NOT NULL DEFAULT 0,
  chunk_size INTEGER
);
CREATE UNIQUE INDEX entry_children ON entry (parent, name);

CREATE TABLE chunk (
  cid TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  refcount INTEGER NOT NULL CHECK (refcount >= 0),
  zero_since_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX chunk_garbage ON chunk (zero_since_ms) WHERE zero_since_ms IS NOT NULL;

CREATE TABLE manifest_chunk (
  entry_id INTEGER NOT NULL REFERENCES entry (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  cid TEXT NOT NULL REFERENCES chunk (cid),
  size INTEGER NOT NULL,
  PRIMARY KEY (entry_id, idx)
) WITHOUT ROWID;
CREATE INDEX manifest_chunk_cid ON manifest_chunk (cid);

CREATE TABLE chunk_location (
  cid TEXT NOT NULL REFERENCES chunk (cid) ON DELETE CASCADE,
  node_peer_id TEXT NOT NULL,
  PRIMARY KEY (cid, node_peer_id)
) WITHOUT ROWID;
CREATE INDEX chunk_location_peer ON chunk_location (node_peer_id, cid);
`

// v2: the copies each chunk is kept at, the most any file referencing it asked for (its DataStore's replica count):
// repair restores every chunk to its own target, not to one coordinator-wide number. 0: the coordinator's default.
const SCHEMA_V2 = `
ALTER TABLE chunk ADD COLUMN target INTEGER NOT NULL DEFAULT 0;
`

// v3: the copies a chunk is kept at because it is read often (popularity), apart from what its files asked for, so
// that the extra copies can be given back when it cools, even after a restart forgot the read counts. 0: not hot.
const SCHEMA_V3 = `
ALTER TABLE chunk ADD COLUMN hot_target INTEGER NOT NULL DEFAULT 0;
CREATE INDEX chunk_hot ON chunk (cid) WHERE hot_target > 0;
`

// v4: entry ids are never given out twice. SQLite hands a new row the largest id + 1, so removing the newest entry
// and creating another would give it the same id, and a reader that opened the old file (id, version 1) could not
// tell the new one (id, version 1) from it. The floor keeps the largest id ever used; new entries take NEW_ENTRY_ID.
const SCHEMA_V4 = `
CREATE TABLE entry_id_floor (value INTEGER NOT NULL);
INSERT INTO entry_id_floor (value) SELECT coalesce(max(id), 0) FROM entry;
CREATE TRIGGER entry_id_kept AFTER DELETE ON entry BEGIN
  UPDATE entry_id_floor SET value = max(value, OLD.id);
END;
`

/** The id for an entry being inserted: above every id in use and every one removed (SCHEMA_V4) */
const NEW_ENTRY_ID = '(SELECT max(value, coalesce((SELECT max(id) FROM entry), 0)) + 1 FROM entry_id_floor)'

// Descendants of P are exactly the paths in [P + '/', P + '0'): '0' is the byte after '/', and SQLite compares
// TEXT bytewise, so the range is an index scan and never catches a sibling like `/a.txt` or `/ab`.
const SUBTREE = '(e.path = @path OR (e.path >= @lo AND e.path < @hi))'

function subtreeParams (path: string): { path: string, lo: string, hi: string } {
  const base = path === '/' ? '' : path
  return { path, lo: base + '/', hi: base + '0' }
}

function toEntry (row: EntryRow): Entry {
  return {
    path: row.path,
    type: row.type,
    mode: row.mode,
    size: row.size,
    mtimeMs: row.mtime_ms,
    ctimeMs: row.ctime_ms,
    owner: row.owner,
    version: row.version,
    id: row.id
  }
}

function checkMode (mode: number): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new InvalidAttributeError(`mode must be an integer between 0 and 0o7777, got ${mode}`)
  }
  return mode
}

function checkOwner (owner: string): string {
  if (typeof owner !== 'string' || owner.length === 0) {
    throw new InvalidAttributeError('owner must be a non-empty federated name')
  }
  return owner
}

function checkTime (ms: number, what: string): number {
  if (!Number.isSafeInteger(ms)) throw new InvalidAttributeError(`${what} must be an integer number of milliseconds, got ${ms}`)
  return ms
}

function canonicalCid (cid: string, ErrorClass: new (message: string) => Error = InvalidCidError): string {
  try {
    // one spelling per chunk, or refcounts would split between `bafk...` and `zb2...` forms of the same CID
    return CID.parse(cid).toString()
  } catch {
    throw new ErrorClass(`${JSON.stringify(cid)} is not a CID`)
  }
}

interface CheckedManifest {
  chunkSize: number
  chunks: ManifestChunk[]
  /** Distinct cids with their size and how many slots use them */
  counts: Map<string, { size: number, n: number }>
}

function checkManifest (manifest: Manifest, size: number): CheckedManifest {
  if (manifest == null || !Array.isArray(manifest.chunks)) throw new InvalidManifestError('manifest has no chunk list')
  const { chunkSize } = manifest
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
    throw new InvalidManifestError(`chunk size must be a positive integer, got ${chunkSize}`)
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidManifestError(`file size must be a non-negative integer, got ${size}`)

  const chunks: ManifestChunk[] = []
  const counts = new Map<string, { size: number, n: number }>()
  let total = 0
  for (const [i, chunk] of manifest.chunks.entries()) {
    const cid = canonicalCid(chunk.cid, InvalidManifestError)
    if (!Number.isSafeInteger(chunk.size) || chunk.size <= 0 || chunk.size > chunkSize) {
      throw new InvalidManifestError(`chunk ${i} (${cid}) has size ${chunk.size}, outside 1..${chunkSize}`)
    }
    const seen = counts.get(cid)
    if (seen == null) {
      counts.set(cid, { size: chunk.size, n: 1 })
    } else if (seen.size !== chunk.size) {
      throw new InvalidManifestError(`chunk ${cid} appears with sizes ${seen.size} and ${chunk.size}`)
    } else {
      seen.n++
    }
    chunks.push({ cid, size: chunk.size })
    total += chunk.size
  }
  if (total !== size) throw new InvalidManifestError(`chunk sizes add up to ${total} bytes, not the file size ${size}`)
  return { chunkSize, chunks, counts }
}

/**
 * The coordinator's persistent metadata: the namespace (directories, files and their manifests), chunk
 * reference counts, and which nodes hold which chunk. One SQLite database in WAL mode; every operation that
 * touches more than one row runs in a transaction, so a crash or an error midway leaves the previous state.
 *
 * Synchronous on purpose: SQLite calls take microseconds, and running each operation to completion on the
 * event loop makes the store a single writer without locks.
 */
export class MetadataStore {
  private readonly log = logger('collective:metadata:store')
  private readonly init: MetadataStoreInit
  private readonly now: () => number
  private db?: Database.Database
  private readonly statements = new Map<string, Database.Statement>()

  constructor (init: MetadataStoreInit) {
    this.init = init
    this.now = init.now ?? Date.now
  }

  isStarted (): boolean {
    return this.db != null
  }

  start (): void {
    if (this.db != null) return
    const db = openSqlite(this.init.path, db => { this.migrate(db) })
    this.db = db
    this.log('opened %s', this.init.path)
  }

  stop (): void {
    if (this.db == null) return
    this.statements.clear()
    this.db.close()
    this.db = undefined
    this.log('closed %s', this.init.path)
  }

  /** Runs `fn` (which may call any of this store's methods) as one atomic transaction */
  batch<T> (fn: () => T): T {
    return this.database().transaction(fn)()
  }

  // --- namespace -------------------------------------------------------------------------------------------

  /** @throws NotFoundError, InvalidPathError */
  stat (path: string): Entry {
    const p = normalizePath(path)
    const row = this.row(p)
    if (row == null) throw new NotFoundError(`no such file or directory: ${p}`)
    return toEntry(row)
  }

  /** Like stat, but undefined for a missing path */
  tryStat (path: string): Entry | undefined {
    const row = this.row(normalizePath(path))
    return row == null ? undefined : toEntry(row)
  }

  /**
   * The children of a directory sorted by name (bytewise), read through the (parent, name) index; page through
   * a huge directory with `after` + `limit`.
   *
   * @throws NotFoundError, NotADirectoryError
   */
  list (path: string, options: ListOptions = {}): Entry[] {
    const p = normalizePath(path)
    const row = this.row(p)
    if (row == null) throw new NotFoundError(`no such directory: ${p}`)
    if (row.type !== 'dir') throw new NotADirectoryError(`not a directory: ${p}`)
    const limit = options.limit ?? -1
    const rows = this.stmt<EntryRow>('SELECT * FROM entry WHERE parent = ? AND name > ? ORDER BY name LIMIT ?')
      .all(p, options.after ?? '', limit) as EntryRow[]
    return rows.map(toEntry)
  }

  /** @throws AlreadyExistsError, NotFoundError, NotADirectoryError */
  mkdir (path: string, options: MkdirOptions): Entry {
    const p = normalizePath(path)
    const mode = checkMode(options.mode ?? 0o755)
    const owner = checkOwner(options.owner)
    const parents = options.parents === true

    return this.batch(() => {
      if (!parents) {
        if (this.row(p) != null) throw new AlreadyExistsError(`already exists: ${p}`)
        this.requireDir(parentOf(p))
        return this.insertDir(p, mode, owner)
      }

      let current = '/'
      let entry = toEntry(this.row('/') as EntryRow)
      for (const segment of splitPath(p)) {
        current = current === '/' ? `/${segment}` : `${current}/${segment}`
        const row = this.row(current)
        if (row == null) {
          entry = this.insertDir(current, mode, owner)
        } else if (row.type !== 'dir') {
          if (current === p) throw new AlreadyExistsError(`already exists and is not a directory: ${p}`)
          throw new NotADirectoryError(`not a directory: ${current}`)
        } else {
          entry = toEntry(row)
        }
      }
      return entry
    })
  }

  /**
   * Creates or replaces a file with a new version, atomically: the new manifest's chunks gain references, the
   * old version's lose theirs, and the nodes now holding the chunks are recorded.
   *
   * @throws NotFoundError (parent), NotADirectoryError (parent), IsADirectoryError (target), InvalidManifestError
   */
  commitFile (path: string, options: CommitFileOptions): Entry {
    const p = normalizePath(path)
    const { chunkSize, chunks, counts } = checkManifest(options.manifest, options.size)
    const owner = checkOwner(options.owner)
    const mode = options.mode == null ? undefined : checkMode(options.mode)
    const mtimeMs = options.mtimeMs == null ? undefined : checkTime(options.mtimeMs, 'mtime')
    const locations = (options.locations ?? []).map(({ cid, peerIds }) => {
      const c = canonicalCid(cid, InvalidManifestError)
      if (!counts.has(c)) throw new InvalidManifestError(`location given for chunk ${c}, which is not in the manifest`)
      for (const peerId of peerIds) {
        if (typeof peerId !== 'string' || peerId.length === 0) throw new InvalidManifestError(`empty peer id for chunk ${c}`)
      }
      return { cid: c, peerIds }
    })

    return this.batch(() => {
      if (p === '/') throw new IsADirectoryError('/ is a directory')
      this.requireDir(parentOf(p))
      const old = this.row(p)
      if (old?.type === 'dir') throw new IsADirectoryError(`is a directory: ${p}`)
      const now = this.now()

      // reference the new chunks before releasing the old ones, so a chunk both versions share never reads as garbage
      const known = this.stmt<ChunkRow>('SELECT * FROM chunk WHERE cid = ?')
      const reference = this.stmt(`
        INSERT INTO chunk (cid, size, refcount, zero_since_ms, target) VALUES (?, ?, ?, NULL, ?)
        ON CONFLICT (cid) DO UPDATE SET refcount = refcount + excluded.refcount, zero_since_ms = NULL, target = max(target, excluded.target)`)
      for (const [cid, { size, n }] of counts) {
        const existing = known.get(cid) as ChunkRow | undefined
        if (existing != null && existing.size !== size) {
          throw new InvalidManifestError(`chunk ${cid} is known with size ${existing.size}, the manifest says ${size}`)
        }
        reference.run(cid, size, n, options.replication ?? 0)
      }

      let id: number
      if (old != null) {
        this.dereference(old.path, now)
        this.stmt('DELETE FROM manifest_chunk WHERE entry_id = ?').run(old.id)
        this.stmt(`
          UPDATE entry SET size = ?, mode = ?, mtime_ms = ?, ctime_ms = ?, version = version + 1, chunk_size = ?
          WHERE id = ?`).run(options.size, mode ?? old.mode, mtimeMs ?? now, now, chunkSize, old.id)
        id = old.id
      } else {
        const res = this.stmt(`
          INSERT INTO entry (id, path, parent, name, type, mode, size, mtime_ms, ctime_ms, owner, version, chunk_size)
          VALUES (${NEW_ENTRY_ID}, ?, ?, ?, 'file', ?, ?, ?, ?, ?, 1, ?)`)
          .run(p, parentOf(p), baseName(p), mode ?? 0o644, options.size, mtimeMs ?? now, now, owner, chunkSize)
        id = Number(res.lastInsertRowid)
        this.touch(parentOf(p), now)
      }

      const insertChunk = this.stmt('INSERT INTO manifest_chunk (entry_id, idx, cid, size) VALUES (?, ?, ?, ?)')
      chunks.forEach((chunk, idx) => insertChunk.run(id, idx, chunk.cid, chunk.size))

      const insertLocation = this.stmt('INSERT OR IGNORE INTO chunk_location (cid, node_peer_id) VALUES (?, ?)')
      for (const { cid, peerIds } of locations) {
        for (const peerId of peerIds) insertLocation.run(cid, peerId)
      }

      return toEntry(this.row(p) as EntryRow)
    })
  }

  /** @throws NotFoundError, IsADirectoryError */
  getManifest (path: string): FileManifest {
    const p = normalizePath(path)
    const row = this.row(p)
    if (row == null) throw new NotFoundError(`no such file: ${p}`)
    if (row.type !== 'file') throw new IsADirectoryError(`is a directory: ${p}`)
    const chunks = this.stmt<ManifestChunk>('SELECT cid, size FROM manifest_chunk WHERE entry_id = ? ORDER BY idx')
      .all(row.id) as ManifestChunk[]
    return { chunkSize: row.chunk_size ?? 0, chunks, size: row.size, version: row.version }
  }

  /** chmod / chown / utimens. @throws NotFoundError, InvalidAttributeError */
  setAttributes (path: string, attributes: SetAttributesOptions): Entry {
    const p = normalizePath(path)
    const mode = attributes.mode == null ? null : checkMode(attributes.mode)
    const owner = attributes.owner == null ? null : checkOwner(attributes.owner)
    const mtimeMs = attributes.mtimeMs == null ? null : checkTime(attributes.mtimeMs, 'mtime')
    return this.batch(() => {
      const res = this.stmt(`
        UPDATE entry SET mode = coalesce(?, mode), owner = coalesce(?, owner), mtime_ms = coalesce(?, mtime_ms), ctime_ms = ?
        WHERE path = ?`).run(mode, owner, mtimeMs, this.now(), p)
      if (res.changes === 0) throw new NotFoundError(`no such file or directory: ${p}`)
      return toEntry(this.row(p) as EntryRow)
    })
  }

  /**
   * Removes a file, an empty directory, or (recursive) a whole subtree; the chunks of removed files lose their
   * references (and become garbage after the grace period if nothing else uses them).
   *
   * @throws InvalidPathError (for `/`), NotFoundError, NotEmptyError
   */
  remove (path: string, options: RemoveOptions = {}): RemoveResult {
    const p = normalizePath(path)
    if (p === '/') throw new InvalidPathError('cannot remove /')
    return this.batch(() => {
      const row = this.row(p)
      if (row == null) throw new NotFoundError(`no such file or directory: ${p}`)
      if (row.type === 'dir' && options.recursive !== true &&
        this.stmt('SELECT 1 FROM entry WHERE parent = ? LIMIT 1').get(p) != null) {
        throw new NotEmptyError(`directory not empty: ${p}`)
      }
      const now = this.now()
      const counts = this.stmt<{ files: number, dirs: number, bytes: number }>(`
        SELECT coalesce(sum(e.type = 'file'), 0) AS files, coalesce(sum(e.type = 'dir'), 0) AS dirs,
               coalesce(sum(e.size), 0) AS bytes
        FROM entry e WHERE ${SUBTREE}`).get(subtreeParams(p)) as RemoveResult
      this.dereference(p, now)
      this.stmt(`DELETE FROM entry AS e WHERE ${SUBTREE}`).run(subtreeParams(p))
      this.touch(parentOf(p), now)
      return { files: counts.files, dirs: counts.dirs, bytes: counts.bytes }
    })
  }

  /**
   * Moves a file or a whole subtree. The destination must not exist, unless both are files: then the old
   * destination is replaced and its chunks lose their references.
   *
   * @throws InvalidPathError (`/`, or a directory into itself), NotFoundError, NotADirectoryError, AlreadyExistsError
   */
  rename (src: string, dst: string): Entry {
    const s = normalizePath(src)
    const d = normalizePath(dst)
    if (s === '/' || d === '/') throw new InvalidPathError('cannot rename / or rename onto /')

    return this.batch(() => {
      const row = this.row(s)
      if (row == null) throw new NotFoundError(`no such file or directory: ${s}`)
      if (s === d) return toEntry(row)
      if (d.startsWith(s + '/')) throw new InvalidPathError(`cannot move ${s} into itself (${d})`)
      this.requireDir(parentOf(d))
      if (row.type === 'dir') this.requireSubtreeFits(s, d)

      const now = this.now()
      const existing = this.row(d)
      if (existing != null) {
        if (row.type !== 'file' || existing.type !== 'file') {
          throw new AlreadyExistsError(`already exists: ${d}`)
        }
        this.dereference(d, now)
        this.stmt('DELETE FROM entry WHERE id = ?').run(existing.id)
      }

      this.stmt('UPDATE entry SET path = ?, parent = ?, name = ?, ctime_ms = ? WHERE id = ?')
        .run(d, parentOf(d), baseName(d), now, row.id)
      if (row.type === 'dir') {
        // substr/length count characters on both sides, so multi-byte names cut at the same place
        const { lo, hi } = subtreeParams(s)
        this.stmt(`
          UPDATE entry SET path = @dst || substr(path, length(@src) + 1), parent = @dst || substr(parent, length(@src) + 1)
          WHERE path >= @lo AND path < @hi`).run({ src: s, dst: d, lo, hi })
      }
      this.touch(parentOf(s), now)
      this.touch(parentOf(d), now)
      return toEntry(this.row(d) as EntryRow)
    })
  }

  /**
   * normalizePath checked only the new top path: a deeper one moved below `dst` may grow past the limit, and a
   * path no request can name is a file no one can read or remove
   */
  private requireSubtreeFits (src: string, dst: string): void {
    const { lo, hi } = subtreeParams(src)
    const longest = this.stmt<{ bytes: number | null }>('SELECT max(length(CAST(path AS BLOB))) AS bytes FROM entry WHERE path >= ? AND path < ?')
      .get(lo, hi) as { bytes: number | null }
    const moved = (longest.bytes ?? 0) - Buffer.byteLength(src) + Buffer.byteLength(dst)
    if (moved > MAX_PATH_BYTES) {
      throw new InvalidPathError(`path is longer than ${MAX_PATH_BYTES} bytes: moving ${src} to ${dst} would make a path below it ${moved} bytes long`)
    }
  }

  // --- chunks ----------------------------------------------------------------------------------------------

  /** What the store knows about a chunk, or undefined */
  getChunk (cid: string): ChunkInfo | undefined {
    const c = canonicalCid(cid)
    const row = this.stmt<ChunkRow>('SELECT * FROM chunk WHERE cid = ?').get(c) as ChunkRow | undefined
    if (row == null) return undefined
    return {
      cid: row.cid,
      size: row.size,
      refcount: row.refcount,
      zeroSinceMs: row.zero_since_ms ?? undefined,
      target: row.target,
      hotTarget: row.hot_target,
      locations: this.locationsOf(row.cid)
    }
  }

  /** Peer IDs of the nodes holding a chunk, sorted; empty for an unknown chunk */
  chunkLocations (cid: string): string[] {
    return this.locationsOf(canonicalCid(cid))
  }

  /**
   * Records that a node holds a chunk; resolves false when already recorded. A chunk no file references yet
   * (pushed ahead of its commit) can be registered by giving its size: it starts unreferenced, so if the
   * commit never comes it is collected after the grace period instead of leaking on the node.
   *
   * @throws UnknownChunkError for an unknown chunk without a size, InvalidManifestError for a size contradicting the known one
   */
  addChunkLocation (cid: string, peerId: string, options: { size?: number } = {}): boolean {
    const c = canonicalCid(cid)
    if (typeof peerId !== 'string' || peerId.length === 0) throw new InvalidAttributeError('peer id must be a non-empty string')
    return this.batch(() => {
      const row = this.stmt<ChunkRow>('SELECT * FROM chunk WHERE cid = ?').get(c) as ChunkRow | undefined
      if (row == null) {
        const size = options.size
        if (size == null) throw new UnknownChunkError(`unknown chunk ${c}: give its size to register it`)
        if (!Number.isSafeInteger(size) || size <= 0) throw new InvalidManifestError(`chunk size must be a positive integer, got ${size}`)
        this.stmt('INSERT INTO chunk (cid, size, refcount, zero_since_ms) VALUES (?, ?, 0, ?)').run(c, size, this.now())
      } else if (options.size != null && options.size !== row.size) {
        throw new InvalidManifestError(`chunk ${c} is known with size ${row.size}, not ${options.size}`)
      } else if (row.refcount === 0) {
        // A fresh copy of an unreferenced chunk belongs to a write in flight: restart its grace period.
        this.stmt('UPDATE chunk SET zero_since_ms = ? WHERE cid = ?').run(this.now(), c)
      }
      return this.stmt('INSERT OR IGNORE INTO chunk_location (cid, node_peer_id) VALUES (?, ?)').run(c, peerId).changes > 0
    })
  }

  /** Forgets that a node holds a chunk; false when it was not recorded */
  removeChunkLocation (cid: string, peerId: string): boolean {
    return this.stmt('DELETE FROM chunk_location WHERE cid = ? AND node_peer_id = ?').run(canonicalCid(cid), peerId).changes > 0
  }

  /** CIDs recorded on one node, sorted, page by page: what must be re-replicated when that node is lost */
  chunksOnPeer (peerId: string, options: ListOptions = {}): string[] {
    return this.stmt<string>('SELECT cid FROM chunk_location WHERE node_peer_id = ? AND cid > ? ORDER BY cid LIMIT ?')
      .pluck().all(peerId, options.after ?? '', options.limit ?? -1) as string[]
  }

  /**
   * Chunks unreferenced for longer than `olderThanMs` (the grace period), oldest first, with where they are.
   * The grace period covers writes in flight: a chunk pushed for a commit that has not landed yet may be
   * unreferenced for a moment. A collector should delete the chunk from its nodes, then `forgetChunk`.
   */
  garbageChunks (olderThanMs: number, now: number = this.now(), limit: number = -1): GarbageChunk[] {
    const rows = this.stmt<ChunkRow>(`
      SELECT * FROM chunk WHERE zero_since_ms IS NOT NULL AND zero_since_ms < ? AND refcount = 0
      ORDER BY zero_since_ms, cid LIMIT ?`).all(now - olderThanMs, limit) as ChunkRow[]
    return rows.map(row => ({ cid: row.cid, size: row.size, locations: this.locationsOf(row.cid) }))
  }

  /**
   * Drops a collected chunk and its locations. Refuses (false) if the chunk gained a reference since it was
   * listed as garbage, so a collector racing a write does not erase the record of a live chunk.
   */
  forgetChunk (cid: string): boolean {
    return this.stmt('DELETE FROM chunk WHERE cid = ? AND refcount = 0').run(canonicalCid(cid)).changes > 0
  }

  /**
   * How many referenced chunks have fewer than `target` copies on the given live nodes, and how many have at most
   * one. Scans every referenced chunk: for status and scrapes, not for hot paths.
   */
  replicationSummary (livePeerIds: string[], target: number): { chunks: number, underReplicated: number, atMostOneCopy: number } {
    const row = this.stmt<{ chunks: number, under: number | null, one: number | null }>(`
      SELECT count(*) AS chunks,
        sum(CASE WHEN live < ? THEN 1 ELSE 0 END) AS under,
        sum(CASE WHEN live <= 1 THEN 1 ELSE 0 END) AS one
      FROM (
        SELECT (SELECT count(*) FROM chunk_location l
                WHERE l.cid = c.cid AND l.node_peer_id IN (SELECT value FROM json_each(?))) AS live
        FROM chunk c WHERE c.refcount > 0
      )`).get(target, JSON.stringify(livePeerIds)) as { chunks: number, under: number | null, one: number | null }
    return { chunks: row.chunks, underReplicated: row.under ?? 0, atMostOneCopy: row.one ?? 0 }
  }

  /**
   * Referenced chunks with fewer than `target` copies (or their hot target) on the counted nodes, fewest copies
   * first (a chunk at one copy is one failure from loss) and every chunk below what its files ask for before the
   * hot ones that only lack popularity's extra copies, with where they are recorded: the repair work list, page by
   * page.
   */
  underReplicatedChunks (countedPeerIds: string[], target: number, options: UnderReplicatedOptions = {}): UnderReplicatedChunk[] {
    const rows = this.stmt<{ cid: string, size: number, copies: number, target: number, base: number }>(`
      SELECT cid, size, copies, target, base FROM (
        SELECT c.cid AS cid, c.size AS size, max(c.target, @target, c.hot_target) AS target, max(c.target, @target) AS base,
          (SELECT count(*) FROM chunk_location l WHERE l.cid = c.cid AND l.node_peer_id IN (SELECT value FROM json_each(@counted))) AS copies,
          (SELECT count(*) FROM chunk_location l WHERE l.cid = c.cid AND l.node_peer_id IN (SELECT value FROM json_each(@readable))) AS readable
        FROM chunk c WHERE c.refcount > 0
      ) WHERE copies < target AND (@any = 1 OR readable > 0)
      ORDER BY copies >= base, copies, cid LIMIT @limit`).all({
      counted: JSON.stringify(countedPeerIds),
      readable: JSON.stringify(options.readableFrom ?? []),
      any: options.readableFrom == null ? 1 : 0,
      target,
      limit: options.limit ?? -1
    }) as Array<{ cid: string, size: number, copies: number, target: number, base: number }>
    return rows.map(r => ({ ...r, locations: this.locationsOf(r.cid) }))
  }

  /**
   * Sets the copies popularity keeps a chunk at (0: not hot). Repair restores a chunk to the highest of its
   * files' target, the coordinator's default and this; resolves false for an unknown chunk.
   */
  setHotTarget (cid: string, copies: number): boolean {
    if (!Number.isSafeInteger(copies) || copies < 0) throw new InvalidAttributeError(`hot target must be a non-negative integer, got ${copies}`)
    return this.stmt('UPDATE chunk SET hot_target = ? WHERE cid = ?').run(copies, canonicalCid(cid)).changes > 0
  }

  /** Chunks with a hot target, page by page in CID order: the ones whose extra copies may have to be trimmed */
  hotChunks (options: ListOptions = {}): HotChunk[] {
    const rows = this.stmt<ChunkRow>('SELECT * FROM chunk WHERE hot_target > 0 AND cid > ? ORDER BY cid LIMIT ?')
      .all(options.after ?? '', options.limit ?? -1) as ChunkRow[]
    return rows.map(r => ({ cid: r.cid, size: r.size, refcount: r.refcount, target: r.target, hotTarget: r.hot_target, locations: this.locationsOf(r.cid) }))
  }

  /** How many chunks have a hot target above `base` copies (status and metrics) */
  hotChunkCount (base: number): number {
    return this.stmt<number>('SELECT count(*) FROM chunk WHERE hot_target > 0 AND hot_target > max(target, ?) AND refcount > 0').pluck().get(base) as number
  }

  /** How many chunks are recorded on one node, referenced or not: what a drain still has to move */
  chunkCountOnPeer (peerId: string): number {
    return this.stmt<number>('SELECT count(*) FROM chunk_location WHERE node_peer_id = ?').pluck().get(peerId) as number
  }

  /**
   * The durability of the files under `path` (a file is its own subtree): how many of their distinct chunks have
   * `target` copies on the counted nodes, how many fewer, and on which nodes the copies lie. Scans the subtree's
   * manifests: for reports, not for hot paths.
   *
   * @throws NotFoundError
   */
  durability (path: string, countedPeerIds: string[], target: number): DurabilitySummary {
    const p = normalizePath(path)
    if (this.row(p) == null) throw new NotFoundError(`no such file or directory: ${p}`)
    const sub = `SELECT DISTINCT mc.cid AS cid FROM manifest_chunk mc JOIN entry e ON e.id = mc.entry_id WHERE ${SUBTREE}`
    const params = { ...subtreeParams(p), counted: JSON.stringify(countedPeerIds), target }
    const totals = this.stmt<Record<string, number | null>>(`
      SELECT count(*) AS chunks, sum(size) AS bytes,
        sum(copies >= @target) AS atTarget, sum(copies < @target) AS belowTarget,
        sum(copies = 1 AND copies < @target) AS atOneCopy, sum(copies = 0) AS noCopy, sum(hot) AS hot
      FROM (
        SELECT c.size AS size, c.hot_target > max(c.target, @target) AS hot,
          (SELECT count(*) FROM chunk_location l WHERE l.cid = s.cid AND l.node_peer_id IN (SELECT value FROM json_each(@counted))) AS copies
        FROM (${sub}) s JOIN chunk c ON c.cid = s.cid
      )`).get(params) as Record<string, number | null>
    const locations = this.stmt<{ peerId: string, chunks: number, bytes: number }>(`
      SELECT l.node_peer_id AS peerId, count(*) AS chunks, sum(c.size) AS bytes
      FROM (${sub}) s JOIN chunk_location l ON l.cid = s.cid JOIN chunk c ON c.cid = s.cid
      GROUP BY l.node_peer_id ORDER BY l.node_peer_id`).all(subtreeParams(p)) as Array<{ peerId: string, chunks: number, bytes: number }>
    return {
      chunks: totals.chunks ?? 0,
      bytes: totals.bytes ?? 0,
      atTarget: totals.atTarget ?? 0,
      belowTarget: totals.belowTarget ?? 0,
      atOneCopy: totals.atOneCopy ?? 0,
      noCopy: totals.noCopy ?? 0,
      hot: totals.hot ?? 0,
      locations
    }
  }

  /** Totals for status and metrics; counts whole tables, so call it occasionally, not per request */
  usage (): Usage {
    return this.stmt<Usage>(`
      SELECT
        (SELECT count(*) FROM entry WHERE type = 'file') AS files,
        (SELECT count(*) FROM entry WHERE type = 'dir') AS dirs,
        (SELECT coalesce(sum(size), 0) FROM entry WHERE type = 'file') AS bytes,
        (SELECT count(*) FROM chunk) AS chunks,
        (SELECT coalesce(sum(size), 0) FROM chunk WHERE refcount > 0) AS uniqueBytes,
        (SELECT coalesce(sum(c.size), 0) FROM chunk_location l JOIN chunk c ON c.cid = l.cid) AS storedBytes`)
      .get() as Usage
  }

  /**
   * Usage of the subtree at `path` (a DataStore): its files, their logical bytes, and the bytes its chunks take on
   * the nodes, every copy counted (a chunk shared with files outside the subtree is counted here too).
   */
  subtreeUsage (path: string): Pick<Usage, 'files' | 'dirs' | 'bytes' | 'storedBytes'> {
    const params = subtreeParams(normalizePath(path))
    return this.stmt<Pick<Usage, 'files' | 'dirs' | 'bytes' | 'storedBytes'>>(`
      SELECT
        (SELECT count(*) FROM entry e WHERE ${SUBTREE} AND e.type = 'file') AS files,
        (SELECT count(*) FROM entry e WHERE ${SUBTREE} AND e.type = 'dir') AS dirs,
        (SELECT coalesce(sum(e.size), 0) FROM entry e WHERE ${SUBTREE} AND e.type = 'file') AS bytes,
        (SELECT coalesce(sum(c.size), 0) FROM chunk c JOIN chunk_location l ON l.cid = c.cid
          WHERE c.cid IN (SELECT m.cid FROM manifest_chunk m JOIN entry e ON e.id = m.entry_id WHERE ${SUBTREE})) AS storedBytes`)
      .get(params) as Pick<Usage, 'files' | 'dirs' | 'bytes' | 'storedBytes'>
  }

  // --- internals -------------------------------------------------------------------------------------------

  private migrate (db: Database.Database): void {
    const version = db.pragma('user_version', { simple: true }) as number
    if (version > SCHEMA_VERSION) {
      throw new SchemaVersionError(`metadata schema version ${version} is newer than this program supports (${SCHEMA_VERSION})`)
    }
    if (version >= 1 && version < SCHEMA_VERSION) {
      db.transaction(() => {
        if (version < 2) db.exec(SCHEMA_V2)
        if (version < 3) db.exec(SCHEMA_V3)
        db.exec(SCHEMA_V4)
        db.pragma(`user_version = ${SCHEMA_VERSION}`)
      })()
      this.log('migrated the metadata schema from version %d to %d', version, SCHEMA_VERSION)
    }
    if (version < 1) {
      db.transaction(() => {
        db.exec(SCHEMA_V1)
        db.exec(SCHEMA_V2)
        db.exec(SCHEMA_V3)
        db.exec(SCHEMA_V4)
        const now = this.now()
        db.prepare(`
          INSERT INTO entry (path, parent, name, type, mode, size, mtime_ms, ctime_ms, owner, version)
          VALUES ('/', NULL, '', 'dir', ?, 0, ?, ?, ?, 0)`).run(0o755, now, now, this.init.rootOwner ?? 'root')
        db.pragma(`user_version = ${SCHEMA_VERSION}`)
      })()
      this.log('created metadata schema version %d', SCHEMA_VERSION)
    }
  }

  private database (): Database.Database {
    if (this.db == null) throw new NotStartedError('the metadata store is not started')
    return this.db
  }

  private stmt<R = unknown> (sql: string): Database.Statement<unknown[], R> {
    let s = this.statements.get(sql)
    if (s == null) {
      s = this.database().prepare(sql)
      this.statements.set(sql, s)
    }
    return s as Database.Statement<unknown[], R>
  }

  private row (path: string): EntryRow | undefined {
    return this.stmt<EntryRow>('SELECT * FROM entry WHERE path = ?').get(path) as EntryRow | undefined
  }

  private requireDir (path: string): EntryRow {
    const row = this.row(path)
    if (row == null) throw new NotFoundError(`no such directory: ${path}`)
    if (row.type !== 'dir') throw new NotADirectoryError(`not a directory: ${path}`)
    return row
  }

  private insertDir (path: string, mode: number, owner: string): Entry {
    const now = this.now()
    this.stmt(`
      INSERT INTO entry (id, path, parent, name, type, mode, size, mtime_ms, ctime_ms, owner, version)
      VALUES (${NEW_ENTRY_ID}, ?, ?, ?, 'dir', ?, 0, ?, ?, ?, 0)`).run(path, parentOf(path), baseName(path), mode, now, now, owner)
    this.touch(parentOf(path), now)
    return toEntry(this.row(path) as EntryRow)
  }

  /** A directory's mtime/ctime change when entries are added to or removed from it, as in POSIX */
  private touch (dir: string, now: number): void {
    this.stmt('UPDATE entry SET mtime_ms = ?, ctime_ms = ? WHERE path = ?').run(now, now, dir)
  }

  /** Releases one reference per manifest slot of every file in the subtree at `path` (a file is its own subtree) */
  private dereference (path: string, now: number): void {
    // in SET, `refcount` is the value before this update, so `refcount = d.n` means "drops to zero now"
    this.stmt(`
      UPDATE chunk SET refcount = refcount - d.n,
        zero_since_ms = CASE WHEN refcount = d.n THEN @now ELSE zero_since_ms END
      FROM (
        SELECT mc.cid AS cid, count(*) AS n FROM manifest_chunk mc JOIN entry e ON e.id = mc.entry_id
        WHERE ${SUBTREE} GROUP BY mc.cid
      ) AS d
      WHERE chunk.cid = d.cid`).run({ ...subtreeParams(path), now })
  }

  private locationsOf (cid: string): string[] {
    return this.stmt<string>('SELECT node_peer_id FROM chunk_location WHERE cid = ? ORDER BY node_peer_id')
      .pluck().all(cid) as string[]
  }
}
