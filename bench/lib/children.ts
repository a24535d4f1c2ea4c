import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import type { ChildProcess, SpawnOptions } from 'node:child_process'

/**
 * Every process the benchmark starts, so that any way out (an error, a signal, process exit) can end them. They
 * are spawned detached, each leading its own process group: `up` starts the daemons as its children, and killing
 * the group ends them too if `up` itself cannot stop them. Only groups led by processes we spawned are signalled.
 */
const live = new Set<ChildProcess>()

export function spawnTracked (command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true })
  if (child.pid != null) live.add(child)
  child.once('exit', () => { live.delete(child) })
  // A spawn failure is reported by the caller's 'exit'/'error' handling; this keeps it from being unhandled.
  child.once('error', () => { live.delete(child) })
  return child
}

export function hasExited (child: ChildProcess): boolean {
  return child.exitCode != null || child.signalCode != null
}

export async function waitForExit (child: ChildProcess): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (hasExited(child)) return { code: child.exitCode, signal: child.signalCode }
  return await new Promise(resolve => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
}

/** Kills the process group a tracked child leads; harmless when it is already gone */
export function killGroup (child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid == null) return
  try { process.kill(-child.pid, signal) } catch {}
}

/** The last resort: SIGKILL every group still running. Synchronous, so it also works from an 'exit' handler. */
export function killAll (): void {
  for (const child of live) killGroup(child)
  live.clear()
}

export interface RunResult { code: number | null, stdout: string, stderr: string, seconds: number }

export class ChildFailedError extends Error {
  static name = 'ChildFailedError'
  name = 'ChildFailedError'
}

/**
 * Runs a command to completion and times it, wall clock from spawn to exit. stdout is collected unless an fd is
 * given for it (a download to stdout goes straight to a file, not through us).
 */
export async function run (command: string, args: string[], opts: { timeoutMs: number, stdoutFd?: number, env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  const start = performance.now()
  const child = spawnTracked(command, args, { stdio: ['ignore', opts.stdoutFd ?? 'pipe', 'pipe'], env: opts.env ?? process.env })
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const timer = setTimeout(() => { killGroup(child) }, opts.timeoutMs)
  try {
    const spawned = new Promise<never>((_resolve, reject) => { child.once('error', reject) })
    const { code, signal } = await Promise.race([waitForExit(child), spawned])
    const seconds = (performance.now() - start) / 1000
    if (signal != null) throw new ChildFailedError(`${args.join(' ')} was killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${opts.timeoutMs / 1000} s?)` : ''}\n${stderr}`)
    return { code, stdout, stderr, seconds }
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Runs a benchmark's `main` so that any way out — its return, an error, a signal, process exit — ends the
 * processes it started (`cleanup`, then `killAll` as the synchronous last resort) and removes its temporary
 * directory. Sets the exit code from `main`'s result.
 */
export function runBenchmark (main: () => Promise<number>, options: { cleanup: () => Promise<void>, tmpDir: () => string | undefined, log: (line: string) => void }): void {
  const { cleanup, tmpDir, log } = options
  let exiting = false
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      if (exiting) return
      exiting = true
      log(`${signal}: cleaning up`)
      void cleanup().finally(() => { process.exit(signal === 'SIGINT' ? 130 : 143) })
    })
  }
  process.once('exit', () => {
    // Synchronous last resort for paths that skipped cleanup (e.g. process.exit elsewhere).
    killAll()
    const tmp = tmpDir()
    if (tmp != null) try { rmSync(tmp, { recursive: true, force: true }) } catch {}
  })
  main().then(async code => {
    await cleanup()
    process.exitCode = code
  }, async err => {
    log(`failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
    await cleanup()
    process.exitCode = 1
  })
}
