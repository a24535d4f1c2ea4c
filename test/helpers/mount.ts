import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import { findMount } from '../../src/fuse/mount.js'
import { BIN, waitFor } from './daemons.js'
import type { Cleanup } from './daemons.js'

export interface RunningMount {
  output: () => string
  /** Stops the mount process and makes sure nothing stays mounted, whatever state it is in */
  stop: () => Promise<void>
}

/** `collective-p2p mount MNT --home HOME` as its own process, once it says it is mounted; fails loudly without FUSE */
export async function startMount (cleanup: Cleanup, mnt: string, home: string): Promise<RunningMount> {
  let output = ''
  const proc = cleanup.track(spawn(process.execPath, [BIN, 'mount', mnt, '--home', home], { stdio: ['ignore', 'pipe', 'pipe'] }))
  proc.stdout?.on('data', d => { output += String(d) })
  proc.stderr?.on('data', d => { output += String(d) })
  const stop = async (): Promise<void> => {
    if (proc.exitCode == null && proc.signalCode == null) proc.kill('SIGTERM')
    await waitFor('the mount process to exit', async () => proc.exitCode != null || proc.signalCode != null, 30_000).catch(() => {})
    // No mount may outlive its test: a stale one breaks every later run on this path.
    if (await findMount(mnt) != null) await promisify(execFile)('fusermount', ['-uz', mnt]).catch(() => {})
  }
  try {
    await waitFor(`the mount on ${mnt}`, async () => {
      if (proc.exitCode != null) throw new Error(`mount exited with ${proc.exitCode}: ${output}`)
      return output.includes('mounted the collective on')
    }, 30_000)
  } catch (err) {
    await stop()
    throw err
  }
  return { output: () => output, stop }
}
