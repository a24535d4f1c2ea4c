/**
 * One lock per key (a file path, a chunk): holders of the same key run one after another, different keys run freely.
 * Entries are dropped when their queue empties, so the map stays as small as the set of busy keys.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>()

  async run<T> (key: string, fn: () => Promise<T> | T): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    const tail = previous.then(async () => await mine)
    this.tails.set(key, tail)
    await previous
    try {
      return await fn()
    } finally {
      release()
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }

  /** Resolves once every holder and waiter of the moment is done */
  async settled (): Promise<void> {
    await Promise.all([...this.tails.values()])
  }

  /**
   * Runs `fn` holding the locks of several keys. They are taken in sorted order, so two callers wanting the same
   * pair can never each hold one and wait for the other, and a key named twice is taken once: a lock is not
   * reentrant, and waiting on one's own lock waits forever.
   */
  async runAll<T> (keys: string[], fn: () => Promise<T> | T): Promise<T> {
    const [first, ...rest] = [...new Set(keys)].sort()
    if (first == null) return await fn()
    return await this.run(first, async () => await this.runAll(rest, fn))
  }
}
