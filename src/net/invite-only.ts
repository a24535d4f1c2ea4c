import { TypedEventEmitter, UnsupportedProtocolError } from '@libp2p/interface'
import { handle } from '@libp2p/multistream-select'
import type { AbortOptions, Logger, MessageStream, Stream, StreamMuxer, StreamMuxerEvents, StreamMuxerFactory } from '@libp2p/interface'

/** An uncertified connection lives at most this long, answered or not (meta.md, "Invite redemption") */
export const UNCERTIFIED_LIFETIME_MS = 30_000

/** How long the remote has to name its protocol on a stream */
const NEGOTIATION_TIMEOUT_MS = 5_000

/** The uncertified connection outlived its lifetime */
export class UncertifiedTimeoutError extends Error {
  static name = 'UncertifiedTimeoutError'
  name = 'UncertifiedTimeoutError'
}

export interface InviteOnlyInit {
  /** The only protocols the remote may open: the meta protocol, for INVITE_REDEEM */
  protocols: string[]
  /** Default UNCERTIFIED_LIFETIME_MS */
  lifetimeMs?: number
  log: Logger
}

/**
 * The muxer of a connection admitted without a certificate. libp2p negotiates inbound streams against every
 * registered protocol and lets every service open streams on every connection; this muxer does neither: it
 * negotiates the remote's streams against `protocols` alone (so identify, kad-dht, gossipsub, chunk or swim are
 * answered "na" as if we did not speak them), opens no stream of ours, serves one request and closes the whole
 * connection when that stream ends or its lifetime is over.
 */
export function inviteOnlyMuxer (factory: StreamMuxerFactory, init: InviteOnlyInit): StreamMuxerFactory {
  return {
    protocol: factory.protocol,
    createStreamMuxer: (maConn) => new InviteOnlyMuxer(factory.createStreamMuxer(maConn), maConn, init)
  }
}

class InviteOnlyMuxer extends TypedEventEmitter<StreamMuxerEvents> implements StreamMuxer {
  private readonly inner: StreamMuxer
  private readonly maConn: MessageStream
  private readonly init: InviteOnlyInit
  private readonly timer: ReturnType<typeof setTimeout>
  private served = false

  constructor (inner: StreamMuxer, maConn: MessageStream, init: InviteOnlyInit) {
    super()
    this.inner = inner
    this.maConn = maConn
    this.init = init
    inner.addEventListener('stream', evt => { void this.admit(evt.detail) })
    const lifetimeMs = init.lifetimeMs ?? UNCERTIFIED_LIFETIME_MS
    this.timer = setTimeout(() => {
      this.end(new UncertifiedTimeoutError(`an uncertified connection is closed after ${lifetimeMs} ms`))
    }, lifetimeMs)
    maConn.addEventListener('close', () => { clearTimeout(this.timer) })
  }

  get protocol (): string { return this.inner.protocol }
  get streams (): Stream[] { return this.inner.streams }
  get status (): StreamMuxer['status'] { return this.inner.status }

  async createStream (): Promise<Stream> {
    // UnsupportedProtocolError, because libp2p's connection monitor treats any other failure of its ping as a dead
    // connection and aborts it mid-redemption.
    throw new UnsupportedProtocolError('no protocol is opened towards a peer without a certificate')
  }

  async close (options?: AbortOptions): Promise<void> {
    clearTimeout(this.timer)
    await this.inner.close(options)
  }

  abort (err: Error): void {
    clearTimeout(this.timer)
    this.inner.abort(err)
  }

  private async admit (stream: Stream): Promise<void> {
    try {
      stream.protocol = await handle(stream, this.init.protocols, { signal: AbortSignal.timeout(NEGOTIATION_TIMEOUT_MS) })
      if (this.served) throw new UnsupportedProtocolError('an uncertified connection carries one request')
      this.served = true
    } catch (err: any) {
      this.init.log('refused a stream of an uncertified peer - %s', err.message)
      stream.abort(err)
      return
    }
    // The answer has gone out once the stream is closed: nothing else may happen on this connection.
    stream.addEventListener('close', () => { this.end() })
    this.safeDispatchEvent('stream', { detail: stream })
  }

  private end (err?: Error): void {
    clearTimeout(this.timer)
    if (err != null) {
      this.init.log('%s', err.message)
      this.maConn.abort(err)
    } else {
      this.maConn.close().catch(e => { this.maConn.abort(e) })
    }
  }
}
