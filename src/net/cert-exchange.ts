import { pbStream } from '@libp2p/utils'
import { CertificateChain, Verdict } from '../gen/noise-cert.js'
import { CertificateRefusedError, HandshakeTimeoutError } from './errors.js'
import { combineSignals } from '../util/signals.js'
import type { ClearableSignal } from '../util/signals.js'
import type { Logger, MessageStream, PeerId, SecureConnectionOptions, SecuredConnection } from '@libp2p/interface'

/** Negotiated in place of `/noise` (spec: protocols/noise-cert.md) */
export const HANDSHAKE_PROTOCOL = '/collective/noise-cert/1.0.0'

/** A chain is at most 4 certificates of 16 KiB each; anything larger is refused before it is decoded */
export const MAX_CHAIN_MESSAGE_BYTES = 70 * 1024

export const DEFAULT_EXCHANGE_TIMEOUT_MS = 10_000

export type Direction = 'inbound' | 'outbound'

export interface RefusalEvent {
  direction: Direction
  remotePeer?: string
  /** Stable name of the failed check; `remote:<name>` when the remote refused us */
  reason: string
  error: Error
}

export interface ExchangeInit<T> {
  /** Our chain as DER, leaf first; empty when we hold no certificate yet (a newcomer redeeming an invite) */
  chain: Uint8Array[]
  /** Decides on the remote's chain: returns what the caller keeps of it, or throws the refusal, whose name becomes the verdict's reason */
  judge: (remote: Uint8Array[], remotePeer: PeerId) => Promise<T>
  direction: Direction
  timeoutMs?: number
  log: Logger
  onRefused?: (event: RefusalEvent) => void
}

/**
 * Steps 2 to 4 of the handshake, inside a finished Noise session: both sides send their chain, judge the other's,
 * send a verdict and read the other's. Only when both accepted does it return the stream for the muxer; otherwise
 * the connection is aborted and the refusal thrown.
 */
export async function exchangeCertificates<T> (secured: SecuredConnection, init: ExchangeInit<T>, options?: SecureConnectionOptions): Promise<{ connection: MessageStream, admitted: T }> {
  const timeoutMs = init.timeoutMs ?? DEFAULT_EXCHANGE_TIMEOUT_MS
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = combineSignals(options?.signal, timeout)
  let readSignal: ClearableSignal | undefined
  const pb = pbStream(secured.connection, { maxDataLength: MAX_CHAIN_MESSAGE_BYTES })

  try {
    // Both sides write first and read second, so neither waits for the other.
    await pb.write({ certificates: init.chain as Array<Uint8Array<ArrayBuffer>> }, CertificateChain, { signal })
    const remote = await pb.read(CertificateChain, { signal, limits: { certificates: 4 } })

    let admitted: T | undefined
    let refusal: Error | undefined
    try {
      admitted = await init.judge(remote.certificates, secured.remotePeer)
    } catch (err: any) {
      refusal = err
    }

    // Both sides send their verdict and read the other's before anyone closes, so each learns why it was
    // refused. A side that refuses waits only briefly: a hostile peer gets no time to hold the connection.
    const wrote = await pb.write({ accepted: refusal == null, reason: refusal?.name ?? '' }, Verdict, { signal }).then(() => undefined, (err: unknown) => asError(err))
    readSignal = refusal == null ? signal : combineSignals(signal, AbortSignal.timeout(2_000))
    const verdict = await pb.read(Verdict, { signal: readSignal }).catch((err: unknown) => asError(err))
    if (refusal != null) throw refusal
    if (verdict instanceof Error) throw wrote ?? verdict
    if (!verdict.accepted) throw new CertificateRefusedError(verdict.reason.slice(0, 64))
    return { connection: pb.unwrap(), admitted: admitted as T }
  } catch (thrown: unknown) {
    const err = asError(thrown)
    const error: Error = timeout.aborted && options?.signal?.aborted !== true
      ? new HandshakeTimeoutError(`certificate exchange timed out after ${timeoutMs} ms`)
      : err
    init.log.error('%s handshake with %p refused - %s: %s', init.direction, secured.remotePeer, error.name, error.message)
    init.onRefused?.({ direction: init.direction, remotePeer: secured.remotePeer.toString(), reason: error instanceof CertificateRefusedError ? `remote:${error.reason}` : (error.name ?? 'Error'), error })
    secured.connection.abort(error)
    // The upgrader keeps only the message, so the stable name travels in it. Some errors (a DOMException from an
    // aborted signal) have a read-only message: those are rethrown as a plain Error of the same name.
    const message = `${String(error.name)}: ${String(error.message)}`
    try {
      error.message = message
      throw error
    } catch (e) {
      if (e === error) throw error
      const plain = new Error(message, { cause: error })
      plain.name = error.name
      throw plain
    }
  } finally {
    signal.clear()
    readSignal?.clear()
  }
}

/** A Noise failure is what a peer of another federation (different prologue) or a non-collective peer causes */
export function noiseFailed (direction: Direction, err: Error, log: Logger, onRefused?: (event: RefusalEvent) => void): Error {
  log('%s noise handshake failed - %s', direction, err.message)
  onRefused?.({ direction, reason: 'NoiseHandshakeError', error: err })
  return err
}

/** Streams sometimes reject with events or strings; everything we rethrow must be an Error with a name */
function asError (err: unknown): Error {
  if (err instanceof Error) return err
  const e = new Error(typeof err === 'string' ? err : `connection closed during the certificate exchange (${String((err as any)?.type ?? err)})`)
  e.name = 'HandshakeClosedError'
  return e
}
