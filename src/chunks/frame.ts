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

/** One field of an encoded protobuf message: where it starts, where its value starts, and where it ends */
interface Field {
  number: number
  wireType: number
  start: number
  valueStart: number
  end: number
}

/** The bytes of the frame up to here are not all at hand (only a first part of it was given) */
class PastAvailableError extends Error {}

/**
 * The fields of a message of `end` bytes, in order, read with `byteAt` (only tags and lengths are read; values are
 * skipped). Of a message only partly at hand (`available` < `end`), the fields up to the first one whose tag or
 * length lies beyond it.
 *
 * @throws ProtocolError when the message is not well-formed protobuf
 */
function * fields (byteAt: (i: number) => number, end: number, what: string, available = end): Generator<Field> {
  let at = 0
  const varint = (): number => {
    let value = 0
    let scale = 1
    // ten bytes hold any 64-bit value; beyond the 53 bits a number keeps exactly, only skipped values go
    for (let i = 0; i < 10; i++) {
      if (at >= end) throw new ProtocolError(`${what}: frame ends inside a field`)
      if (at >= available) throw new PastAvailableError()
      const byte = byteAt(at++)
      value += (byte & 0x7f) * scale
      if (byte < 0x80) return value
      scale *= 0x80
    }
    throw new ProtocolError(`${what}: varint longer than a frame could need`)
  }

  while (at < end) {
    const start = at
    let tag: number
    try {
      tag = varint()
    } catch (err) {
      if (err instanceof PastAvailableError) return
      throw err
    }
    const wireType = tag % 8
    const number = Math.floor(tag / 8)
    let valueStart = at
    let fieldEnd: number
    try {
      switch (wireType) {
        case WIRE_VARINT: varint(); fieldEnd = at; break
        case WIRE_FIXED64: fieldEnd = at + 8; break
        case WIRE_FIXED32: fieldEnd = at + 4; break
        case WIRE_LENGTH_DELIMITED: {
          const length = varint()
          valueStart = at
          fieldEnd = at + length
          break
        }
        default: throw new ProtocolError(`${what}: field ${number} has the unsupported wire type ${wireType}`)
      }
    } catch (err) {
      if (err instanceof PastAvailableError) return
      throw err
    }
    if (fieldEnd > end) throw new ProtocolError(`${what}: field ${number} runs past the end of the frame`)
    yield { number, wireType, start, valueStart, end: fieldEnd }
    at = fieldEnd
  }
}

/**
 * Splits a received frame into its chunk bytes and everything else, without joining the pieces the stream
 * delivered: decoding the frame as one message would first copy it into one fresh buffer, and a chunk read was
 * then allocated twice over, which kept the garbage collector busy on the read path. The frame is walked field by
 * field, so any valid encoding of the message is taken apart correctly, wherever its `data` field sits. When
 * `data` occurs more than once, the last wins, as protobuf merges a repeated scalar field.
 *
 * @throws ProtocolError when the frame is not a well-formed protobuf message
 */
export function splitDataField (frame: Uint8ArrayList, what: string): SplitFrame {
  const spans: Array<[number, number]> = []
  let data: [number, number] | undefined
  let spanStart = 0
  for (const field of fields(i => frame.get(i), frame.byteLength, what)) {
    if (field.number !== DATA_FIELD || field.wireType !== WIRE_LENGTH_DELIMITED) continue
    if (field.start > spanStart) spans.push([spanStart, field.start])
    data = [field.valueStart, field.end]
    spanStart = field.end
  }
  if (frame.byteLength > spanStart) spans.push([spanStart, frame.byteLength])

  const head = spans.length === 1 ? frame.subarray(spans[0][0], spans[0][1]) : concat(spans.map(([from, to]) => frame.subarray(from, to)))
  return { head, data: data == null ? new Uint8ArrayList() : frame.sublist(data[0], data[1]) }
}

/**
 * Where the chunk bytes of a frame of `frameLength` bytes start, read from the frame's first bytes (`prefix`):
 * known when they hold the `data` field's tag and length and that field ends the frame, as it does in every
 * frame `frameHead` makes. A receiver uses it to place the chunk bytes on an aligned address as they arrive.
 */
export function dataFieldStart (prefix: Uint8Array, frameLength: number): number | undefined {
  try {
    for (const field of fields(i => prefix[i], frameLength, 'frame', Math.min(prefix.byteLength, frameLength))) {
      if (field.number === DATA_FIELD && field.wireType === WIRE_LENGTH_DELIMITED && field.end === frameLength) return field.valueStart
    }
  } catch {
    // a malformed frame: the full parse once it is complete says so
  }
  return undefined
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
