import { Uint8ArrayList } from 'uint8arraylist'
import type { FuzzCase } from './frames.js'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'

/**
 * How the server dealt with one stream of a case:
 * - `answered`: it sent something back (a protocol error, or an answer to a valid-looking request)
 * - `closed`: it closed its side without a word
 * - `reset`: it reset the stream (what our servers do with a malformed or oversized frame)
 * - `refused`: the stream never opened (protocol negotiation refused, or too many streams)
 * - `ended`: we reset the stream ourselves, as the case said, so there is nothing to wait for
 * - `timeout`: none of the above within the deadline: the server is stuck on input that is over
 */
export type Outcome = 'answered' | 'closed' | 'reset' | 'refused' | 'ended' | 'timeout'

export interface StreamResult {
  outcome: Outcome
  /** What the server sent (capped) */
  response: Uint8Array
  /** Name of the error that ended the stream, if any */
  error?: string
}

/** Bytes kept of an answer: enough to read a refusal, never a whole chunk */
const MAX_KEPT_BYTES = 64 * 1024

async function sleep (ms: number): Promise<void> { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Sends a case on as many streams as it asks for, at once, and reports what the server did with each */
export async function runCase (host: Libp2p, peer: PeerId, protocol: string, c: FuzzCase, timeoutMs: number): Promise<StreamResult[]> {
  return await Promise.all(Array.from({ length: c.streams }, async () => await runStream(host, peer, protocol, c, timeoutMs)))
}

async function runStream (host: Libp2p, peer: PeerId, protocol: string, c: FuzzCase, timeoutMs: number): Promise<StreamResult> {
  const signal = AbortSignal.timeout(timeoutMs)
  let stream: Stream
  try {
    stream = await host.dialProtocol(peer, protocol, { signal })
  } catch (err: any) {
    return { outcome: signal.aborted ? 'timeout' : 'refused', response: new Uint8Array(0), error: err?.name }
  }

  const received = new Uint8ArrayList()
  let check = (): void => {}
  // Events, not `for await`: iterating a stream whose remote already closed can hang in libp2p 3.3.
  const settled = new Promise<StreamResult>(resolve => {
    const result = (outcome: Outcome, error?: string): void => {
      resolve({ outcome: received.byteLength > 0 ? 'answered' : outcome, response: received.subarray(), error })
    }
    // A server over its stream limit resets at once, possibly before these listeners exist: read the state too.
    check = () => {
      if (stream.status === 'reset' || stream.status === 'aborted') result('reset')
      else if (stream.status === 'closed' || stream.remoteWriteStatus === 'closed') result('closed')
    }
    stream.addEventListener('message', (e) => {
      if (received.byteLength < MAX_KEPT_BYTES) received.append(e.data)
    })
    stream.addEventListener('remoteCloseWrite', () => { result('closed') })
    stream.addEventListener('close', (e) => { result(e.error != null ? 'reset' : 'closed', e.error?.name) })
  })
  check()

  try {
    for (const write of c.writes) {
      if (!stream.send(write)) await stream.onDrain({ signal })
    }
    if (c.holdMs > 0) await sleep(c.holdMs)
    if (c.end === 'reset') {
      stream.abort(new Error('fuzz case resets its stream'))
      return { outcome: 'ended', response: new Uint8Array(0) }
    }
    await stream.close({ signal })
  } catch {
    // the server reset the stream while we were still writing: the outcome below says so
  }
  check()

  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<StreamResult>(resolve => {
    timer = setTimeout(() => { resolve({ outcome: 'timeout', response: received.subarray() }) }, timeoutMs)
  })
  const result = await Promise.race([settled, deadline])
  clearTimeout(timer)
  if (result.outcome === 'timeout') stream.abort(new Error('fuzz case timed out'))
  return result
}
