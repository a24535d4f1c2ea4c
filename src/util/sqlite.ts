import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'

/**
 * Opens a SQLite file the way every store of ours does (WAL, foreign keys, parent directories created), runs
 * `prepare` (migrations) and closes it again if that fails.
 */
export function openSqlite (path: string, prepare: (db: Database.Database) => void): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const db = new Database(path)
  try {
    db.pragma('journal_mode = WAL')
    // NORMAL in WAL mode survives process crashes; only an OS crash can lose the last commits
    db.pragma('synchronous = NORMAL')
    db.pragma('foreign_keys = ON')
    prepare(db)
  } catch (err) {
    db.close()
    throw err
  }
  return db
}
