import { createReadStream } from 'node:fs'
import { call, callWithSocket } from '../control/client.js'
import { ControlProtocolError } from '../control/errors.js'
import { daemonCannotReach } from '../files/local-files.js'
import { drained } from '../util/drained.js'
import type { ContentId } from '../metadata/content.js'
import type { Entry } from '../metadata/store.js'

/** A local file to upload, and its identity as the uploader opened it */
export interface LocalFile { path: string, size: number, dev: number, ino: number }

/** What the daemon says about a path (`fs.stat`, `fs.ls` entries carry their `name` too) */
export type RemoteEntry = Entry & { name?: string }

export interface Capacity {
  capacityBytes: number
  freeBytes: number
  replication: number
  files: number
  dirs: number
}

/**
 * The daemon's file methods as the mount needs them, over the control socket. The daemon serves one request per
 * connection, so a connection is opened per call: a Unix socket connect costs microseconds, far below a FUSE
 * round trip, which is why there is no pool to keep warm.
 */
export class DaemonFs {
  constructor (private readonly socketPath: string) {}

  async stat (path: string, signal?: AbortSignal): Promise<RemoteEntry> {
    return await call(this.socketPath, 'fs.stat', { path }, { signal })
  }

  async list (path: string, signal?: AbortSignal): Promise<RemoteEntry[]> {
    return (await call(this.socketPath, 'fs.ls', { path }, { signal })).entries
  }

  async mkdir (path: string, mode: number, signal?: AbortSignal): Promise<RemoteEntry> {
    return await call(this.socketPath, 'fs.mkdir', { path, mode }, { signal })
  }

  async remove (path: string, signal?: AbortSignal): Promise<void> {
    await call(this.socketPath, 'fs.rm', { path }, { signal })
  }

  async rename (src: string, dst: string, signal?: AbortSignal): Promise<RemoteEntry> {
    return await call(this.socketPath, 'fs.mv', { src, dst }, { signal })
  }

  async setAttributes (path: string, attributes: { mode?: number, mtimeMs?: number }, signal?: AbortSignal): Promise<RemoteEntry> {
    return await call(this.socketPath, 'fs.setattr', { path, ...attributes }, { signal })
  }

  async capacity (signal?: AbortSignal): Promise<Capacity> {
    const df = await call(this.socketPath, 'df', {}, { signal })
    return { capacityBytes: df.total.capacityBytes, freeBytes: df.total.freeBytes, replication: df.replication, files: df.usage.files, dirs: df.usage.dirs }
  }

  /**
   * Stores a local file as `path` the way `collective-p2p put` does: the daemon opens the file itself (it runs on
   * this host) and reads it chunk by chunk, so the bytes cross neither the control socket nor this process. `file`
   * is what the caller opened, so a daemon that sees another file under that name (another mount namespace, a
   * private /tmp) refuses, and so does one that does not know the method or whose path is another member's
   * DataStore: then the bytes are streamed with `put`. `mode` applies to a new file only: a replaced file keeps
   * its mode.
   */
  async putLocal (path: string, local: LocalFile, mode?: number, signal?: AbortSignal): Promise<RemoteEntry> {
    try {
      return await call(this.socketPath, 'fs.putLocal', { path, localPath: local.path, file: { dev: local.dev, ino: local.ino }, mode, keepMode: true }, { signal })
    } catch (err) {
      if (!daemonCannotReach(err)) throw err
    }
    return await this.put(path, local.path, local.size, mode, signal)
  }

  /**
   * Stores `size` bytes of a local file as `path` (a new version; the daemon answers only once every chunk has its
   * replicas), streaming them over the control socket. `mode` applies to a new file only: a replaced file keeps
   * its mode.
   */
  async put (path: string, local: string | undefined, size: number, mode?: number, signal?: AbortSignal): Promise<RemoteEntry> {
    const { result, socket } = await callWithSocket(this.socketPath, 'fs.put', { path, size, mode }, {
      signal,
      body: async (socket) => {
        try {
          if (local != null && size > 0) {
            for await (const chunk of createReadStream(local, { start: 0, end: size - 1, highWaterMark: 256 * 1024 })) {
              if (socket.destroyed) throw new ControlProtocolError('the daemon closed the connection during the upload')
              // leaving the loop by throwing destroys the read stream of the local file
              if (!socket.write(chunk)) await drained(socket, () => new ControlProtocolError('the daemon closed the connection during the upload'), signal)
            }
          }
          socket.end()
        } catch (err: any) {
          // A clean end would make a short body look complete.
          socket.destroy(err)
          throw err
        }
      }
    })
    socket.destroy()
    return result
  }

  /**
   * The bytes of `path` from `offset`, `length` of them or up to the end of the file when it is omitted, as the
   * socket delivers them. The socket is read only as fast as the consumer pulls, so a consumer that stops pulling
   * stops the daemon too (its read-ahead waits on the socket). Aborting `signal` ends the iteration. With `opened`,
   * the daemon refuses (FileChangedError) once `path` holds another content than that.
   *
   * @throws ControlProtocolError when the daemon sends more or fewer bytes than it announced
   */
  async * stream (path: string, offset: number, length?: number, signal?: AbortSignal, opened?: ContentId): AsyncGenerator<Buffer> {
    const { result, socket } = await callWithSocket(this.socketPath, 'fs.read', { path, offset, length, ...opened }, { signal })
    // An abort while the socket waits for bytes must end the iteration, not only the next one.
    const onAbort = (): void => { socket.destroy() }
    signal?.addEventListener('abort', onAbort, { once: true })
    const expected = Number(result?.length)
    let received = 0
    try {
      if (!Number.isSafeInteger(expected) || expected < 0 || (length != null && expected > length)) throw new ControlProtocolError(`the daemon announced an invalid length for ${path}`)
      if (expected > 0) {
        for await (const chunk of socket as AsyncIterable<Buffer>) {
          if (received + chunk.length > expected) throw new ControlProtocolError(`the daemon sent more than the ${expected} bytes it announced for ${path}`)
          received += chunk.length
          yield chunk
          if (received === expected) break
        }
      }
      signal?.throwIfAborted()
      if (received < expected) throw new ControlProtocolError(`read of ${path} stopped after ${received} of ${expected} bytes`)
    } finally {
      signal?.removeEventListener('abort', onAbort)
      socket.destroy()
    }
  }
}

