import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { streamPair } from '@libp2p/utils'
import { FrameReader } from '../../../src/chunks/frame-reader.js'
import { dataFieldStart } from '../../../src/chunks/frame.js'
import { frameHead } from '../../../src/chunks/protocol.js'
import { ChunkResponse, ChunkStatus } from '../../../src/gen/chunk.js'
import { BufferPool } from '../../../src/util/buffer-pool.js'
import { DIRECT_IO_ALIGNMENT, alignedMemory, isDirectIOReady } from '../../../src/util/direct-io.js'
import { cut, pseudoRandomBytes } from './fixtures.js'
import type { Stream } from '@libp2p/interface'

const MAX_FRAME = 256 * 1024

/** `bytes` with a varint length prefix */
function prefixed (bytes: Uint8Array): Uint8Array {
  const prefix: number[] = []
  let n = bytes.byteLength
  while (n >= 0x80) { prefix.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80) }
  prefix.push(n)
  return new Uint8Array([...prefix, ...bytes])
}

/** A chunk frame as a node sends it: length prefix, the answer's other fields, then the chunk bytes */
function chunkFrame (id: number, data: Uint8Array): Uint8Array {
  const head = frameHead(ChunkResponse.encode({ status: ChunkStatus.OK, error: '', message: '', size: data.byteLength, capacityBytes: 0, availableBytes: 0, id, data: new Uint8Array() }), data.byteLength)
  const out = new Uint8Array(head.byteLength + data.byteLength)
  out.set(head)
  out.set(data, head.byteLength)
  return out
}

/** `bytes` sent in pieces of the given sizes (the last piece takes the rest) */
function sendInPieces (stream: Stream, bytes: Uint8Array, sizes: number[]): void {
  for (const piece of cut(bytes, sizes)) stream.send(piece)
}

/** A length-prefixed frame without its prefix */
function withoutPrefix (bytes: Uint8Array): Uint8Array {
  let i = 0
  while (bytes[i] >= 0x80) i++
  return bytes.subarray(i + 1)
}

function concat (...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(parts.flatMap(p => [...p]))
}

async function setup (init: { maxBufferedBytes?: number } = {}): Promise<{ outbound: Stream, inbound: Stream, reader: FrameReader, pool: BufferPool }> {
  const [outbound, inbound] = await streamPair()
  const pool = new BufferPool(MAX_FRAME + DIRECT_IO_ALIGNMENT, { allocate: alignedMemory })
  const reader = new FrameReader(inbound, { buffers: pool }, { maxFrameBytes: MAX_FRAME, maxBufferedBytes: init.maxBufferedBytes ?? 4 * MAX_FRAME, protocol: '/test' })
  return { outbound, inbound, reader, pool }
}

