import type { Prng } from './prng.js'

// Generic malformed input for any length-prefixed protobuf protocol. Nothing here knows a message schema beyond
// the field numbers and wire types a protocol entry lists, so the cases keep working when a protocol's framing
// or messages change: they only need to stay "unsigned-varint length prefix, then protobuf".

/** Protobuf wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 (3, 4 are groups; 6, 7 are invalid) */
export type WireType = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7

export interface FieldSpec {
  field: number
  wireType: 0 | 2
}

/** What the fuzzer needs to know about a protocol to aim at it */
export interface FrameLimits {
  /** Largest frame the server accepts: oversized cases are built around it */
  maxMessageBytes: number
  /** Concurrent inbound streams the server allows per connection: many-streams cases exceed it */
  maxInboundStreams: number
  /** The fields of its request message, so valid-looking frames resemble real requests */
  fields: readonly FieldSpec[]
}

export const CASE_KINDS = [
  'raw-garbage', 'lp-garbage', 'truncated', 'oversized-prefix', 'overlong-varint', 'wrong-fields',
  'valid-looking', 'out-of-order', 'empty', 'reset-mid-frame', 'many-streams'
] as const

export type CaseKind = typeof CASE_KINDS[number]

export interface FuzzCase {
  kind: CaseKind
  /** Bytes sent on each stream, write by write */
  writes: Uint8Array[]
  /** How the fuzzer ends its side once written: half-close (the server reads EOF) or reset */
  end: 'close' | 'reset'
  /** Streams opened at once, each carrying `writes` (more than the server allows, for many-streams) */
  streams: number
  /** Keep the streams open this long before ending them, so that they overlap */
  holdMs: number
}

/** Unsigned LEB128 varint of a non-negative integer up to 2^53 */
export function varint (value: number): Uint8Array {
  const out: number[] = []
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80)
    value = Math.floor(value / 0x80)
  }
  out.push(value)
  return Uint8Array.from(out)
}

export function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}

/** A frame as the protocols expect it: length prefix, then the body */
export function frame (body: Uint8Array): Uint8Array { return concat(varint(body.byteLength), body) }

function key (field: number, wireType: WireType): Uint8Array { return varint(field * 8 + wireType) }

/** One encoded field of the given wire type with a random value (a random length for length-delimited ones) */
function field (rng: Prng, number: number, wireType: WireType): Uint8Array {
  switch (wireType) {
    case 0: return concat(key(number, 0), randomVarint(rng))
    case 1: return concat(key(number, 1), rng.bytes(8))
    case 2: {
      const length = rng.chance(0.1) ? rng.int(256, 8192) : rng.int(0, 64)
      // a declared length that overruns the frame is part of the point
      const declared = rng.chance(0.1) ? length + rng.int(1, 1000) : length
      return concat(key(number, 2), varint(declared), rng.bytes(length))
    }
    case 5: return concat(key(number, 5), rng.bytes(4))
    default: return concat(key(number, wireType), rng.bytes(rng.int(0, 16)))
  }
}

/** Small, boundary and full 64-bit values (the last as raw 10-byte varints) */
function randomVarint (rng: Prng): Uint8Array {
  const roll = rng.int(0, 3)
  if (roll === 0) return varint(rng.int(0, 300))
  if (roll === 1) return varint(rng.pick([0, 1, 127, 128, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]))
  if (roll === 2) return Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01) // 2^64 - 1
  return varint(rng.int(0, 2 ** 31))
}

/** A message made of the protocol's own fields, with random values and sometimes the wrong wire type */
function validLooking (rng: Prng, limits: FrameLimits): Uint8Array {
  const parts: Uint8Array[] = []
  const count = rng.int(1, limits.fields.length + 2)
  for (let i = 0; i < count; i++) {
    const spec = rng.pick(limits.fields)
    const wireType: WireType = rng.chance(0.15) ? rng.pick([0, 1, 2, 5] as const) : spec.wireType
    parts.push(field(rng, spec.field, wireType))
  }
  return concat(...parts)
}

