import '../../../src/polyfill.js'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { defaultLogger } from '@libp2p/logger'
import { FileService } from '../../../src/files/service.js'
import { FakeNodes, OWNER } from '../repair/fixtures.js'

/** Fails instead of hanging when a lock never comes free */
async function within<T> (ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} still waiting after ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

describe('FileService namespace operations', () => {
  let files: FileService

  before(async () => {
    files = new FileService({ chunks: new FakeNodes(), nodes: () => [], logger: defaultLogger() }, { path: ':memory:' })
    await files.start()
  })
  after(async () => { await files.stop() })

  it('mv of a path onto itself, however spelt, is a no-op that leaves the path unlocked', async () => {
    files.mkdir('/same', false, OWNER)
    files.mkdir('/same/d', false, OWNER)
    for (const [src, dst] of [['/same/d', '/same/d'], ['//same/d', '/same/d'], ['/same//d/', '/same/d']]) {
      const entry = await within(2000, `mv ${src} ${dst}`, files.rename(src, dst))
      assert.equal(entry.path, '/same/d')
    }
    // the path's lock was released: a later operation on it runs
    await within(2000, 'rm after mv', files.remove('/same/d', false))
  })

  it('opposite moves running at once do not each hold one lock and wait for the other', async () => {
    files.mkdir('/x', false, OWNER)
    files.mkdir('/y', false, OWNER)
    const results = await within(2000, 'opposite moves', Promise.allSettled([files.rename('/x', '/y'), files.rename('/y', '/x')]))
    assert.deepEqual(results.map(r => r.status === 'rejected' ? r.reason.name : r.status), ['AlreadyExistsError', 'AlreadyExistsError'])
  })
})
