import { pbStream } from '@libp2p/utils'
import { ProtocolError, RequestTimeoutError, StreamClosedError } from './errors.js'
import { combineSignals } from '../util/signals.js'
import type { ClearableSignal } from '../util/signals.js'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { AbortOptions, Connection, Libp2p, PeerId, Stream, Logger } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Every protocol declares these; nothing on the wire is unbounded in size or time */
export interface ProtocolLimits {
  /** Largest single frame accepted, in bytes */
  maxMessageBytes: number
  /** How long one request/response exchange may take, in ms */
  timeoutMs: number
}

/** A protons-generated message namespace: it encodes and decodes itself */
export interface MessageType<T> {
  encode: (value: T) => Uint8Array
  decode: (bytes: Uint8Array | Uint8ArrayList) => T
}

/** The caller's signal or the timeout; `clear()` it when done (see combineSignals) */
function withTimeout (timeoutMs: number, signal?: AbortSignal): ClearableSignal {
  return combineSignals(signal, AbortSignal.timeout(timeoutMs))
}

function translate (err: any, signal: AbortSignal, callerSignal: AbortSignal | undefined, what: string, timeoutMs: number): Error {
  if (signal.aborted && callerSignal?.aborted !== true) {
    return new RequestTimeoutError(`${what} timed out after ${timeoutMs} ms`)
  }
  if (err?.name === 'InvalidDataLengthError') {
    return new ProtocolError(`${what}: message larger than the protocol allows`)
  }
  // A stream or connection that ends under a read rejects with its close or abort event, not an Error: give the
  // caller something with a name and a message.
  if (!(err instanceof Error)) {
    return new StreamClosedError(`${what}: the stream ended before the answer (${String(err?.type ?? err)})`)
  }
  return err
}

/** Sends one request on a fresh stream and reads one response: the shape of every control-plane call we make */
export async function request<Req, Res> (
  host: Libp2p, peer: PeerId | Multiaddr | Multiaddr[], protocol: string,
  req: Req, reqType: MessageType<Req>, resType: MessageType<Res>,
  limits: ProtocolLimits, options: AbortOptions = {}
): Promise<Res> {
  const signal = withTimeout(limits.timeoutMs, options.signal)
  let stream: Stream | undefined
  try {
    stream = await host.dialProtocol(peer, protocol, { signal })
    const pb = pbStream(stream, { maxDataLength: limits.maxMessageBytes })
    await pb.write(req, reqType, { signal })
    const res = await pb.read(resType, { signal })
    await stream.close({ signal }).catch(() => {})
    return res
  } catch (err: any) {
    const e = translate(err, signal, options.signal, `${protocol} request`, limits.timeoutMs)
    stream?.abort(e)
    throw e
  } finally {
    signal.clear()
  }
}

export interface RequestContext {
  connection: Connection
  remotePeer: PeerId
  signal: AbortSignal
}

/**
 * Serves a request/response protocol: reads one bounded request, runs the handler under the protocol's timeout,
 * writes one response. A malformed or oversized frame closes the stream; the handler never sees it.
 */
export async function handleRequests<Req, Res> (
  host: Libp2p, protocol: string, reqType: MessageType<Req>, resType: MessageType<Res>,
  handler: (req: Req, ctx: RequestContext) => Promise<Res>,
  limits: ProtocolLimits & { maxInboundStreams?: number }, log: Logger
): Promise<void> {
  await host.handle(protocol, async (stream, connection) => {
    const signal = AbortSignal.timeout(limits.timeoutMs)
    try {
      const pb = pbStream(stream, { maxDataLength: limits.maxMessageBytes })
      const req = await pb.read(reqType, { signal })
      const res = await handler(req, { connection, remotePeer: connection.remotePeer, signal })
      await pb.write(res, resType, { signal })
      await stream.close({ signal })
    } catch (err: any) {
      const e = translate(err, signal, undefined, `${protocol} handler`, limits.timeoutMs)
      log('%s from %p failed - %s: %s', protocol, connection.remotePeer, e.name, e.message)
      stream.abort(e)
    }
  }, { maxInboundStreams: limits.maxInboundStreams ?? 32 })
}
