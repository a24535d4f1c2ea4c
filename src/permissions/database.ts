import type Database from 'better-sqlite3'
import { openSqlite } from '../util/sqlite.js'
import { NotStartedError, SchemaVersionError } from '../metadata/errors.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'

export interface PermissionsDatabaseInit {
  /**
   * SQLite database file; parent directories are created on start. `:memory:` keeps it in RAM (tests). The tables
   * carry their own schema version (not `user_version`), so this may be the metadata store's file.
   */
  path: string
}

export interface PermissionsDatabaseComponents {
  logger: ComponentLogger
}

const SCHEMA_VERSION = 1

// Grants keep one row per right: each right of a grant has its own expiry, and revoking some rights deletes rows
// instead of rewriting a set. Invites are keyed by the SHA-256 of their code, so the database never holds a
// usable code.
const SCHEMA_V1 = `
CREATE TABLE perm_datastore (
  path TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  strategy TEXT NOT NULL,
  replicas INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  version INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE perm_grant (
  datastore TEXT NOT NULL REFERENCES perm_datastore (path) ON DELETE CASCADE,
  path TEXT NOT NULL,
  subject TEXT NOT NULL,
  grantor TEXT NOT NULL,
  right TEXT NOT NULL,
  expires_at_ms INTEGER,
  granted_at_ms INTEGER NOT NULL,
  PRIMARY KEY (datastore, path, subject, grantor, right)
) WITHOUT ROWID;

CREATE TABLE perm_invite (
  code_hash TEXT PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  grants TEXT NOT NULL,
  max_uses INTEGER NOT NULL,
  uses INTEGER NOT NULL DEFAULT 0,
  expires_at_ms INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  revoked_at_ms INTEGER
) WITHOUT ROWID;

CREATE TABLE perm_redemption (
  name TEXT PRIMARY KEY,
  peer_id TEXT NOT NULL,
  code_hash TEXT NOT NULL REFERENCES perm_invite (code_hash),
  redeemed_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE perm_revocation (
  key TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  record BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX perm_revocation_version ON perm_revocation (version);

CREATE TABLE perm_schema (version INTEGER NOT NULL);
INSERT INTO perm_schema (version) VALUES (1);
`

/**
 * The SQLite database behind the DataStore registry, the invites and the revocations: one file, WAL, one writer
 * (the coordinator's event loop), so a redemption can count its use and apply its grants in one transaction.
 */
export class PermissionsDatabase {
  private readonly init: PermissionsDatabaseInit
  private readonly log: Logger
  private db?: Database.Database
  private readonly statements = new Map<string, Database.Statement>()

  constructor (components: PermissionsDatabaseComponents, init: PermissionsDatabaseInit) {
    this.init = init
    this.log = components.logger.forComponent('collective:permissions:db')
  }

  isStarted (): boolean {
    return this.db != null
  }

  start (): void {
    if (this.db != null) return
    this.db = openSqlite(this.init.path, db => { this.migrate(db) })
    this.log('opened %s', this.init.path)
  }

  stop (): void {
    if (this.db == null) return
    this.statements.clear()
    this.db.close()
    this.db = undefined
    this.log('closed %s', this.init.path)
  }

  /** Runs `fn` as one atomic transaction; nested calls join the outer one */
  transaction<T> (fn: () => T): T {
    return this.database().transaction(fn)()
  }

  /** A prepared statement, cached per SQL text */
  stmt<R = unknown> (sql: string): Database.Statement<unknown[], R> {
    let s = this.statements.get(sql)
    if (s == null) {
      s = this.database().prepare(sql)
      this.statements.set(sql, s)
    }
    return s as Database.Statement<unknown[], R>
  }

  private database (): Database.Database {
    if (this.db == null) throw new NotStartedError('the permissions database is not started')
    return this.db
  }

  private migrate (db: Database.Database): void {
    const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'perm_schema'").get() != null
    const version = exists ? (db.prepare('SELECT version FROM perm_schema').pluck().get() as number) : 0
    if (version > SCHEMA_VERSION) {
      throw new SchemaVersionError(`permissions schema version ${version} is newer than this program supports (${SCHEMA_VERSION})`)
    }
    if (version < 1) {
      db.transaction(() => { db.exec(SCHEMA_V1) })()
      this.log('created permissions schema version %d', SCHEMA_VERSION)
    }
  }
}