/** A message of unknown fields and wire types, including the invalid ones */
function wrongFields (rng: Prng): Uint8Array {
  const parts: Uint8Array[] = []
  const count = rng.int(1, 6)
  for (let i = 0; i < count; i++) {
    const number = rng.chance(0.5) ? rng.int(1, 30) : rng.int(16, 2 ** 29 - 1)
    parts.push(field(rng, number, rng.int(0, 7) as WireType))
  }
  // field number 0 is invalid in every message
  if (rng.chance(0.2)) parts.unshift(Uint8Array.of(0x00, 0x01))
  return concat(...parts)
}

/** Splits bytes into 1..4 writes at random points, so that frames also arrive in pieces */
function split (rng: Prng, bytes: Uint8Array): Uint8Array[] {
  const writes: Uint8Array[] = []
  let at = 0
  const pieces = bytes.byteLength < 2 ? 1 : rng.int(1, 4)
  for (let i = 1; i < pieces; i++) {
    const cut = rng.int(at, bytes.byteLength)
    writes.push(bytes.subarray(at, cut))
    at = cut
  }
  writes.push(bytes.subarray(at))
  return writes.filter(w => w.byteLength > 0)
}

/** The case of `kind` for one protocol; everything random comes from `rng` (so from the seed and case index) */
export function generateCase (rng: Prng, kind: CaseKind, limits: FrameLimits): FuzzCase {
  const base = { kind, end: 'close' as const, streams: 1, holdMs: 0 }
  switch (kind) {
    case 'raw-garbage':
      return { ...base, writes: split(rng, rng.bytes(rng.int(1, 2048))) }
    case 'lp-garbage': {
      const size = rng.chance(0.02) ? rng.int(65_536, 262_144) : rng.int(0, 4096)
      return { ...base, writes: split(rng, frame(rng.bytes(size))) }
    }
    case 'truncated': {
      const declared = rng.int(1, Math.min(limits.maxMessageBytes, 65_536))
      const body = rng.bytes(rng.int(0, declared - 1))
      return { ...base, writes: split(rng, concat(varint(declared), body)) }
    }
    case 'oversized-prefix': {
      const declared = rng.pick([limits.maxMessageBytes + 1, limits.maxMessageBytes * 2, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1])
      return { ...base, writes: [concat(varint(declared), rng.bytes(rng.int(0, 1024)))] }
    }
    case 'overlong-varint': {
      // a length prefix that never ends, or one beyond 64 bits
      const prefix = new Uint8Array(rng.int(10, 16)).fill(0xff)
      if (rng.chance(0.5)) prefix[prefix.length - 1] = 0x01
      return { ...base, writes: [concat(prefix, rng.bytes(rng.int(0, 64)))] }
    }
    case 'wrong-fields':
      return { ...base, writes: split(rng, frame(wrongFields(rng))) }
    case 'valid-looking':
      return { ...base, writes: split(rng, frame(validLooking(rng, limits))) }
    case 'out-of-order': {
      // Several frames where one request is expected: an empty one first, requests twice, garbage after a request
      const frames = [rng.chance(0.5) ? frame(new Uint8Array(0)) : frame(validLooking(rng, limits)), frame(validLooking(rng, limits))]
      if (rng.chance(0.5)) frames.push(rng.chance(0.5) ? frame(validLooking(rng, limits)) : rng.bytes(rng.int(1, 64)))
      return { ...base, writes: frames }
    }
    case 'empty':
      return { ...base, writes: rng.chance(0.5) ? [] : [Uint8Array.of(0)] }
    case 'reset-mid-frame': {
      const declared = rng.int(2, Math.min(limits.maxMessageBytes, 65_536))
      return { ...base, end: 'reset', writes: [concat(varint(declared), rng.bytes(rng.int(0, declared - 1)))] }
    }
    case 'many-streams': {
      const declared = rng.int(2, 4096)
      return {
        ...base,
        streams: limits.maxInboundStreams + rng.int(1, 16),
        holdMs: 300,
        writes: [concat(varint(declared), rng.bytes(rng.int(0, declared - 1)))]
      }
    }
  }
}
