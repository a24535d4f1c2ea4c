import { Uint8ArrayList } from 'uint8arraylist'
import { ProtocolError } from '../net/errors.js'
import { DATA_FIELD } from './protocol.js'

/** A chunk frame taken apart: the message without its chunk bytes, and the chunk bytes as they arrived */
export interface SplitFrame {
  /** The frame's other fields, encoded: decode it as the message (its `data` field is then empty) */
  head: Uint8Array
  /** The `data` field's bytes, as the pieces the stream delivered them in (nothing copied) */
  data: Uint8ArrayList
}

const WIRE_VARINT = 0
const WIRE_FIXED64 = 1
const WIRE_LENGTH_DELIMITED = 2
const WIRE_FIXED32 = 5

/**
 * Splits a received frame into its chunk bytes and everything else, without joining the pieces the stream
 * delivered: decoding the frame as one message would first copy it into one fresh buffer, and a chunk read was
 * then allocated twice over, which kept the garbage collector busy on the read path. The frame is walked field by
 * field (only tags and lengths are read; the chunk's bytes are skipped), so any valid encoding of the message is
 * taken apart correctly, wherever its `data` field sits. When `data` occurs more than once, the last wins, as
 * protobuf merges a repeated scalar field.
 *
 * @throws ProtocolError when the frame is not a well-formed protobuf message
 */
export function splitDataField (frame: Uint8ArrayList, what: string): SplitFrame {
  const end = frame.byteLength
  const spans: Array<[number, number]> = []
  let data: [number, number] | undefined
  let at = 0
  let spanStart = 0

  const varint = (): number => {
    let value = 0
    let scale = 1
    // ten bytes hold any 64-bit value; beyond the 53 bits a number keeps exactly, only skipped values go
    for (let i = 0; i < 10; i++) {
      if (at >= end) throw new ProtocolError(`${what}: frame ends inside a field`)
      const byte = frame.get(at++)
      value += (byte & 0x7f) * scale
      if (byte < 0x80) return value
      scale *= 0x80
    }
    throw new ProtocolError(`${what}: varint longer than a frame could need`)
  }

  while (at < end) {
    const fieldStart = at
    const tag = varint()
    const wireType = tag % 8
    const field = Math.floor(tag / 8)
    let fieldEnd: number
    switch (wireType) {
      case WIRE_VARINT: varint(); fieldEnd = at; break
      case WIRE_FIXED64: fieldEnd = at + 8; break
      case WIRE_FIXED32: fieldEnd = at + 4; break
      case WIRE_LENGTH_DELIMITED: {
        const length = varint()
        fieldEnd = at + length
        if (field === DATA_FIELD && fieldEnd <= end) {
          if (fieldStart > spanStart) spans.push([spanStart, fieldStart])
          data = [at, fieldEnd]
          spanStart = fieldEnd
        }
        break
      }
      default: throw new ProtocolError(`${what}: field ${field} has the unsupported wire type ${wireType}`)
    }
    if (fieldEnd > end) throw new ProtocolError(`${what}: field ${field} runs past the end of the frame`)
    at = fieldEnd
  }
  if (end > spanStart) spans.push([spanStart, end])

  const head = spans.length === 1 ? frame.subarray(spans[0][0], spans[0][1]) : concat(spans.map(([from, to]) => frame.subarray(from, to)))
  return { head, data: data == null ? new Uint8ArrayList() : frame.sublist(data[0], data[1]) }
}

function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.byteLength
  }
  return out
}
