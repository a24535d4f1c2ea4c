import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { join, resolve } from 'node:path'
import { call } from '../../control/client.js'
import { homeLayout } from '../../local/layout.js'
import { parseSize } from '../../util/units.js'
import { UsageError } from '../errors.js'
import type { Command } from '../command.js'

/** Where a running mount records its pid, so `unmount` can ask it to stop cleanly */
function stateFile (home: string, mountpoint: string): string {
  return join(home, 'mounts', `${createHash('sha256').update(mountpoint).digest('hex').slice(0, 16)}.json`)
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

export const mountCommand: Command = {
  name: 'mount',
  summary: 'Mount the collective on a local directory with FUSE (Linux); runs until unmounted.',
  usage: 'mount DIR [--spool-dir DIR] [--read-ahead SIZE]',
  description: 'Serves the namespace of the local daemon under DIR. Writes are spooled on local disk and stored\n' +
    'at close and fsync, which return only once every chunk has its replicas (or fail with EIO / ENOSPC).\n' +
    'Ctrl-C, SIGTERM or "collective-p2p unmount DIR" unmount cleanly; a stale mount left by a crash is cleared.',
  options: {
    'spool-dir': { type: 'string', value: 'DIR', description: 'where files being written are spooled, in a folder of the mount\'s own (default: the temp dir)' },
    'read-ahead': { type: 'string', value: 'SIZE', description: 'bytes read ahead of each reader of a file (default 8MiB)' }
  },
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const mountpoint = resolve(ctx.positionals[0])
    const { controlSocket } = homeLayout(ctx.home)
    // Fail before mounting if there is no daemon: an empty mount that answers EIO helps nobody.
    await call(controlSocket, 'status')
    const readAhead = ctx.values['read-ahead'] != null ? parseSize(String(ctx.values['read-ahead'])) : undefined
    if (readAhead != null && (!Number.isSafeInteger(readAhead) || readAhead <= 0)) throw new UsageError('--read-ahead must be a positive size')

    // Loaded here, like the mount itself: every other command would pay for them at start-up
    const { FuseMount } = await import('../../fuse/mount.js')
    const { defaultLogger } = await import('@libp2p/logger')
    const mount = new FuseMount({ logger: defaultLogger() }, {
      mountpoint,
      controlSocket,
      spoolDir: ctx.values['spool-dir'] != null ? resolve(ctx.values['spool-dir']) : undefined,
      readAheadBytes: readAhead
    })
    await mount.start()
    const state = stateFile(ctx.home, mountpoint)
    await mkdir(join(ctx.home, 'mounts'), { recursive: true })
    await writeFile(state, JSON.stringify({ pid: process.pid, mountpoint }))
    ctx.emit({ mountpoint, pid: process.pid })
    ctx.out(`mounted the collective on ${mountpoint}; Ctrl-C or "collective-p2p unmount ${mountpoint}" unmounts it`)

    // Ends on a signal, or when someone unmounts with fusermount -u or umount behind our back.
    await new Promise<void>(resolve => {
      const finish = (): void => {
        clearInterval(timer)
        process.off('SIGINT', finish)
        process.off('SIGTERM', finish)
        resolve()
      }
      process.once('SIGINT', finish)
      process.once('SIGTERM', finish)
      const timer = setInterval(() => {
        void mount.isMounted().then(yes => { if (!yes) finish() }, () => {})
      }, 1000)
    })
    try {
      await mount.stop()
    } finally {
      await rm(state, { force: true })
    }
    ctx.out(`unmounted ${mountpoint}`)
  }
}

export const unmountCommand: Command = {
  name: 'unmount',
  summary: 'Unmount a collective mount (also clears a stale mount left by a crashed mount process).',
  usage: 'unmount DIR',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const mountpoint = resolve(ctx.positionals[0])
    const { findMount, detach } = await import('../../fuse/mount.js')
    const { NotMountedError } = await import('../../fuse/errors.js')
    const state = stateFile(ctx.home, mountpoint)
    const recorded = await readFile(state, 'utf8').then(s => JSON.parse(s) as { pid: number }, () => undefined)
    if (recorded != null && alive(recorded.pid)) {
      // The mount process unmounts itself, so it can store what open files still hold first.
      process.kill(recorded.pid, 'SIGTERM')
      for (let i = 0; i < 600 && alive(recorded.pid); i++) await sleep(100)
      if (alive(recorded.pid)) throw new NotMountedError(`the mount process ${recorded.pid} did not exit within a minute`)
    } else {
      if (await findMount(mountpoint) == null) throw new NotMountedError(`nothing is mounted on ${mountpoint}`)
      // No process serves it: a crash left it stale, and only a lazy detach removes it.
      await detach(mountpoint, recorded != null)
    }
    await rm(state, { force: true })
    ctx.emit({ mountpoint, unmounted: true })
    ctx.out(`unmounted ${mountpoint}`)
  }
}
