import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { mkdtemp, open, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { defaultLogger } from '@libp2p/logger'
import { ChunkStore } from '../../../src/storage/chunk-store.js'
import { cidOf } from '../../../src/storage/chunking.js'
import { Scrubber } from '../../../src/repair/scrubber.js'
import type { CID } from 'multiformats/cid'

async function files (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...await files(join(dir, e.name)))
    else if (e.name.endsWith('.data')) out.push(join(dir, e.name))
  }
  return out
}

async function flipFirstByte (file: string): Promise<void> {
  const f = await open(file, 'r+')
  try {
    const b = Buffer.alloc(1)
    await f.read(b, 0, 1, 0)
    b[0] ^= 0xff
    await f.write(b, 0, 1, 0)
  } finally {
    await f.close()
  }
}

describe('Scrubber', () => {
  let root: string
  let store: ChunkStore
  const cids: CID[] = []

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'scrubber-test-'))
    store = new ChunkStore({ path: join(root, 'chunks'), capacityBytes: 1024 * 1024, reserveBytes: 0 })
    await store.start()
    for (let i = 0; i < 5; i++) {
      const bytes = new TextEncoder().encode(`chunk number ${i} `.repeat(100))
      const cid = await cidOf(bytes)
      await store.put(cid, bytes)
      cids.push(cid)
    }
  })

  after(async () => {
    await store.stop()
    await rm(root, { recursive: true, force: true })
  })

  it('finds nothing in an intact store', async () => {
    const scrubber = new Scrubber({ store, logger: defaultLogger() })
    const result = await scrubber.scrub()
    assert.equal(result.chunks, 5)
    assert.equal(result.corrupt, 0)
    assert.deepEqual(scrubber.pending(10), [])
  })

  it('deletes a chunk whose file no longer matches its CID and keeps it for the next heartbeat until acknowledged', async () => {
    const [file] = (await files(join(root, 'chunks'))).sort()
    await flipFirstByte(file)
    const found: string[] = []
    const scrubber = new Scrubber({ store, logger: defaultLogger(), onCorrupt: cid => { found.push(cid) } })
    const result = await scrubber.scrub()
    assert.equal(result.corrupt, 1)
    assert.equal(found.length, 1)
    const corrupt = cids.find(c => c.toString() === found[0])
    assert.ok(corrupt != null)
    assert.equal(await store.has(corrupt), false, 'the corrupt copy is gone')
    assert.equal((await store.stats()).chunkCount, 4)
    for (const cid of cids.filter(c => c !== corrupt)) assert.equal(await store.verify(cid), true)

    assert.deepEqual(scrubber.pending(10), found)
    assert.deepEqual(scrubber.pending(10), found, 'still pending until the coordinator accepted a report')
    scrubber.acknowledge(found)
    assert.deepEqual(scrubber.pending(10), [])
    assert.equal(scrubber.status.corruptFound, 1)
    assert.equal((await scrubber.scrub()).corrupt, 0, 'a second pass finds the store clean')
  })

  it('keeps a bounded number of unreported CIDs, dropping the oldest', async () => {
    const scrubber = new Scrubber({ store, logger: defaultLogger() }, { maxPending: 2 })
    const internal = scrubber as unknown as { report: (cid: string) => void }
    for (const cid of ['a', 'b', 'c']) internal.report(cid)
    assert.deepEqual(scrubber.pending(10), ['b', 'c'])
    assert.deepEqual(scrubber.pending(1), ['b'])
  })
})
