import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { afterEach, describe, it } from 'node:test'
import { defaultLogger } from '@libp2p/logger'
import { Uint8ArrayList } from 'uint8arraylist'
import { HashWorker } from '../../../src/storage/hash-worker.js'

const MiB = 1024 * 1024
const expected = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
const hex = (digest: Uint8Array): string => Buffer.from(digest).toString('hex')

/** `bytes` cut into pieces of `size` bytes (views, as a stream delivers them), the last one shorter */
function pieces (bytes: Uint8Array, size: number): Uint8ArrayList {
  const list = new Uint8ArrayList()
  for (let at = 0; at < bytes.byteLength; at += size) list.append(bytes.subarray(at, Math.min(at + size, bytes.byteLength)))
  return list
}

describe('HashWorker', () => {
  let worker: HashWorker | undefined
  afterEach(async () => { await worker?.stop() })

  it('gives the sha2-256 of one buffer and of a chunk in pieces, from the thread', async () => {
    worker = new HashWorker({ logger: defaultLogger() }, { minBytes: 1 })
    await worker.start()
    const bytes = randomBytes(4 * MiB + 7)
    const whole = worker.sha256(bytes)
    assert.equal(worker.inFlight, 1, 'the digest is made on the thread')
    assert.equal(hex(await whole), expected(bytes))
    assert.equal(hex(await worker.sha256(pieces(bytes, 65519))), expected(bytes))
    assert.equal(worker.inFlight, 0)
  })

  it('leaves the caller\'s bytes as they were: they are copied, never moved to the thread', async () => {
    worker = new HashWorker({ logger: defaultLogger() }, { minBytes: 1 })
    await worker.start()
    const bytes = randomBytes(MiB)
    const before = expected(bytes)
    const list = pieces(bytes, 4096)
    await worker.sha256(list)
    assert.equal(bytes.byteLength, MiB, 'not detached')
    assert.equal(expected(list.subarray()), before)
  })

  it('keeps every digest with its own chunk when many are in flight, reusing its buffers', async () => {
    worker = new HashWorker({ logger: defaultLogger() }, { minBytes: 1, maxPooledBytes: 4 * MiB })
    await worker.start()
    for (let round = 0; round < 3; round++) {
      const chunks = Array.from({ length: 12 }, (_, i) => randomBytes(MiB - i * 1000))
      const digests = await Promise.all(chunks.map(async c => await worker!.sha256(pieces(c, 65519))))
      digests.forEach((d, i) => { assert.equal(hex(d), expected(chunks[i]), `chunk ${i} of round ${round}`) })
      assert.ok(worker.pooledBytes <= 4 * MiB, `pool within its budget (${worker.pooledBytes})`)
      assert.ok(worker.pooledBytes > 0, 'buffers are kept for the next chunks')
    }
  })

  it('hashes small inputs, and everything before start and after stop, on the calling thread', async () => {
    worker = new HashWorker({ logger: defaultLogger() })
    const bytes = randomBytes(100_000)
    assert.equal(hex(await worker.sha256(bytes)), expected(bytes), 'before start')
    await worker.start()
    const small = worker.sha256(bytes)
    assert.equal(worker.inFlight, 0, 'under minBytes (256 KiB by default) stays here')
    assert.equal(hex(await small), expected(bytes))
    await worker.stop()
    const large = randomBytes(MiB)
    assert.equal(hex(await worker.sha256(large)), expected(large), 'after stop')
    assert.equal(worker.pooledBytes, 0, 'the pool went with the thread')
  })

  it('still answers every caller when the thread goes away with digests in flight', async () => {
    worker = new HashWorker({ logger: defaultLogger() }, { minBytes: 1 })
    await worker.start()
    const chunks = Array.from({ length: 8 }, () => randomBytes(2 * MiB))
    const digests = chunks.map(async c => await worker!.sha256(pieces(c, 65519)))
    assert.equal(worker.inFlight, 8)
    await worker.stop()
    const results = await Promise.all(digests)
    results.forEach((d, i) => { assert.equal(hex(d), expected(chunks[i])) })
  })

  it('drops its reuse pool once idle', async () => {
    worker = new HashWorker({ logger: defaultLogger() }, { minBytes: 1, idleMs: 50 })
    await worker.start()
    await worker.sha256(randomBytes(MiB))
    assert.ok(worker.pooledBytes >= MiB)
    await new Promise(resolve => setTimeout(resolve, 150))
    assert.equal(worker.pooledBytes, 0)
  })
})
