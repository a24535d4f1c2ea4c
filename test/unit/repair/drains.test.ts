import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { DrainList } from '../../../src/node-registry/drains.js'

describe('DrainList', () => {
  let root: string
  before(async () => { root = await mkdtemp(join(tmpdir(), 'drains-test-')) })
  after(async () => { await rm(root, { recursive: true, force: true }) })

  it('starts empty without a file, and survives a restart', async () => {
    const path = join(root, 'drains.json')
    const a = new DrainList({ path })
    await a.start()
    assert.deepEqual(a.list(), [])
    assert.equal(await a.add('peer-1', 1000), true)
    assert.equal(await a.add('peer-1', 2000), false, 'draining twice changes nothing')
    assert.equal(await a.add('peer-2', 3000), true)
    const b = new DrainList({ path })
    await b.start()
    assert.deepEqual(b.list().sort(), ['peer-1', 'peer-2'])
    assert.equal(b.since('peer-1'), 1000)
    assert.equal(await b.delete('peer-1'), true)
    assert.equal(await b.delete('peer-1'), false)
    const c = new DrainList({ path })
    await c.start()
    assert.deepEqual(c.list(), ['peer-2'])
    assert.deepEqual(Object.keys(JSON.parse(await readFile(path, 'utf8'))), ['peer-2'])
  })

  it('refuses a torn file instead of forgetting the drains in it', async () => {
    const path = join(root, 'torn.json')
    const { writeFile } = await import('node:fs/promises')
    await writeFile(path, '{"peer-1": {"since"')
    await assert.rejects(new DrainList({ path }).start(), SyntaxError)
  })
})
