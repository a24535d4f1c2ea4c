import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { call } from '../control/client.js'
import { DaemonAlreadyRunningError } from '../control/errors.js'
import { sleep } from '../util/backoff.js'
import { homeLayout, COMPONENT_FILES, MEMBER_FILES } from './layout.js'
import { initRoot, initMember, issueComponent } from './provision.js'
import { DAEMON_V8_FLAGS } from '../daemon/v8-flags.js'
import type { ChildProcess } from 'node:child_process'

export class LocalStartError extends Error {
  static name = 'LocalStartError'
  name = 'LocalStartError'
}

export interface LocalCollectiveInit {
  home: string
  /** Federation domain for a new home (default collective.local) */
  federation?: string
  /** Member name for a new home (default: the user name) */
  member?: string
  /** Member domain for a new home (default home.<federation>) */
  domain?: string
  /** Number of storage nodes (default 3) */
  nodes?: number
  /** Called with one line per event for the operator */
  report?: (line: string) => void
}

interface Child { name: string, config: string, proc?: ChildProcess, restarts: number[], args: string[] }

/** A TCP port nobody listens on right now, picked by the kernel */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin.js')

/**
 * The embedded default: one member with a root CA, a member CA, a coordinator and storage nodes, each a separate
 * daemon process with its own key and certificate, all under one home. First start provisions; later starts reuse.
 */
export class LocalCollective {
  private readonly init: LocalCollectiveInit
  private readonly layout: ReturnType<typeof homeLayout>
  private readonly children: Child[] = []
  private stopping = false
  coordinatorAddr?: string

  constructor (init: LocalCollectiveInit) {
    this.init = init
    this.layout = homeLayout(init.home)
  }

  private report (line: string): void { this.init.report?.(line) }

  nodeNames (): string[] {
    return Array.from({ length: this.init.nodes ?? 3 }, (_, i) => `node-${String(i + 1).padStart(2, '0')}`)
  }

  /** Creates whatever the home lacks; never regenerates a key or certificate that exists */
  async provision (): Promise<void> {
    const l = this.layout
    await mkdir(l.home, { recursive: true, mode: 0o700 })
    const federation = this.init.federation ?? 'collective.local'
    if (!existsSync(l.rootKey)) {
      await initRoot(l.rootDir, federation)
      this.report(`created federation root CA for ${federation}`)
    }
    if (!existsSync(join(l.memberDir, MEMBER_FILES.key))) {
      const member = this.init.member ?? 'alice'
      const domain = this.init.domain ?? `home.${federation}`
      await initMember(l.rootDir, l.memberDir, member, domain)
      this.report(`created member CA ${member}@${domain}`)
    }
    for (const name of ['coordinator', ...this.nodeNames()]) {
      const dir = l.component(name)
      if (!existsSync(join(dir, COMPONENT_FILES.cert))) {
        const { cert } = await issueComponent({ memberDir: l.memberDir, outDir: dir, role: name === 'coordinator' ? 'coordinator' : 'node', name })
        this.report(`issued certificate for ${name} (${cert.subject})`)
      }
      const configFile = join(dir, COMPONENT_FILES.config)
      if (!existsSync(configFile)) {
        const config: Record<string, unknown> = {
          role: name === 'coordinator' ? 'coordinator' : 'node',
          identity: { key: COMPONENT_FILES.key, cert: COMPONENT_FILES.cert, root: COMPONENT_FILES.root },
          dataDir: 'data',
          controlSocket: name === 'coordinator' ? '../control.sock' : 'control.sock',
          // The member CA lives in this home: the coordinator certifies invited newcomers and renews certificates.
          ...(name === 'coordinator' ? { memberCa: '../member' } : {}),
          // The coordinator keeps one port for good, so that nodes find it again after it restarts; nodes can move.
          listen: [`/ip4/127.0.0.1/tcp/${name === 'coordinator' ? await freePort() : 0}`]
        }
        await writeFile(configFile, `# written by "collective-p2p up"; see config/ in the source tree for every option\n${stringify(config)}`, { mode: 0o600 })
      }
    }
  }

