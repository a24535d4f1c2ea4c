import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { PageCache, RemoteContent as Content } from '../../../src/access/content-client.js'
import { defaultLogger } from '@libp2p/logger'
import { MetaStatus } from '../../../src/gen/meta.js'
import type { MetaClient } from '../../../src/access/meta-client.js'
import type { ChunkTransport } from '../../../src/transfer/types.js'
import { spannedBy } from '../../../src/access/content-server.js'
import type { RemoteContent, RemoteFile } from '../../../src/access/content-client.js'

const CHUNKS = 3000
const cids = await Promise.all(Array.from({ length: CHUNKS }, async (_, i) => CID.createV1(raw.code, await sha256.digest(new Uint8Array([i % 256, i >> 8])))))
const file: RemoteFile = { coordinator: 'c', entry: { path: '/f', type: 'file', mode: 0o644, size: CHUNKS, mtimeMs: 0, ctimeMs: 0, owner: 'o', version: 1, id: 1 }, version: 1, size: CHUNKS, chunkSize: 1, chunkCount: CHUNKS }

/** An owner that answers OPEN_READ pages from a manifest of CHUNKS chunks, and records what it was asked */
function owner (): { content: RemoteContent, asked: Array<[number, number]> } {
  const asked: Array<[number, number]> = []
  const content = {
    async page (_file: RemoteFile, first: number, limit: number) {
      asked.push([first, limit])
      return { first, fetchedAt: Date.now(), chunks: cids.slice(first, first + limit).map(cid => ({ cid, size: 1, nodes: [], capability: new Uint8Array(0) })) }
    }
  }
  return { content: content as unknown as RemoteContent, asked }
}

describe('PageCache', () => {
  it('starts a read with a short page and doubles each page that continues it, up to the page size', async () => {
    const { content, asked } = owner()
    const pages = new PageCache(content, file, { pageChunks: 1024, firstPageChunks: 8, refreshMs: 60_000 })
    pages.add(await content.page(file, 0, 8), 8)
    asked.length = 0
    for (let i = 0; i < CHUNKS; i++) assert.ok((await pages.chunk(i)).cid.equals(cids[i]), `chunk ${i}`)
    assert.deepEqual(asked, [[8, 16], [24, 32], [56, 64], [120, 128], [248, 256], [504, 512], [1016, 1024], [2040, 1024]])
    assert.ok(pages.kept.length <= 2, 'only the newest pages are kept')
    await assert.rejects(pages.chunk(CHUNKS), { name: 'ChunkUnavailableError' })
  })

  it('asks for a short page again where a read jumps, and fetches a page again once it is stale', async () => {
    const { content, asked } = owner()
    const pages = new PageCache(content, file, { pageChunks: 1024, firstPageChunks: 8, refreshMs: 60_000 })
    await pages.chunk(2500)
    await pages.chunk(2507)
    await pages.chunk(2508)
    assert.deepEqual(asked, [[2500, 8], [2508, 16]])
    const stale = new PageCache(content, file, { pageChunks: 1024, firstPageChunks: 8, refreshMs: -1 })
    asked.length = 0
    await stale.chunk(10)
    await stale.chunk(11)
    assert.deepEqual(asked, [[10, 8], [10, 8]], 'a page past its refresh age is asked for again, with the same span')
  })
})

describe('a remote read fetching its later pages', () => {
  /** An owner whose OPEN_READ answers with `entry` (id and version) and no chunks */
  const content = (answer: { id: number, version: number }): RemoteContent => {
    const meta = { call: async () => ({ status: MetaStatus.OK, entry: { ...file.entry, ...answer }, version: answer.version, size: CHUNKS, chunkSize: 1, chunkCount: CHUNKS, placements: [], capabilities: [] }) }
    return new Content({ meta: meta as unknown as MetaClient, chunks: {} as unknown as ChunkTransport, host: { peerStore: {} as any }, logger: defaultLogger() })
  }

  it('goes on while the file is the one it opened, and fails once another took its name or it has a new version', async () => {
    await content({ id: 1, version: 1 }).page(file, 8, 8)
    await content({ id: 0, version: 1 }).page(file, 8, 8) // an older owner, which sends no id: the version alone tells
    await assert.rejects(content({ id: 2, version: 1 }).page(file, 8, 8), { name: 'ConcurrentWriteError', message: /another file took its name/ })
    await assert.rejects(content({ id: 1, version: 2 }).page(file, 8, 8), { name: 'ConcurrentWriteError', message: /version 1 became 2/ })
  })
})

describe('OPEN_READ counts the chunks a reader means to fetch', () => {
  const page = Array.from({ length: 8 }, (_, i) => i + 16) // chunks 16..23 of a file cut at 1 MiB
  const MiB = 1024 * 1024

  it('every chunk of the page for a whole-file read', () => {
    assert.deepEqual(spannedBy({ readOffset: 0, readLength: 0 }, MiB, 16, page), page)
  })

  it('only the chunks a range spans', () => {
    assert.deepEqual(spannedBy({ readOffset: 18 * MiB + 5, readLength: 1 }, MiB, 16, page), [18])
    assert.deepEqual(spannedBy({ readOffset: 18 * MiB - 1, readLength: 2 }, MiB, 16, page), [17, 18])
    assert.deepEqual(spannedBy({ readOffset: 20 * MiB, readLength: Number.MAX_SAFE_INTEGER - 20 * MiB }, MiB, 16, page), [20, 21, 22, 23])
    assert.deepEqual(spannedBy({ readOffset: 2 * MiB, readLength: MiB }, MiB, 16, page), [], 'a range before the page')
  })
})
