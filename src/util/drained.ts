import type { Writable } from 'node:stream'

/**
 * Resolves once `stream` takes more bytes ('drain'). Rejects when the stream fails, when `signal` aborts, or with
 * `onClose()` when it closes first: a stream destroyed by its owner (a socket whose peer answered with an error)
 * emits 'close' alone, and a wait for 'drain' by itself would never end.
 */
export async function drained (stream: Writable, onClose: () => Error, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const settle = (err?: Error): void => {
      stream.off('drain', onDrain)
      stream.off('close', onCloseEvent)
      stream.off('error', settle)
      signal?.removeEventListener('abort', onAbort)
      if (err != null) reject(err); else resolve()
    }
    const onDrain = (): void => { settle() }
    const onCloseEvent = (): void => { settle(onClose()) }
    const onAbort = (): void => { settle(signal?.reason) }
    stream.once('drain', onDrain)
    stream.once('close', onCloseEvent)
    stream.once('error', settle)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