  private spawnChild (child: Child): void {
    const log = openSync(join(this.layout.logs, `${child.name}.log`), 'a')
    const proc = spawn(process.execPath, [...DAEMON_V8_FLAGS, BIN, 'daemon', '--config', child.config, ...child.args], {
      stdio: ['ignore', log, log],
      env: process.env
    })
    closeSync(log)
    child.proc = proc
    proc.once('exit', (code, signal) => {
      if (this.stopping) return
      const now = Date.now()
      child.restarts = child.restarts.filter(t => now - t < 60_000)
      if (child.restarts.length >= 5) {
        this.report(`${child.name} exited (${signal ?? code}) 5 times within a minute; not restarting it. See ${join(this.layout.logs, `${child.name}.log`)}`)
        return
      }
      child.restarts.push(now)
      this.report(`${child.name} exited (${signal ?? code}); restarting it`)
      setTimeout(() => { if (!this.stopping) this.spawnChild(child) }, 1000).unref()
    })
  }

  private async waitForControl (child: Child, socket: string, timeoutMs: number): Promise<any> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (child.proc?.exitCode != null) break
      try { return await call(socket, 'status') } catch {}
      await sleep(100)
    }
    const logFile = join(this.layout.logs, `${child.name}.log`)
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n') : ''
    throw new LocalStartError(`${child.name} did not start; last lines of ${logFile}:\n${tail}`)
  }

  async start (): Promise<void> {
    const l = this.layout
    try {
      await call(l.controlSocket, 'status')
      throw new DaemonAlreadyRunningError(`a collective is already running on ${l.home} (its control socket ${l.controlSocket} answers)`)
    } catch (err: any) {
      if (err.name === 'DaemonAlreadyRunningError') throw err
    }
    await this.provision()
    await mkdir(l.logs, { recursive: true })

    const coordinator: Child = { name: 'coordinator', config: join(l.component('coordinator'), COMPONENT_FILES.config), restarts: [], args: [] }
    this.children.push(coordinator)
    this.spawnChild(coordinator)
    const status = await this.waitForControl(coordinator, l.controlSocket, 30_000)
    this.coordinatorAddr = (status.listen as string[])[0]
    this.report(`coordinator ${status.name as string} is up (${status.peerId as string})`)

    for (const name of this.nodeNames()) {
      const child: Child = { name, config: join(l.component(name), COMPONENT_FILES.config), restarts: [], args: ['--coordinator', this.coordinatorAddr] }
      this.children.push(child)
      this.spawnChild(child)
    }
    for (const child of this.children.slice(1)) {
      const s = await this.waitForControl(child, join(l.component(child.name), 'control.sock'), 30_000)
      this.report(`node ${s.name as string} is up (${s.peerId as string})`)
    }
    // The collective is usable once every node has registered with the coordinator.
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const nodes = await call(l.controlSocket, 'nodes') as any[]
      if (nodes.filter(n => n.state === 'alive').length >= this.nodeNames().length) return
      await sleep(200)
    }
    throw new LocalStartError('storage nodes did not register with the coordinator within 30 s; see the logs in ' + l.logs)
  }

  async stop (): Promise<void> {
    this.stopping = true
    // Nodes first, so the coordinator sees them leave rather than vanish.
    for (const child of [...this.children].reverse()) {
      const proc = child.proc
      if (proc == null || proc.exitCode != null || proc.signalCode != null) continue
      const exited = new Promise<void>(resolve => proc.once('exit', () => { resolve() }))
      proc.kill('SIGTERM')
      const killer = setTimeout(() => { proc.kill('SIGKILL') }, 10_000)
      await exited
      clearTimeout(killer)
    }
  }
}

