import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { constants, tmpdir } from 'node:os'
import { errnoOf } from '../../../src/fuse/errno.js'
import { OpenFile } from '../../../src/fuse/open-file.js'
import type { DaemonFs } from '../../../src/fuse/daemon-fs.js'

const E = constants.errno

/** A daemon whose reads never deliver (a slow backend), counting the streams opened and still open */
function stalledDaemon (): { daemon: DaemonFs, opened: () => number, live: () => number } {
  let opened = 0
  let live = 0
  const daemon = {
    async * stream (_path: string, _offset: number, _length: number | undefined, signal: AbortSignal): AsyncGenerator<Buffer> {
      opened++
      live++
      try {
        await new Promise((_resolve, reject) => { signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true }) })
      } finally {
        live--
      }
    }
  }
  return { daemon: daemon as unknown as DaemonFs, opened: () => opened, live: () => live }
}

describe('an open file', () => {
  it('fails a read waiting when it is closed with EBADF, and opens no stream for it afterwards', async () => {
    const { daemon, opened, live } = stalledDaemon()
    const file = new OpenFile(daemon, { path: '/f', size: 100, spoolDir: tmpdir() })
    const read = file.read(Buffer.alloc(10), 10, 0)
    const outcome = read.then(() => 0, errnoOf)
    await new Promise(resolve => setImmediate(resolve))
    await file.close()
    const timeout = new Promise(resolve => setTimeout(resolve, 500, 'still waiting'))
    assert.equal(await Promise.race([outcome, timeout]), E.EBADF)
    assert.equal(opened(), 1, 'the closed file opened no new stream')
    assert.equal(live(), 0, 'no stream is left holding a daemon connection')
    assert.equal(await file.read(Buffer.alloc(10), 10, 0).then(() => 0, errnoOf), E.EBADF, 'a read after close fails too')
  })
})
