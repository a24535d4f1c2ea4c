import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Uint8ArrayList } from 'uint8arraylist'
import { dataFieldStart, splitDataField } from '../../../src/chunks/frame.js'
import { frameHead } from '../../../src/chunks/protocol.js'
import { ChunkResponse, ChunkStatus } from '../../../src/gen/chunk.js'
import { cut, pseudoRandomBytes } from './fixtures.js'

/** `bytes` cut into pieces of the given sizes (the last takes the rest), as a stream might deliver them */
function pieces (bytes: Uint8Array, sizes: number[]): Uint8ArrayList {
  return new Uint8ArrayList(...cut(bytes, sizes))
}

/** A frame as the wire carries it, without its length prefix: the message, then `data` as its own field */
function frame (message: Partial<ChunkResponse>, data: Uint8Array): Uint8Array {
  const head = frameHead(ChunkResponse.encode({ status: ChunkStatus.OK, error: '', message: '', size: 0, capacityBytes: 0, availableBytes: 0, id: 0, data: new Uint8Array(), ...message }), data.byteLength)
  // frameHead starts with the frame's length prefix; the reader hands over what follows it
  const prefix = varintLength(head)
  const whole = new Uint8Array(head.byteLength - prefix + data.byteLength)
  whole.set(head.subarray(prefix), 0)
  whole.set(data, head.byteLength - prefix)
  return whole
}

function varintLength (bytes: Uint8Array): number {
  let i = 0
  while (bytes[i] >= 0x80) i++
  return i + 1
}

describe('splitDataField', () => {
  it('gives the chunk bytes as the pieces they came in and decodes the rest, however the frame was cut', () => {
    const data = pseudoRandomBytes(300_000, 7)
    const bytes = frame({ id: 42, size: 300_000, capacityBytes: 2 ** 40 }, data)
    for (const sizes of [[bytes.byteLength], [1, 1, 1, 1], [3, 65_536, 65_536], [17, 5, 100_000]]) {
      const list = pieces(bytes, sizes)
      const { head, data: got } = splitDataField(list, 'test')
      const res = ChunkResponse.decode(head)
      assert.equal(res.id, 42)
      assert.equal(res.capacityBytes, 2 ** 40)
      assert.equal(res.data.byteLength, 0, 'the head carries no chunk bytes')
      assert.ok(Buffer.from(got.subarray()).equals(data), `data intact for cuts ${sizes.join(',')}`)
      // no copy: the pieces handed back are views of the ones that arrived
      for (const piece of got) assert.equal(piece.buffer, bytes.buffer)
    }
  })

  it('finds the data field anywhere in the message, and the last of several wins, as in protobuf', () => {
    const early = ChunkResponse.encode({ status: ChunkStatus.OK, error: '', message: '', size: 0, capacityBytes: 0, availableBytes: 0, id: 0, data: Uint8Array.from([1, 2, 3]) })
    const late = ChunkResponse.encode({ status: ChunkStatus.NOT_FOUND, error: 'x', message: '', size: 0, capacityBytes: 0, availableBytes: 0, id: 9, data: Uint8Array.from([4, 5]) })
    const both = new Uint8Array([...early, ...late])
    const { head, data } = splitDataField(pieces(both, [2, 3]), 'test')
    const res = ChunkResponse.decode(head)
    assert.deepEqual([...data.subarray()], [4, 5])
    assert.equal(res.id, 9)
    assert.equal(res.status, ChunkStatus.NOT_FOUND)
    assert.equal(res.error, 'x')
  })

  it('returns empty data for a message without chunk bytes', () => {
    const bytes = ChunkResponse.encode({ status: ChunkStatus.OK, error: '', message: 'm', size: 5, capacityBytes: 0, availableBytes: 0, id: 3, data: new Uint8Array() })
    const { head, data } = splitDataField(new Uint8ArrayList(bytes), 'test')
    assert.equal(data.byteLength, 0)
    assert.equal(ChunkResponse.decode(head).message, 'm')
  })

  it('refuses malformed frames by name', () => {
    const good = frame({ id: 1 }, pseudoRandomBytes(1000, 1))
    const bad = [
      good.subarray(0, good.byteLength - 1), // data field cut short
      Uint8Array.from([0x08]), // varint field without its value
      Uint8Array.from([(2 << 3) | 3, 0]), // group wire type
      Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // varint of 11 bytes
      Uint8Array.from([(4 << 3) | 1, 1, 2, 3]) // fixed64 cut short
    ]
    for (const bytes of bad) {
      assert.throws(() => splitDataField(new Uint8ArrayList(bytes), 'test'), { name: 'ProtocolError' }, `accepted ${Buffer.from(bytes).toString('hex').slice(0, 40)}`)
    }
  })
})

describe('dataFieldStart', () => {
  it('finds where the chunk bytes of a frame start from its first bytes, when they end the frame', () => {
    const data = pseudoRandomBytes(70_000, 3)
    const bytes = frame({ id: 7, size: 70_000, error: 'e'.repeat(300) }, data)
    const start = bytes.byteLength - data.byteLength
    assert.equal(dataFieldStart(bytes, bytes.byteLength), start)
    // only as much as a first piece holds: the head and the field's tag and length are enough
    assert.equal(dataFieldStart(bytes.subarray(0, start), bytes.byteLength), start)
    assert.equal(dataFieldStart(bytes.subarray(0, start - 1), bytes.byteLength), undefined, 'the length is not all there')
    assert.equal(dataFieldStart(bytes.subarray(0, 5), bytes.byteLength), undefined)
  })

  it('says nothing for chunk bytes that do not end the frame, for none at all, or for a malformed frame', () => {
    const early = ChunkResponse.encode({ status: ChunkStatus.OK, error: '', message: '', size: 0, capacityBytes: 0, availableBytes: 0, id: 0, data: Uint8Array.from([1, 2, 3]) })
    const after = ChunkResponse.encode({ status: ChunkStatus.OK, error: 'x', message: '', size: 0, capacityBytes: 0, availableBytes: 0, id: 9, data: new Uint8Array() })
    const both = new Uint8Array([...early, ...after])
    assert.equal(dataFieldStart(both, both.byteLength), undefined)
    assert.equal(dataFieldStart(after, after.byteLength), undefined)
    assert.equal(dataFieldStart(Uint8Array.from([0x0f, 1, 2]), 3), undefined, 'wire type 7 does not exist')
  })
})
