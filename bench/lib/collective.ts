import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnTracked, waitForExit, killGroup, hasExited, run } from './children.js'
import type { RunResult } from './children.js'
import type { ChildProcess } from 'node:child_process'

/** The real CLI, as built: dist/bench/lib/ → dist/src/bin.js */
export const BIN = fileURLToPath(new URL('../../src/bin.js', import.meta.url))

export class CollectiveError extends Error {
  static name = 'CollectiveError'
  name = 'CollectiveError'
}

function tailOfLogs (home: string): string {
  const dir = join(home, 'logs')
  if (!existsSync(dir)) return ''
  return readdirSync(dir).map(f => {
    const lines = readFileSync(join(dir, f), 'utf8').trim().split('\n').slice(-5).join('\n')
    return `--- ${f}\n${lines}`
  }).join('\n')
}

/**
 * Runs one CLI command against the home; throws with its stderr unless it exits 0. The env carries the home as
 * well, so nothing falls back to ~/.collective-p2p.
 */
export async function cli (home: string, args: string[], opts: { timeoutMs?: number, stdoutFd?: number } = {}): Promise<RunResult> {
  const r = await run(process.execPath, [BIN, ...args, '--home', home], {
    timeoutMs: opts.timeoutMs ?? 60_000,
    stdoutFd: opts.stdoutFd,
    env: { ...process.env, COLLECTIVE_HOME: home }
  })
  if (r.code !== 0) throw new CollectiveError(`collective-p2p ${args.join(' ')} exited ${String(r.code)}: ${r.stderr.trim() || r.stdout.trim()}`)
  return r
}

/** A local collective run by `collective-p2p up` in its own process group */
export class Collective {
  readonly home: string
  private readonly proc: ChildProcess
  private output = ''
  /** Set once we signal "up" ourselves, to tell our own stop from someone else's */
  private stopping = false

  private constructor (home: string, proc: ChildProcess) {
    this.home = home
    this.proc = proc
  }

  /** Starts `up` and resolves once it printed "Ready:", i.e. every storage node has registered */
  static async start (home: string, opts: { nodes: number, timeoutMs?: number, log: (line: string) => void }): Promise<Collective> {
    const proc = spawnTracked(process.execPath, [BIN, 'up', '--nodes', String(opts.nodes), '--member', 'bench', '--home', home], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, COLLECTIVE_HOME: home }
    })
    const c = new Collective(home, proc)
    const ready = new Promise<void>((resolve, reject) => {
      let pending = ''
      const onText = (s: string): void => {
        c.output += s
        pending += s
        const lines = pending.split('\n')
        pending = lines.pop() ?? ''
        for (const line of lines) if (line.trim() !== '') opts.log(`[up] ${line.trim()}`)
        if (c.output.includes('Ready:')) resolve()
      }
      proc.stdout?.setEncoding('utf8').on('data', onText)
      proc.stderr?.setEncoding('utf8').on('data', onText)
      proc.once('error', reject)
      proc.once('exit', (code, signal) => {
        // A signal we did not send means something else on the machine stopped it: say so, it is not our bug.
        const cause = signal != null && !c.stopping ? ` by a ${signal} from outside the benchmark` : ` (${signal ?? String(code)})`
        reject(new CollectiveError(`"up" exited${cause} before it was ready:\n${c.output.trim()}\n${tailOfLogs(home)}`))
      })
    })
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new CollectiveError(`the collective was not ready within ${(opts.timeoutMs ?? 120_000) / 1000} s:\n${c.output.trim()}\n${tailOfLogs(home)}`)) }, opts.timeoutMs ?? 120_000)
    })
    try {
      await Promise.race([ready, timeout])
    } catch (err) {
      await c.stop()
      throw err
    } finally {
      clearTimeout(timer)
    }
    return c
  }

  /** The process group of "up" and every daemon it started */
  get processGroup (): number {
    if (this.proc.pid == null) throw new CollectiveError('"up" has no pid')
    return this.proc.pid
  }

  /** The coordinator daemon's pid, as it reports it: the client-side daemon whose memory is measured */
  async coordinatorPid (): Promise<number> {
    const r = await cli(this.home, ['status', '--json'])
    const pid = Number(JSON.parse(r.stdout).pid)
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new CollectiveError(`status --json gave no pid: ${r.stdout}`)
    return pid
  }

  /** Stops like Ctrl-C does (so the daemons shut down cleanly), and kills the group if that takes too long */
  async stop (timeoutMs = 20_000): Promise<void> {
    if (!hasExited(this.proc)) {
      const timer = setTimeout(() => { killGroup(this.proc) }, timeoutMs)
      try {
        this.stopping = true
        this.proc.kill('SIGINT')
        await waitForExit(this.proc)
      } finally {
        clearTimeout(timer)
      }
    }
    // Daemons that outlived "up" (it was killed, or one hung) go with the group.
    killGroup(this.proc)
  }
}

/** Peak resident set size (VmHWM) of a process so far, in bytes */
export async function peakRssBytes (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status)
  if (m == null) throw new CollectiveError(`no VmHWM in /proc/${pid}/status`)
  return Number(m[1]) * 1024
}
