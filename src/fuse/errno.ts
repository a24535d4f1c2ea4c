import { constants } from 'node:os'
import { FilesystemError } from './errors.js'

const E = constants.errno

// The daemon reports failures by stable error name (src/metadata/errors.ts, src/transfer/errors.ts,
// src/chunks/protocol.ts, src/access/control.ts); a name missing here is a backend failure and becomes EIO, never a
// success.
const BY_NAME: Record<string, number> = {
  NotFoundError: E.ENOENT,
  AlreadyExistsError: E.EEXIST,
  NotEmptyError: E.ENOTEMPTY,
  NotADirectoryError: E.ENOTDIR,
  IsADirectoryError: E.EISDIR,
  InvalidAttributeError: E.EINVAL,
  InvalidRangeError: E.EINVAL,
  PermissionDeniedError: E.EACCES,
  ChunkAccessDeniedError: E.EACCES,
  OperationNotAllowedError: E.EACCES,
  NodeFullError: E.ENOSPC,
  StoreFullError: E.ENOSPC,
  // mv falls back to copy and remove on EXDEV alone
  CrossDataStoreMoveError: E.EXDEV,
  // the open file was replaced under its name (by another client or member): its handle is stale, as on NFS
  FileChangedError: E.ESTALE,
  ConcurrentWriteError: E.ESTALE
}

/**
 * The errno for a failure, as a positive number. Accepts local errors (with `errno` or a Node `code`) and errors the
 * daemon reported (a DaemonError carries the daemon's error name as `remoteName`).
 */
export function errnoOf (err: any): number {
  if (err instanceof FilesystemError) return err.errno
  const name: string = err?.remoteName ?? err?.name ?? ''
  const message: string = err?.message ?? ''
  if (name === 'InvalidPathError') return /longer than/.test(message) ? E.ENAMETOOLONG : E.EINVAL
  // A write that found too few nodes with room is out of space; one that found too few nodes at all is an I/O error.
  if (name === 'ReplicationError') return /NodeFullError|StoreFullError/.test(message) ? E.ENOSPC : E.EIO
  const known = BY_NAME[name]
  if (known != null) return known
  // A full local disk under the spool is out of space for the application too; any other failure is I/O.
  if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT') return E.ENOSPC
  return E.EIO
}
