import { connect } from 'node:net'
import { readLine, writeLine } from './framing.js'
import { DaemonNotRunningError, DaemonError, ControlProtocolError } from './errors.js'
import type { Socket } from 'node:net'

export interface CallOptions {
  signal?: AbortSignal
  /** Receives the daemon's progress lines */
  onProgress?: (event: Record<string, any>) => void
  /** Streams a request body after the request line (an upload) */
  body?: (socket: Socket) => Promise<void>
}

export async function openControl (path: string, signal?: AbortSignal): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const socket = connect(path)
    const onAbort = (): void => { socket.destroy(); reject(signal?.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => { signal?.removeEventListener('abort', onAbort); resolve(socket) })
    socket.once('error', (err: any) => {
      signal?.removeEventListener('abort', onAbort)
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new DaemonNotRunningError(`no daemon is running on ${path} (start one with "collective-p2p up" or "collective-p2p daemon --config FILE")`))
      } else {
        reject(err)
      }
    })
  })
}

/**
 * Calls one method on the daemon. Returns the result and the socket, still open and positioned after the result
 * line, for methods that stream a body back; callers that expect no body simply ignore it.
 */
export async function callWithSocket (path: string, method: string, params: Record<string, unknown> = {}, options: CallOptions = {}): Promise<{ result: any, socket: Socket }> {
  const socket = await openControl(path, options.signal)
  try {
    writeLine(socket, { method, params })
    const uploading = options.body?.(socket)
    // A failed upload must not hide the daemon's answer, which says why.
    uploading?.catch(() => {})
    while (true) {
      const line = await readLine(socket, options.signal) as any
      if (line == null) throw new ControlProtocolError('the daemon closed the connection without answering')
      if (line.type === 'progress') { options.onProgress?.(line); continue }
      if (line.type === 'error') throw new DaemonError(line.error?.name ?? 'Error', line.error?.message ?? 'unknown error', line.error?.details)
      if (line.type === 'result') {
        await uploading
        return { result: line.result, socket }
      }
      throw new ControlProtocolError('unexpected message from the daemon')
    }
  } catch (err) {
    socket.destroy()
    throw err
  }
}

export async function call (path: string, method: string, params: Record<string, unknown> = {}, options: CallOptions = {}): Promise<any> {
  const { result, socket } = await callWithSocket(path, method, params, options)
  socket.destroy()
  return result
}
