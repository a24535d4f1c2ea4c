// A minimal, strict DER reader/writer for the few structures @peculiar/x509 does not model for us (our custom
// extensions, NameConstraints) and for reading the exact signed bytes of a certificate. Everything here handles
// bytes from remote peers, so every length is bounds-checked and only definite, minimal lengths are accepted.

export class DerError extends Error {
  static override name = 'DerError'
  override name = 'DerError'
}

export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30
} as const

export interface Tlv {
  tag: number
  /** The whole element, header included */
  raw: Uint8Array
  /** The contents only */
  value: Uint8Array
}

/** Reads one element at `offset`; returns it and the offset just after it. */
export function readTlv (buf: Uint8Array, offset = 0): { tlv: Tlv, next: number } {
  if (offset + 2 > buf.length) throw new DerError('truncated element')
  const tag = buf[offset]
  // High tag numbers never occur in the structures we read
  if ((tag & 0x1f) === 0x1f) throw new DerError('unsupported high tag number')
  let pos = offset + 1
  let length = buf[pos++]
  if (length === 0x80) throw new DerError('indefinite length is not DER')
  if (length > 0x80) {
    const count = length & 0x7f
    if (count > 4) throw new DerError('length too large')
    if (pos + count > buf.length) throw new DerError('truncated length')
    if (buf[pos] === 0) throw new DerError('non-minimal length')
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos++]
    if (length < 0x80) throw new DerError('non-minimal length')
  }
  const end = pos + length
  if (end > buf.length) throw new DerError('truncated contents')
  return { tlv: { tag, raw: buf.subarray(offset, end), value: buf.subarray(pos, end) }, next: end }
}

/** Reads exactly one element that spans the whole buffer. */
export function readSingle (buf: Uint8Array, expectedTag?: number): Tlv {
  const { tlv, next } = readTlv(buf, 0)
  if (next !== buf.length) throw new DerError('trailing bytes after element')
  if (expectedTag != null && tlv.tag !== expectedTag) throw new DerError(`expected tag 0x${expectedTag.toString(16)}, got 0x${tlv.tag.toString(16)}`)
  return tlv
}

/** Splits the contents of a constructed element into its children. */
export function readChildren (value: Uint8Array): Tlv[] {
  const out: Tlv[] = []
  let offset = 0
  while (offset < value.length) {
    const { tlv, next } = readTlv(value, offset)
    out.push(tlv)
    offset = next
  }
  return out
}

export function encodeTlv (tag: number, ...contents: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const length = contents.reduce((n, c) => n + c.length, 0)
  let header: number[]
  if (length < 0x80) {
    header = [tag, length]
  } else {
    const bytes: number[] = []
    for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256)
    header = [tag, 0x80 | bytes.length, ...bytes]
  }
  const out = new Uint8Array(header.length + length)
  out.set(header, 0)
  let offset = header.length
  for (const c of contents) { out.set(c, offset); offset += c.length }
  return out
}

export function encodeUtf8String (text: string): Uint8Array<ArrayBuffer> {
  return encodeTlv(TAG.UTF8_STRING, new TextEncoder().encode(text))
}

export function decodeUtf8String (buf: Uint8Array): string {
  const { value } = readSingle(buf, TAG.UTF8_STRING)
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(value)
  } catch {
    throw new DerError('UTF8String is not valid UTF-8')
  }
}

export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i]
  return diff === 0
}