describe('FrameReader', () => {
  it('puts frames cut anywhere back together: short ones in buffers of their own, long ones in lent buffers with the chunk aligned', async () => {
    const { outbound, reader } = await setup()
    const small = pseudoRandomBytes(100, 1)
    const data = pseudoRandomBytes(200_000, 2)
    const long = chunkFrame(5, data)
    const empty = new Uint8Array()
    const wire = concat(prefixed(small), long, prefixed(empty), prefixed(small), long)
    // the first long frame's head arrives in one piece (with the small frame before it); the second one's is cut
    const secondLong = wire.byteLength - long.byteLength
    sendInPieces(outbound, wire, [1, 1, 1, 7, 200, 65_536, 17, secondLong + 6 - 65_763])

    const first = await reader.read()
    assert.deepEqual(first.bytes, small)
    assert.equal(first.lent, false)
    const second = await reader.read()
    assert.deepEqual(second.bytes, withoutPrefix(long))
    assert.equal(second.lent, true)
    const start = dataFieldStart(second.bytes, second.bytes.byteLength)
    assert.ok(start != null)
    assert.deepEqual(second.bytes.subarray(start), data)
    assert.ok(isDirectIOReady(second.bytes.subarray(start)), 'the chunk bytes start on an alignment boundary of aligned memory')
    assert.equal((await reader.read()).bytes.byteLength, 0, 'an empty frame is a frame')
    assert.deepEqual((await reader.read()).bytes, small)
    const cut = await reader.read()
    assert.deepEqual(cut.bytes, withoutPrefix(long), 'a frame whose head was cut is whole all the same, only not aligned')
    reader.close()
  })

  it('gives a released buffer to the next long frame, and takes a new one while the last is still held', async () => {
    const { outbound, reader, pool } = await setup()
    const frames = [1, 2, 3].map(i => chunkFrame(i, pseudoRandomBytes(100_000, i)))
    for (const f of frames) outbound.send(f)
    const a = await reader.read()
    const b = await reader.read()
    assert.notEqual(a.bytes.buffer, b.bytes.buffer, 'two frames held at once are in two buffers')
    a.release()
    a.release()
    assert.equal(pool.kept, 1, 'a second release changes nothing')
    const c = await reader.read()
    assert.equal(c.bytes.buffer, a.bytes.buffer, 'the released buffer is filled again')
    assert.deepEqual(c.bytes, withoutPrefix(frames[2]))
    assert.deepEqual(b.bytes, withoutPrefix(frames[1]), 'the frame still held is untouched')
    reader.close()
  })

  it('refuses a frame longer than the protocol allows, and resets the stream', async () => {
    const { outbound, inbound, reader } = await setup()
    outbound.send(prefixed(new Uint8Array(MAX_FRAME + 1)).subarray(0, 10))
    await assert.rejects(reader.read(), (err: Error) => err.name === 'ProtocolError' && /longer than the 262144 bytes/.test(err.message))
    assert.equal(inbound.status, 'aborted')
  })

  it('refuses a length prefix longer than any length needs', async () => {
    const { outbound, reader } = await setup()
    outbound.send(new Uint8Array(11).fill(0x80))
    await assert.rejects(reader.read(), { name: 'ProtocolError' })
  })

  it('fails once more bytes of frames wait than allowed, after handing out those that fit', async () => {
    const { outbound, reader } = await setup({ maxBufferedBytes: 150_000 })
    for (const i of [1, 2, 3]) outbound.send(chunkFrame(i, pseudoRandomBytes(100_000, i)))
    // nobody reads while they arrive
    await new Promise(resolve => setTimeout(resolve, 200))
    const got: string[] = []
    await assert.rejects((async () => { for (;;) got.push((await reader.read()).bytes.byteLength > 0 ? 'frame' : 'empty') })(), { name: 'StreamBufferError' })
    assert.ok(got.length <= 2, `at most the frames that fit were handed out (${got.length})`)
  })

  it('counts waiting frames with an overhead each, so a flood of empty frames fails too', async () => {
    const { outbound, inbound, reader } = await setup({ maxBufferedBytes: 100 * 1024 })
    // every zero byte is an empty frame
    outbound.send(new Uint8Array(1024 * 1024))
    await new Promise(resolve => setTimeout(resolve, 100))
    let handedOut = 0
    await assert.rejects((async () => { for (;;) { await reader.read(); handedOut++ } })(), { name: 'StreamBufferError' })
    assert.ok(handedOut <= 101, `no more frames waited than the bound holds, and the one that crossed it (${handedOut})`)
    assert.equal(inbound.status, 'aborted')
  })

  it('ends with UnexpectedEOFError after the complete frames, and also inside a frame', async () => {
    const { outbound, reader } = await setup()
    outbound.send(prefixed(Uint8Array.from([1, 2, 3])))
    void outbound.close()
    assert.deepEqual((await reader.read()).bytes, Uint8Array.from([1, 2, 3]))
    await assert.rejects(reader.read(), { name: 'UnexpectedEOFError' })

    const second = await setup()
    second.outbound.send(chunkFrame(1, pseudoRandomBytes(100_000, 1)).subarray(0, 50_000))
    void second.outbound.close()
    await assert.rejects(second.reader.read(), (err: Error) => err.name === 'UnexpectedEOFError' && /into a frame/.test(err.message))
  })

  it('stops waiting when the signal aborts, and the next read still gets the next frame', async () => {
    const { outbound, reader } = await setup()
    const controller = new AbortController()
    const waiting = reader.read({ signal: controller.signal })
    controller.abort(new Error('gave up'))
    await assert.rejects(waiting, /gave up/)
    outbound.send(prefixed(Uint8Array.from([9])))
    assert.deepEqual((await reader.read()).bytes, Uint8Array.from([9]))
    reader.close()
  })
})
