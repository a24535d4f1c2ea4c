import { sleep } from '../util/backoff.js'

export interface TokenBucketInit {
  /** Bytes per second on average */
  bytesPerSecond: number
  /** Bytes that may pass at once after a quiet spell (default: one second's worth) */
  burstBytes?: number
  now?: () => number
  /** How a take waits for the budget (default: a timer); tests record the waits instead */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
}

/**
 * A bandwidth budget shared by concurrent transfers. A take larger than what is left goes into debt and waits
 * until the debt is paid back, so a 4 MiB chunk passes under a 1 MiB/s budget, and the average holds however
 * many callers take at once.
 */
export class TokenBucket {
  private readonly rate: number
  private readonly burst: number
  private readonly now: () => number
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  private tokens: number
  private last: number

  constructor (init: TokenBucketInit) {
    if (!(init.bytesPerSecond > 0)) throw new RangeError(`bandwidth must be positive, got ${init.bytesPerSecond}`)
    this.rate = init.bytesPerSecond
    this.burst = init.burstBytes ?? init.bytesPerSecond
    this.now = init.now ?? Date.now
    this.sleep = init.sleep ?? sleep
    this.tokens = this.burst
    this.last = this.now()
  }

  /** Resolves once `bytes` fit the budget; an aborted wait gives nothing back (the bytes are not sent) */
  async take (bytes: number, signal?: AbortSignal): Promise<void> {
    const now = this.now()
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) / 1000 * this.rate)
    this.last = now
    this.tokens -= bytes
    if (this.tokens >= 0) return
    const waitMs = Math.ceil(-this.tokens / this.rate * 1000)
    try {
      await this.sleep(waitMs, signal)
    } catch (err) {
      this.tokens += bytes
      throw err
    }
  }
}
