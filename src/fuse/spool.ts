import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '@libp2p/interface'

const PREFIX = 'collective-spool-'

/**
 * A fresh spool folder for this mount process in `parent`, named after the process so that a later mount can tell
 * a folder whose mount is gone (killed, or the machine crashed) from one still in use.
 */
export async function createSpoolDir (parent: string): Promise<string> {
  return await mkdtemp(join(parent, `${PREFIX}${process.pid}-`))
}

/**
 * Removes the spool folders in `parent` whose mount process no longer runs: what they hold was never stored (an
 * application only learns its writes are safe when close returns), so nothing can use it, and nothing else ever
 * removes it. Folders of live processes, other users' folders and anything not named like ours are left alone.
 * Returns how many were removed.
 */
export async function removeAbandonedSpools (parent: string, log?: Logger): Promise<number> {
  let removed = 0
  for (const name of await readdir(parent).catch(() => [])) {
    const pid = Number(/^collective-spool-(\d+)-/.exec(name)?.[1])
    if (!Number.isSafeInteger(pid) || pid === process.pid || isRunning(pid)) continue
    try {
      await rm(join(parent, name), { recursive: true })
      removed++
      log?.('removed the spool folder %s of a mount that is gone', name)
    } catch {}
  }
  return removed
}

function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    // EPERM: a process of another user holds the pid, so it runs
    return err?.code === 'EPERM'
  }
}
