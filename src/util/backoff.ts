export interface BackoffInit {
  /** First delay in ms (default 250) */
  initialMs?: number
  /** Largest delay in ms (default 30 s) */
  maxMs?: number
  /** Growth per attempt (default 2) */
  factor?: number
  /** Source of randomness, for tests (default Math.random) */
  random?: () => number
}

/** Exponential backoff with full jitter: spreads retries of many peers instead of synchronising them */
export function backoffDelay (attempt: number, init: BackoffInit = {}): number {
  const initial = init.initialMs ?? 250
  const max = init.maxMs ?? 30_000
  const ceiling = Math.min(max, initial * Math.pow(init.factor ?? 2, Math.max(0, attempt)))
  return Math.round((init.random ?? Math.random)() * ceiling)
}

/** Resolves after ms, or rejects with the signal's reason when it aborts first */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) throw signal.reason
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    const onAbort = (): void => { clearTimeout(timer); reject(signal?.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
