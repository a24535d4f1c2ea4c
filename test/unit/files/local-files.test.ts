import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { randomBytes } from 'node:crypto'
import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalFileError, LocalPathUnavailableError, PartialFile, openForUpload, readChunks } from '../../../src/files/local-files.js'

let dir: string

async function collect (it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const c of it) out.push(c)
  return out
}

describe('local files (the daemon-side put and get)', () => {
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'local-files-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('reads a file as chunks of the chunk size, each its own buffer, the last shorter', async () => {
    const bytes = randomBytes(10_000)
    const path = join(dir, 'ten-thousand')
    await writeFile(path, bytes)
    const { handle, size } = await openForUpload(path)
    try {
      const chunks = await collect(readChunks(handle, size, 4096, path))
      assert.deepEqual(chunks.map(c => c.byteLength), [4096, 4096, 1808])
      assert.deepEqual(Buffer.concat(chunks), bytes)
      assert.notEqual(chunks[0].buffer, chunks[1].buffer)
      assert.equal(chunks[0].constructor, Uint8Array, 'plain Uint8Arrays, not Buffers')
    } finally {
      await handle.close()
    }
    const empty = join(dir, 'empty')
    await writeFile(empty, '')
    const opened = await openForUpload(empty)
    assert.equal((await collect(readChunks(opened.handle, opened.size, 4096, empty))).length, 0, 'an empty file has no chunks')
    await opened.handle.close()
  })

  it('fails an upload whose file shrinks or grows while it is read', async () => {
    const path = join(dir, 'changing')
    await writeFile(path, randomBytes(8192))
    for (const change of [async () => { await truncate(path, 5000) }, async () => { await appendFile(path, 'more') }]) {
      const { handle, size } = await openForUpload(path)
      try {
        await change()
        await assert.rejects(collect(readChunks(handle, size, 4096, path)), (err: Error) => err instanceof LocalFileError && /changed during the upload/.test(err.message))
      } finally {
        await handle.close()
        await writeFile(path, randomBytes(8192))
      }
    }
  })

  it('opening for upload: a directory is LocalFileError, a path this process cannot reach or another file is LocalPathUnavailableError', async () => {
    await assert.rejects(openForUpload(dir), (err: Error) => err instanceof LocalFileError && /is a directory/.test(err.message))
    await assert.rejects(openForUpload(join(dir, 'absent')), (err: Error) => err instanceof LocalPathUnavailableError && /no such file/.test(err.message))
    const a = join(dir, 'a')
    const b = join(dir, 'b')
    await writeFile(a, 'a')
    await writeFile(b, 'b')
    const sb = await stat(b)
    await assert.rejects(openForUpload(a, { dev: sb.dev, ino: sb.ino }), LocalPathUnavailableError)
    const sa = await stat(a)
    const ok = await openForUpload(a, { dev: sa.dev, ino: sa.ino })
    assert.equal(ok.size, 1)
    await ok.handle.close()
  })

  it('a partial file appears under its final name only on commit, with the mode asked for', async () => {
    const dest = join(dir, 'download')
    await writeFile(dest, 'old contents')
    const partial = await PartialFile.create(dest, { mode: 0o640, syncEveryBytes: 1000 })
    const parts = [randomBytes(3000), randomBytes(5000), randomBytes(1)]
    for (const p of parts) await partial.write(p)
    assert.equal(await readFile(dest, 'utf8'), 'old contents', 'the old file stays until the download is complete')
    await partial.commit()
    assert.deepEqual(await readFile(dest), Buffer.concat(parts))
    assert.equal((await stat(dest)).mode & 0o777, 0o640)
    assert.deepEqual((await readdir(dir)).filter(n => n.includes('.partial-')), [])
  })

  it('an aborted partial file leaves nothing behind and keeps the old file', async () => {
    const dest = join(dir, 'kept')
    await writeFile(dest, 'keep me')
    const partial = await PartialFile.create(dest)
    await partial.write(randomBytes(100))
    assert.equal((await readdir(dir)).filter(n => n.startsWith('kept.partial-')).length, 1)
    await partial.abort()
    await partial.abort()
    assert.equal(await readFile(dest, 'utf8'), 'keep me')
    assert.deepEqual((await readdir(dir)).filter(n => n.includes('.partial-')), [])
  })

  it('creating a partial file: a missing directory is LocalFileError, another directory than the caller saw is LocalPathUnavailableError', async () => {
    await assert.rejects(PartialFile.create(join(dir, 'no', 'such', 'dir', 'f')), (err: Error) => err instanceof LocalFileError && /cannot write .*no such file or directory/.test(err.message))
    const other = join(dir, 'other')
    await mkdir(other)
    const so = await stat(other)
    await assert.rejects(PartialFile.create(join(dir, 'f'), { directory: { dev: so.dev, ino: so.ino } }), LocalPathUnavailableError)
    await assert.rejects(PartialFile.create(join(dir, 'gone', 'f'), { directory: { dev: so.dev, ino: so.ino } }), LocalPathUnavailableError)
    const sd = await stat(dir)
    const partial = await PartialFile.create(join(dir, 'f'), { directory: { dev: sd.dev, ino: sd.ino } })
    await partial.abort()
  })

  it('a write the disk refuses is LocalFileError naming the destination', async () => {
    const dest = join(dir, 'refused')
    const partial = await PartialFile.create(dest)
    // Closing the handle under the partial file makes the next write fail the way a full disk would: with an errno.
    await (partial as any).handle.close()
    await assert.rejects(partial.write(randomBytes(10)), (err: Error) => err instanceof LocalFileError && err.message.includes(dest))
    await partial.abort()
    assert.deepEqual((await readdir(dir)).filter(n => n.startsWith('refused')), [])
  })

  it('reads an opened handle positionally, whatever else moved its file position', async () => {
    const path = join(dir, 'positional')
    const bytes = randomBytes(5000)
    await writeFile(path, bytes)
    const { handle, size } = await openForUpload(path)
    try {
      await handle.read(Buffer.alloc(100), 0, 100, null)
      assert.deepEqual(Buffer.concat(await collect(readChunks(handle, size, 2048, path))), bytes)
    } finally {
      await handle.close()
    }
  })
})
