import { Semaphore } from '../util/semaphore.js'
import { SizeMismatchError } from './errors.js'

/**
 * The upload loop both writers share (the local one and the remote one): chunks go out as they are cut, each
 * holding a slot until its task settles, so memory is bounded by the slots whatever the file's size. The first
 * failure is kept; the caller stops feeding once `failed`, and `drain()` throws it after the rest settled.
 */
export class ChunkPipeline {
  private readonly slots: Semaphore
  private readonly inflight = new Set<Promise<void>>()
  private readonly signal?: AbortSignal
  private failure?: Error

  constructor (slots: number, signal?: AbortSignal) {
    this.slots = new Semaphore(slots)
    this.signal = signal
  }

  /** A task has failed: feed no more chunks */
  get failed (): boolean {
    return this.failure != null
  }

  /** Waits for a free slot, one per chunk about to be read into memory */
  async reserve (): Promise<void> {
    await this.slots.acquire(this.signal)
  }

  /** Starts `task`, which holds `slots` reserved slots until it settles; `settled` runs first (e.g. to lend buffers again) */
  run (task: Promise<void>, slots = 1, settled?: () => void): void {
    const tracked: Promise<void> = task
      .catch((err: Error) => { this.failure ??= err })
      .finally(() => {
        settled?.()
        for (let i = 0; i < slots; i++) this.slots.release()
        this.inflight.delete(tracked)
      })
    this.inflight.add(tracked)
  }

  /** Waits for every task; throws the first failure */
  async drain (): Promise<void> {
    await Promise.all(this.inflight)
    if (this.failure != null) throw this.failure
  }

  /** The caller failed on its own: lets the tasks in flight settle before it reports that */
  async abandon (): Promise<void> {
    await Promise.allSettled(this.inflight)
  }
}

/** Counts an upload's bytes against the size its caller declared, if any */
export class DeclaredSize {
  total = 0

  constructor (private readonly path: string, private readonly size?: number) {}

  /** @throws SizeMismatchError once more bytes arrived than declared */
  add (bytes: number): void {
    this.total += bytes
    if (this.size != null && this.total > this.size) throw new SizeMismatchError(`${this.path}: more bytes arrived than the declared ${this.size}`)
  }

  /** @throws SizeMismatchError when the upload ended short of the declared size */
  finish (): void {
    if (this.size != null && this.total !== this.size) {
      throw new SizeMismatchError(`${this.path}: the upload ended after ${this.total} of ${this.size} bytes; nothing was written`)
    }
  }
}
