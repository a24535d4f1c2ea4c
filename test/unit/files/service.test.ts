import '../../../src/polyfill.js'
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { defaultLogger } from '@libp2p/logger'
import { FileService } from '../../../src/files/service.js'
import { FakeNodes, OWNER, node } from '../repair/fixtures.js'

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

  const put = async (path: string, text: string): Promise<void> => {
    await files.write(path, (async function * () { yield Buffer.from(text) })(), { size: text.length, owner: OWNER })
  }
  const text = async (path: string): Promise<string> => {
    const parts: Uint8Array[] = []
    for await (const list of files.read(files.open(path).manifest)) parts.push(list.subarray())
    return Buffer.concat(parts).toString()
  }

  before(async () => {
    const nodes = await Promise.all(['a', 'b'].map(async n => await node(n, 'home.collective.local')))
    files = new FileService({ chunks: new FakeNodes(), nodes: () => nodes, logger: defaultLogger() }, { path: ':memory:' })
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

  it('mv to a path ending in / moves into that existing directory, and refuses a file or a missing directory there', async () => {
    files.mkdir('/p', false, OWNER)
    files.mkdir('/p/dir', false, OWNER)
    await put('/p/one', '1')
    await put('/p/two', '2')
    await assert.rejects(files.rename('/p/one', '/p/two/'), { name: 'NotADirectoryError' })
    await assert.rejects(files.rename('/p/two', '/p/newdir/'), { name: 'NotFoundError' })
    assert.equal(await text('/p/two'), '2', 'the file named as a directory is untouched')
    assert.equal((await files.rename('/p/one', '/p/dir/')).path, '/p/dir/one')
    assert.equal((await files.rename('/p/dir/one', '/')).path, '/one')
    assert.equal(await text('/one'), '1')
  })

  it('rm of a path ending in / removes a directory but refuses a file', async () => {
    files.mkdir('/r', false, OWNER)
    files.mkdir('/r/d', false, OWNER)
    await put('/r/a', 'a')
    await assert.rejects(files.remove('/r/a/', false), { name: 'NotADirectoryError' })
    assert.equal(await text('/r/a'), 'a')
    assert.equal((await files.remove('/r/d/', false)).dirs, 1)
  })
})
