/** Bounds how many async tasks run at once; waiters are served in arrival order */
export class Semaphore {
  private available: number
  private readonly waiters: Array<() => void> = []

  constructor (size: number) {
    this.available = size
  }

  async acquire (signal?: AbortSignal): Promise<void> {
    if (this.available > 0) { this.available--; return }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiters.indexOf(grant)
        if (i >= 0) this.waiters.splice(i, 1)
        reject(signal?.reason)
      }
      const grant = (): void => { signal?.removeEventListener('abort', onAbort); resolve() }
      this.waiters.push(grant)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  release (): void {
    const next = this.waiters.shift()
    if (next != null) next()
    else this.available++
  }
}
