import { createServer, connect } from 'node:net'
import { chmod, unlink, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { readLine, writeLine } from './framing.js'
import { DaemonAlreadyRunningError, UnknownMethodError, ControlProtocolError } from './errors.js'
import { combineSignals } from '../util/signals.js'
import type { Server, Socket } from 'node:net'
import type { ComponentLogger, Logger } from '@libp2p/interface'

export interface ControlContext {
  /** The client connection: handlers that stream read the request body from it or write a body after the result */
  socket: Socket
  /** Aborted when the client goes away or the daemon stops */
  signal: AbortSignal
  /** Sends a progress line to the client */
  progress: (event: Record<string, unknown>) => void
}

/**
 * A handler returns the result object. If it returns a function, the daemon first writes the result line and then
 * calls the function to stream a raw body to the client (a download).
 */
export type ControlHandler = (params: Record<string, unknown>, ctx: ControlContext) => Promise<unknown>

export class ControlBody {
  constructor (readonly result: unknown, readonly write: (socket: Socket, signal: AbortSignal) => Promise<void>) {}
}

export interface ControlServerInit {
  /** Path of the Unix socket; created with mode 0600 */
  path: string
  /** How long an idle client may keep a connection (default 10 minutes) */
  idleTimeoutMs?: number
}

/**
 * The daemon's control socket: the CLI's only way in. Only the user who owns the daemon can connect (mode 0600),
 * so it carries no authentication of its own.
 */
export class ControlServer {
  private readonly init: ControlServerInit
  private readonly handlers = new Map<string, ControlHandler>()
  private readonly sockets = new Set<Socket>()
  private readonly controller = new AbortController()
  private server?: Server
  private readonly log: Logger

  constructor (components: { logger: ComponentLogger }, init: ControlServerInit) {
    this.init = init
    this.log = components.logger.forComponent('collective:control')
  }

  register (method: string, handler: ControlHandler): void {
    this.handlers.set(method, handler)
  }

  /** The handler registered for `method`, so a later component can wrap it (route some calls elsewhere) */
  handler (method: string): ControlHandler | undefined {
    return this.handlers.get(method)
  }

  async start (): Promise<void> {
    await mkdir(dirname(this.init.path), { recursive: true, mode: 0o700 })
    await this.clearStaleSocket()
    // Half-open: a client half-closes after its upload (framing.ts says how the end of a body is known), and the
    // answer still has to go back.
    const server = createServer({ allowHalfOpen: true }, socket => { this.serve(socket) })
    const oldMask = process.umask(0o177)
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(this.init.path, () => { server.off('error', reject); resolve() })
      })
    } finally {
      process.umask(oldMask)
    }
    await chmod(this.init.path, 0o600)
    this.server = server
  }

  async stop (): Promise<void> {
    this.controller.abort(new Error('daemon stopping'))
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>(resolve => { this.server == null ? resolve() : this.server.close(() => { resolve() }) })
    await unlink(this.init.path).catch(() => {})
  }

  /** A socket file with nobody listening is what a crashed daemon leaves behind; one that answers is a live daemon */
  private async clearStaleSocket (): Promise<void> {
    const alive = await new Promise<boolean>(resolve => {
      const s = connect(this.init.path)
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => { resolve(false) })
    })
    if (alive) throw new DaemonAlreadyRunningError(`a daemon is already running on ${this.init.path}`)
    await unlink(this.init.path).catch(() => {})
  }

  private serve (socket: Socket): void {
    this.sockets.add(socket)
    const client = new AbortController()
    const signal = combineSignals(client.signal, this.controller.signal)
    socket.setTimeout(this.init.idleTimeoutMs ?? 600_000, () => { socket.destroy() })
    socket.once('close', () => { this.sockets.delete(socket); client.abort(new Error('client went away')) })
    socket.on('error', () => {})

    void (async () => {
      let method = '?'
      let bodyStarted = false
      try {
        const req = await readLine(socket, signal) as { method?: unknown, params?: unknown } | null
        if (req == null) return
        if (typeof req !== 'object' || typeof req.method !== 'string') throw new ControlProtocolError('request needs a "method" string')
        method = req.method
        const handler = this.handlers.get(method)
        if (handler == null) throw new UnknownMethodError(`this daemon has no method "${method}"`)
        const params = (req.params != null && typeof req.params === 'object') ? req.params as Record<string, unknown> : {}
        const out = await handler(params, { socket, signal, progress: (e) => { writeLine(socket, { type: 'progress', ...e }) } })
        if (out instanceof ControlBody) {
          writeLine(socket, { type: 'result', result: out.result })
          bodyStarted = true
          await out.write(socket, signal)
          socket.end()
        } else {
          writeLine(socket, { type: 'result', result: out ?? null })
          socket.end()
        }
      } catch (err: any) {
        this.log('control %s failed - %s: %s', method, err?.name, err?.message)
        if (bodyStarted) {
          // An error line now would be taken for body bytes; a cut connection is what tells the client.
          socket.destroy()
        } else if (!socket.destroyed) {
          writeLine(socket, { type: 'error', error: { name: err?.name ?? 'Error', message: err?.message ?? String(err), details: err?.details } })
          socket.end()
        }
      } finally {
        signal.clear()
      }
    })()
  }
}
