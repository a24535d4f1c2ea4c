import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { defaultLogger } from '@libp2p/logger'
import { ChunkSession } from '../../../src/chunks/session.js'
import { ChunkOp } from '../../../src/gen/chunk.js'
import { BufferPool } from '../../../src/util/buffer-pool.js'
import type { Stream } from '@libp2p/interface'

const log = defaultLogger().forComponent('test:chunk-session')

describe('ChunkSession', () => {
  it('lets a caller that aborts while its stream is still opening go at once, and frees its slot', async () => {
    // a dial that never completes: the caller must not wait for it once it gave up
    const session = new ChunkSession(async () => await new Promise<Stream>(() => {}), { timeoutMs: 30_000, maxRequests: 1, idleMs: 60_000, buffers: new BufferPool(64 * 1024) }, log, () => {})
    try {
      const controller = new AbortController()
      const answer = session.request({ op: ChunkOp.GET, cid: new Uint8Array() }, undefined, controller.signal)
      assert.equal(session.hasRoom(), false)
      setTimeout(() => { controller.abort(new Error('the caller gave up')) }, 50)
      const patience = new AbortController()
      const stillWaiting = sleep(2000, undefined, { signal: patience.signal }).then(() => { throw new Error('still waiting for the stream to open') })
      stillWaiting.catch(() => {})
      await assert.rejects(Promise.race([answer, stillWaiting]), /the caller gave up/)
      patience.abort()
      // The request never left, so the node owes nothing for it: its slot is free again.
      assert.equal(session.inFlight, 0)
      assert.equal(session.hasRoom(), true)
    } finally {
      session.abort()
    }
  })
})
