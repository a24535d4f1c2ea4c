import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createSpoolDir, removeAbandonedSpools } from '../../../src/fuse/spool.js'

describe('spool folders', () => {
  let parent: string
  before(async () => { parent = await mkdtemp(join(tmpdir(), 'spool-test-')) })
  after(async () => { await rm(parent, { recursive: true, force: true }) })

  it('removes the folders of mounts whose process is gone, and only those', async () => {
    // a process that has exited: its pid is free
    const child = spawn(process.execPath, ['-e', ''])
    await once(child, 'exit')
    const gone = join(parent, `collective-spool-${child.pid as number}-abc`)
    await mkdir(gone)
    await writeFile(join(gone, '0123.spool'), 'never stored')
    const mine = await createSpoolDir(parent)
    const live = join(parent, `collective-spool-${process.ppid}-xyz`)
    await mkdir(live)
    await mkdir(join(parent, 'collective-spool-notapid'))
    await mkdir(join(parent, 'something-else'))

    assert.equal(await removeAbandonedSpools(parent), 1)
    assert.deepEqual((await readdir(parent)).sort(), [mine.slice(parent.length + 1), live.slice(parent.length + 1), 'collective-spool-notapid', 'something-else'].sort())
    assert.equal(await removeAbandonedSpools(join(parent, 'missing')), 0, 'a missing folder is nothing to clean')
  })
})
