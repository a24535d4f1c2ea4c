import { readFile, rename, writeFile } from 'node:fs/promises'

export interface DrainListInit {
  /** JSON file the drains are kept in, so a drain survives a coordinator restart */
  path: string
}

/**
 * The storage nodes an operator asked to drain. Placement leaves a draining node out, repair copies its chunks
 * elsewhere and then deletes them from it; the drain stays until it is cancelled, so a drained node also stays
 * empty.
 */
export class DrainList {
  private readonly path: string
  private readonly nodes = new Map<string, { since: number }>()

  constructor (init: DrainListInit) {
    this.path = init.path
  }

  async start (): Promise<void> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err: any) {
      if (err.code === 'ENOENT') return
      throw err
    }
    const saved = JSON.parse(text) as Record<string, { since: number }>
    for (const [peerId, drain] of Object.entries(saved)) this.nodes.set(peerId, { since: Number(drain.since) })
  }

  async stop (): Promise<void> {}

  has (peerId: string): boolean {
    return this.nodes.has(peerId)
  }

  since (peerId: string): number | undefined {
    return this.nodes.get(peerId)?.since
  }

  list (): string[] {
    return [...this.nodes.keys()]
  }

  /** Resolves false when the node was already draining */
  async add (peerId: string, now = Date.now()): Promise<boolean> {
    if (this.nodes.has(peerId)) return false
    this.nodes.set(peerId, { since: now })
    await this.save()
    return true
  }

  /** Resolves false when the node was not draining */
  async delete (peerId: string): Promise<boolean> {
    if (!this.nodes.delete(peerId)) return false
    await this.save()
    return true
  }

  private async save (): Promise<void> {
    // Written aside and renamed, so a crash mid-write leaves the previous list rather than a torn file.
    const tmp = `${this.path}.tmp`
    await writeFile(tmp, JSON.stringify(Object.fromEntries(this.nodes), null, 2))
    await rename(tmp, this.path)
  }
}
