import type { Socket } from 'node:net'
import { ControlProtocolError } from './errors.js'

/**
 * The control socket speaks newline-delimited JSON: the client sends one request line, the daemon answers with
 * zero or more progress lines and exactly one result or error line. A request may be followed by raw bytes
 * (an upload) and a result by raw bytes (a download); both sides know from the method when that happens.
 */
export const MAX_LINE_BYTES = 1024 * 1024

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
