import { openSqlite } from '../util/sqlite.js'
import { NotStartedError } from './errors.js'
import type Database from 'better-sqlite3'

export interface ChunkOwnersInit {
  /** The SQLite file (":memory:" for tests) */
  path: string
}

/**
 * Which coordinators a storage node keeps each chunk for. A chunk is stored once however many coordinators put
 * it (content addressing), but each of them owns its copy: a GET, HAS or DELETE counts only with a capability
 * from a coordinator that put the chunk here, so a coordinator cannot sign its way to another member's chunks by
 * knowing their CIDs, and one coordinator's garbage collection never deletes a chunk another still needs.
 * Becoming an owner takes a PUT, which takes the chunk's bytes.
 */
export class ChunkOwners {
  private readonly path: string
  private db?: Database.Database
  private statements?: {
    add: Database.Statement
    has: Database.Statement
    remove: Database.Statement
    count: Database.Statement
  }

  constructor (init: ChunkOwnersInit) {
    this.path = init.path
  }

  async start (): Promise<void> {
    if (this.db != null) return
    const db = this.db = openSqlite(this.path, db => {
      db.exec('CREATE TABLE IF NOT EXISTS owners (cid TEXT NOT NULL, issuer TEXT NOT NULL, since_ms INTEGER NOT NULL, PRIMARY KEY (cid, issuer)) WITHOUT ROWID')
    })
    this.statements = {
      add: db.prepare('INSERT OR IGNORE INTO owners (cid, issuer, since_ms) VALUES (?, ?, ?)'),
      has: db.prepare('SELECT 1 FROM owners WHERE cid = ? AND issuer = ?'),
      remove: db.prepare('DELETE FROM owners WHERE cid = ? AND issuer = ?'),
      count: db.prepare('SELECT COUNT(*) AS n FROM owners WHERE cid = ?')
    }
  }

  async stop (): Promise<void> {
    this.db?.close()
    this.db = undefined
    this.statements = undefined
  }

  /** Records `issuer` as an owner of `cid` (again: no change) */
  add (cid: string, issuer: string): void {
    this.stmts().add.run(cid, issuer, Date.now())
  }

  has (cid: string, issuer: string): boolean {
    return this.stmts().has.get(cid, issuer) != null
  }

  /** Forgets `issuer` as an owner of `cid`; returns how many owners the chunk has left */
  remove (cid: string, issuer: string): number {
    const s = this.stmts()
    s.remove.run(cid, issuer)
    return (s.count.get(cid) as { n: number }).n
  }

  private stmts (): NonNullable<ChunkOwners['statements']> {
    if (this.statements == null) throw new NotStartedError('the chunk owners table is not open')
    return this.statements
  }
}
