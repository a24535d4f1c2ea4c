import type { Socket } from 'node:net'
import { ControlProtocolError, IncompleteUploadError } from './errors.js'

/**
 * The control socket speaks newline-delimited JSON: the client sends one request line, the daemon answers with
 * zero or more progress lines and exactly one result or error line. A request may be followed by an upload body
 * and a result by raw bytes (a download); both sides know from the method when that happens.
 *
 * An upload body is raw bytes when the request declares their `size` (the daemon checks it). An upload of unknown
 * size (stdin) says `framed: true` and sends frames instead: a 4-byte big-endian length, then that many bytes; a
 * frame of length 0 ends the body. A connection that ends before that frame is a client that went away (killed
 * in the middle of `tar c … | collective-p2p write`), not the end of the file, so nothing is stored.
 */
export const MAX_LINE_BYTES = 1024 * 1024

const FRAME_HEADER_BYTES = 4

/** The header of a frame of `length` bytes; `frameHeader(0)` ends a framed body */
export function frameHeader (length: number): Uint8Array {
  const header = new Uint8Array(FRAME_HEADER_BYTES)
  new DataView(header.buffer).setUint32(0, length)
  return header
}

/**
 * The bytes of a framed upload body, as they arrive, up to its end frame
 *
 * @throws IncompleteUploadError when the source ends first
 * @throws ControlProtocolError for bytes after the end frame
 */
export async function * readFramedBody (source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const header: number[] = []
  let remaining = 0
  let received = 0
  for await (const chunk of source) {
    let at = 0
    while (at < chunk.length) {
      if (remaining > 0) {
        const n = Math.min(remaining, chunk.length - at)
        yield chunk.subarray(at, at + n)
        at += n
        remaining -= n
        received += n
        continue
      }
      header.push(chunk[at++])
      if (header.length < FRAME_HEADER_BYTES) continue
      remaining = new DataView(Uint8Array.from(header).buffer).getUint32(0)
      header.length = 0
      if (remaining === 0) {
        if (at < chunk.length) throw new ControlProtocolError('bytes after the end frame of an upload')
        return
      }
    }
  }
  throw new IncompleteUploadError(`the upload ended after ${received} bytes without its end frame: the client went away before the end of its input`)
}

export interface RequestLine { method: string, params?: Record<string, unknown> }
export type ResponseLine =
  | { type: 'progress', [key: string]: unknown }
  | { type: 'result', result: unknown }
  | { type: 'error', error: { name: string, message: string, details?: unknown } }

/**
 * Reads one JSON line from a socket without consuming anything after it: bytes past the newline are pushed back
 * with unshift so a raw body that follows stays readable in order.
 */
export async function readLine (socket: Socket, signal?: AbortSignal): Promise<unknown | null> {
  const parts: Buffer[] = []
  let size = 0
  return await new Promise((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('readable', onReadable)
      socket.off('end', onEnd)
      socket.off('error', onError)
      signal?.removeEventListener('abort', onAbort)
    }
    const onError = (err: Error): void => { cleanup(); reject(err) }
    const onAbort = (): void => { cleanup(); reject(signal?.reason) }
    const onEnd = (): void => {
      cleanup()
      if (size === 0) { resolve(null); return }
      reject(new ControlProtocolError('connection closed in the middle of a message'))
    }
    const onReadable = (): void => {
      let chunk: Buffer | null
      while ((chunk = socket.read() as Buffer | null) != null) {
        const nl = chunk.indexOf(10)
        if (nl === -1) {
          parts.push(chunk)
          size += chunk.length
          if (size > MAX_LINE_BYTES) { cleanup(); reject(new ControlProtocolError(`control message over ${MAX_LINE_BYTES} bytes`)); return }
          continue
        }
        parts.push(chunk.subarray(0, nl))
        const rest = chunk.subarray(nl + 1)
        cleanup()
        if (rest.length > 0) socket.unshift(rest)
        try {
          resolve(JSON.parse(Buffer.concat(parts).toString('utf8')))
        } catch {
          reject(new ControlProtocolError('malformed control message: not JSON'))
        }
        return
      }
    }
    if (signal?.aborted === true) { reject(signal.reason); return }
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.on('readable', onReadable)
    socket.on('end', onEnd)
    socket.on('error', onError)
    onReadable()
  })
}

export function writeLine (socket: Socket, value: unknown): boolean {
  return socket.write(JSON.stringify(value, (_k, v) => typeof v === 'bigint' ? Number(v) : v) + '\n')
}
