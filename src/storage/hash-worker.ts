import { Worker } from 'node:worker_threads'
import { sha256Digest } from './chunking.js'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** What the thread is sent: `length` bytes at the start of `buffer`, which moves to the thread */
export interface HashRequest { id: number, buffer: ArrayBuffer, length: number }
/** What comes back: the digest, and the buffer moved back for reuse */
export interface HashReply { id: number, digest: Uint8Array, buffer: ArrayBuffer }

export interface HashWorkerInit {
  /** Inputs smaller than this are hashed on the calling thread: the round trip would cost more (default 256 KiB) */
  minBytes?: number
  /**
   * Buffers kept for reuse between chunks, in bytes (default 8 MiB: the read-ahead's worth, eight 1 MiB chunks or
   * two 4 MiB ones); dropped after `idleMs` without work
   */
  maxPooledBytes?: number
  /** How long the reuse pool outlives the last hash (default 30 s) */
  idleMs?: number
}

export interface HashWorkerComponents {
  logger: ComponentLogger
}

interface Pending {
  /** The caller's bytes, kept so a digest can still be made here if the thread goes away */
  bytes: Uint8Array | Uint8ArrayList
  resolve: (digest: Uint8Array) => void
}

/**
 * sha2-256 on a thread of its own, so that verifying every chunk a daemon reads does not take turns with
 * receiving them on the event loop, which a read saturates.
 *
 * A chunk arrives as many pieces that the stream below may still view, so they cannot be handed to the thread
 * themselves: they are copied into a buffer that then moves to the thread and back (transferred, never shared,
 * so only one side can touch it at a time). The copy costs a fraction of the hash, and a few buffers serve every
 * chunk. Without a thread (before start, after stop, or if it died) digests are made on the calling thread,
 * so a caller never sees this part fail.
 */
export class HashWorker {
  private readonly log: Logger
  private readonly minBytes: number
  private readonly maxPooledBytes: number
  private readonly idleMs: number
  private worker?: Worker
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  /** Buffers back from the thread, largest first */
  private pool: ArrayBuffer[] = []
  private idleTimer?: ReturnType<typeof setTimeout>

  constructor (components: HashWorkerComponents, init: HashWorkerInit = {}) {
    this.log = components.logger.forComponent('collective:storage:hash-worker')
    this.minBytes = init.minBytes ?? 256 * 1024
    this.maxPooledBytes = init.maxPooledBytes ?? 8 * 1024 * 1024
    this.idleMs = init.idleMs ?? 30_000
  }

  async start (): Promise<void> {
    if (this.worker != null) return
    // The thread holds a message or two at a time: a small heap keeps its share of the daemon's memory small.
    // Should it ever run out, it dies and hashing carries on here.
    const worker = new Worker(new URL('./hash-thread.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } })
    // a daemon that forgot to stop us must still be able to exit
    worker.unref()
    worker.on('message', (reply: HashReply) => { this.settle(reply) })
    worker.on('error', err => { this.lose(worker, err) })
    worker.on('exit', code => { this.lose(worker, new Error(`the hash thread exited with code ${code}`)) })
    this.worker = worker
  }

  async stop (): Promise<void> {
    const worker = this.worker
    if (worker == null) return
    this.lose(worker)
    await worker.terminate()
  }

  /** sha2-256 of `bytes`, which are only read, and only until the promise settles */
  async sha256 (bytes: Uint8Array | Uint8ArrayList): Promise<Uint8Array> {
    const worker = this.worker
    if (worker == null || bytes.byteLength < this.minBytes) return sha256Digest(bytes)
    const length = bytes.byteLength
    const buffer = this.take(length)
    const copy = new Uint8Array(buffer, 0, length)
    if (bytes instanceof Uint8Array) {
      copy.set(bytes)
    } else {
      let at = 0
      for (const piece of bytes) {
        copy.set(piece, at)
        at += piece.byteLength
      }
    }
    const id = this.nextId
    this.nextId = (this.nextId % Number.MAX_SAFE_INTEGER) + 1
    clearTimeout(this.idleTimer)
    return await new Promise(resolve => {
      this.pending.set(id, { bytes, resolve })
      const request: HashRequest = { id, buffer, length }
      worker.postMessage(request, [buffer])
    })
  }

  /** Digests in flight on the thread */
  get inFlight (): number {
    return this.pending.size
  }

  /** Bytes held in buffers for reuse */
  get pooledBytes (): number {
    return this.pool.reduce((n, b) => n + b.byteLength, 0)
  }

  private settle ({ id, digest, buffer }: HashReply): void {
    const entry = this.pending.get(id)
    this.give(buffer)
    if (entry == null) return
    this.pending.delete(id)
    entry.resolve(digest)
    if (this.pending.size === 0) this.armIdle()
  }

  /** The thread is gone (stopped, crashed or exited): what it still owed is hashed here instead */
  private lose (worker: Worker, err?: Error): void {
    if (this.worker !== worker) return
    this.worker = undefined
    if (err != null) this.log.error('hash thread failed, hashing on the event loop from now on - %s', err.message)
    for (const [id, entry] of this.pending) {
      this.pending.delete(id)
      entry.resolve(sha256Digest(entry.bytes))
    }
    clearTimeout(this.idleTimer)
    this.pool = []
  }

  /** The smallest pooled buffer that holds `length` bytes, or a new one */
  private take (length: number): ArrayBuffer {
    let best = -1
    for (let i = 0; i < this.pool.length; i++) if (this.pool[i].byteLength >= length) best = i
    if (best < 0) return new ArrayBuffer(length)
    return this.pool.splice(best, 1)[0]
  }

  /** Keeps a returned buffer for reuse; over the budget, the smallest go first */
  private give (buffer: ArrayBuffer): void {
    if (this.worker == null) return
    this.pool.push(buffer)
    this.pool.sort((a, b) => b.byteLength - a.byteLength)
    let bytes = this.pooledBytes
    while (bytes > this.maxPooledBytes) bytes -= (this.pool.pop() as ArrayBuffer).byteLength
  }

  private armIdle (): void {
    clearTimeout(this.idleTimer)
    this.idleTimer = setTimeout(() => { this.pool = [] }, this.idleMs)
    this.idleTimer.unref?.()
  }
}
