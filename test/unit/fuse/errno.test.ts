import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { constants } from 'node:os'
import { errnoOf } from '../../../src/fuse/errno.js'
import { FilesystemError } from '../../../src/fuse/errors.js'
import { DaemonError } from '../../../src/control/errors.js'

const E = constants.errno
const remote = (name: string, message = 'x'): DaemonError => new DaemonError(name, message)

describe('errno mapping', () => {
  it('maps the daemon\'s error names to the errno an application expects', () => {
    assert.equal(errnoOf(remote('NotFoundError')), E.ENOENT)
    assert.equal(errnoOf(remote('AlreadyExistsError')), E.EEXIST)
    assert.equal(errnoOf(remote('NotEmptyError')), E.ENOTEMPTY)
    assert.equal(errnoOf(remote('NotADirectoryError')), E.ENOTDIR)
    assert.equal(errnoOf(remote('IsADirectoryError')), E.EISDIR)
    assert.equal(errnoOf(remote('PermissionDeniedError')), E.EACCES)
    // mv copies and removes only on EXDEV: a move between DataStores must not be a plain I/O error
    assert.equal(errnoOf(remote('CrossDataStoreMoveError')), E.EXDEV)
    assert.equal(errnoOf(remote('InvalidPathError', 'path "/x" has a name longer than 255 bytes')), E.ENAMETOOLONG)
    assert.equal(errnoOf(remote('InvalidPathError', 'contains a NUL byte')), E.EINVAL)
  })

  it('tells out-of-space from other replication failures', () => {
    assert.equal(errnoOf(remote('ReplicationError', 'reached 1 of 2 replicas: not enough storage nodes accepted it (3 live; node-01: NodeFullError)')), E.ENOSPC)
    assert.equal(errnoOf(remote('ReplicationError', 'reached 1 of 2 replicas: not enough storage nodes accepted it (1 live)')), E.EIO)
  })

  it('never maps a failure to success: unknown and local failures are EIO, a full spool disk is ENOSPC', () => {
    assert.equal(errnoOf(remote('ChunkUnavailableError')), E.EIO)
    assert.equal(errnoOf(new Error('socket hang up')), E.EIO)
    assert.equal(errnoOf(undefined), E.EIO)
    assert.equal(errnoOf(Object.assign(new Error('disk full'), { code: 'ENOSPC' })), E.ENOSPC)
    assert.equal(errnoOf(new FilesystemError(E.EISDIR, 'file over directory')), E.EISDIR)
  })
})
