import { Uint8ArrayList } from 'uint8arraylist'

/**
 * Bytes that sit in a buffer lent from a pool (BufferPool, src/util/buffer-pool.ts). Whoever ends up holding them calls
 * `releaseBytes()` once nothing reads them any more, not even a view kept from them, and the buffer goes back to
 * be filled again. Bytes never released are left to the garbage collector, which is always safe: releasing is
 * only ever an optimisation, so only code that knows where every view of the bytes went does it.
 */
export class LentBytes extends Uint8ArrayList {
  private giveBack?: () => void

  constructor (giveBack: () => void, ...bufs: Uint8Array[]) {
    super(...bufs)
    this.giveBack = giveBack
  }

  /** Hands the buffer back; only the first call counts */
  release (): void {
    const giveBack = this.giveBack
    this.giveBack = undefined
    giveBack?.()
  }
}

/** Gives lent bytes back to their pool once their holder is done with them; other bytes are left alone */
export function releaseBytes (bytes: Uint8Array | Uint8ArrayList): void {
  if (bytes instanceof LentBytes) bytes.release()
}
