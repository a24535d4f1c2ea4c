import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { initRoot, initMember, issueComponent } from '../../src/local/provision.js'
import { spawnTracked, waitForExit, killGroup } from './children.js'
import { DAEMON_V8_FLAGS } from '../../src/daemon/v8-flags.js'
import type { ChildProcess } from 'node:child_process'

const PEER = fileURLToPath(new URL('./baseline-peer.js', import.meta.url))

export class BaselineError extends Error {
  static name = 'BaselineError'
  name = 'BaselineError'
}

export interface BaselineResult {
  /** Sender's view: first byte handed to the stream until the receiver's confirmation arrived */
  mbps: number
  seconds: number
  /** Receiver's view: first byte in until last byte in */
  receiverMbps: number
  dialSeconds: number
  /** CPU seconds each process spent while the bytes moved */
  cpu: { sender: number, receiver: number }
}

/**
 * Issues a root, a member CA and two node certificates under dir with the project's own provisioning, so the
 * baseline pays for exactly the handshake and certificate checks the collective's connections pay for.
 */
export async function provisionBaseline (dir: string): Promise<{ listener: string, sender: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const rootDir = join(dir, 'ca')
  const memberDir = join(dir, 'member')
  await initRoot(rootDir, 'bench.local')
  await initMember(rootDir, memberDir, 'bench', 'home.bench.local')
  const listener = join(dir, 'listener')
  const sender = join(dir, 'sender')
  await issueComponent({ memberDir, outDir: listener, role: 'node', name: 'bench-listener' })
  await issueComponent({ memberDir, outDir: sender, role: 'node', name: 'bench-sender' })
  return { listener, sender }
}

/** Reads newline-delimited JSON from a child's stdout; stderr is passed on to ours as progress */
function jsonLines (child: ChildProcess, name: string, log: (line: string) => void): { next: (event: string, timeoutMs: number) => Promise<Record<string, any>>, output: () => string } {
  const events: Array<Record<string, any>> = []
  const waiters: Array<() => void> = []
  let pending = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    pending += s
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) {
      try { events.push(JSON.parse(line)) } catch { log(`[${name}] ${line}`) }
    }
    for (const w of waiters.splice(0)) w()
  })
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  child.once('exit', () => { for (const w of waiters.splice(0)) w() })
  const output = (): string => stderr.trim().split('\n').slice(-20).join('\n')
  return {
    output,
    next: async (event, timeoutMs) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = events.find(e => e.event === event)
        if (found != null) return found
        if (child.exitCode != null || child.signalCode != null) {
          throw new BaselineError(`baseline ${name} exited (${child.signalCode ?? String(child.exitCode)}) without "${event}":\n${output()}`)
        }
        const left = deadline - Date.now()
        if (left <= 0) throw new BaselineError(`baseline ${name} gave no "${event}" within ${timeoutMs / 1000} s:\n${output()}`)
        await new Promise<void>(resolve => {
          const timer = setTimeout(resolve, left)
          waiters.push(() => { clearTimeout(timer); resolve() })
        })
      }
    }
  }
}

/**
 * Sends `file` from one fresh process to another over one stream of our libp2p stack and returns the rate.
 * Both processes are started for this measurement alone and end with it, with the daemons' V8 flags so that
 * the two sides of the comparison run on the same runtime settings.
 */
export async function runBaseline (dirs: { listener: string, sender: string }, file: string, bytes: number, log: (line: string) => void): Promise<BaselineResult> {
  const timeoutMs = 60_000 + bytes / 5e6 * 1000
  const children: ChildProcess[] = []
  try {
    const listener = spawnTracked(process.execPath, [...DAEMON_V8_FLAGS, PEER, 'listen', dirs.listener, String(bytes)], { stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(listener)
    const fromListener = jsonLines(listener, 'listener', log)
    const { addr } = await fromListener.next('listening', 30_000)
    log(`baseline: listener on ${String(addr)}; sending ${bytes / 1e6} MB`)

    const sender = spawnTracked(process.execPath, [...DAEMON_V8_FLAGS, PEER, 'send', dirs.sender, String(addr), file], { stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(sender)
    const fromSender = jsonLines(sender, 'sender', log)
    const sent = await fromSender.next('sent', timeoutMs)
    const received = await fromListener.next('received', 10_000)
    if (sent.bytes !== bytes || received.bytes !== bytes) throw new BaselineError(`baseline moved ${String(sent.bytes)}/${String(received.bytes)} bytes, expected ${bytes}`)
    // Both have measured; they only need to hang up. One that does not within 10 s is killed in finally.
    for (const child of children) {
      const exited = await Promise.race([waitForExit(child), sleep(10_000, undefined, { ref: false })])
      if (exited?.code !== 0) log(`baseline: a peer ${exited == null ? 'did not exit' : `exited ${String(exited.code)}`} after measuring`)
    }
    return { mbps: sent.mbps, seconds: sent.seconds, receiverMbps: received.mbps, dialSeconds: sent.dialSeconds, cpu: { sender: Number(sent.cpuSeconds), receiver: Number(received.cpuSeconds) } }
  } finally {
    for (const child of children) killGroup(child)
  }
}
