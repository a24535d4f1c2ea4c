import { spawn, execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile, mkdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'
import { call } from '../../src/control/client.js'
import { initRoot, initMember, issueComponent } from '../../src/local/provision.js'
import type { ChildProcess } from 'node:child_process'
import type { Role } from '../../src/identity/index.js'

export const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'bin.js')

/** Every process and directory a test creates, so that `cleanup` can end them even when the test failed */
export class Cleanup {
  private readonly procs = new Set<ChildProcess>()
  private readonly dirs: string[] = []

  track (proc: ChildProcess): ChildProcess { this.procs.add(proc); proc.once('exit', () => { this.procs.delete(proc) }); return proc }

  async tempDir (prefix = 'collective-test-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix))
    this.dirs.push(dir)
    return dir
  }

  async run (): Promise<void> {
    await Promise.all([...this.procs].map(async p => {
      if (p.exitCode != null || p.signalCode != null) return
      const exited = new Promise(resolve => p.once('exit', resolve))
      p.kill('SIGKILL')
      await exited
    }))
    for (const d of this.dirs) await rm(d, { recursive: true, force: true })
  }
}

export interface CliResult { code: number, stdout: string, stderr: string }

export async function cli (args: string[], opts: { home?: string, env?: NodeJS.ProcessEnv, input?: string, timeoutMs?: number } = {}): Promise<CliResult> {
  return await new Promise(resolve => {
    const child = execFile(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...(opts.home != null ? { COLLECTIVE_HOME: opts.home } : {}), ...opts.env },
      timeout: opts.timeoutMs ?? 60_000,
      maxBuffer: 64 * 1024 * 1024
    }, (err: any, stdout, stderr) => {
      resolve({ code: err == null ? 0 : (typeof err.code === 'number' ? err.code : 1), stdout, stderr })
    })
    if (opts.input != null) child.stdin?.end(opts.input)
  })
}

export async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) return v
    } catch (err) { last = err }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last != null ? ` (last error: ${String(last)})` : ''}`)
}

export interface RunningDaemon {
  proc: ChildProcess
  dir: string
  socket: string
  status: any
  output: () => string
  /** SIGTERM and wait for a clean exit; resolves with the exit code */
  stop: () => Promise<number | null>
}

/**
 * Starts `collective-p2p daemon` with `dir/config.yaml` as a separate process and waits until its control socket
 * (where the config puts it) answers
 */
export async function startDaemon (cleanup: Cleanup, dir: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<RunningDaemon> {
  const socket = resolve(dir, parse(await readFile(join(dir, 'config.yaml'), 'utf8')).controlSocket ?? 'control.sock')
  let out = ''
  const proc = cleanup.track(spawn(process.execPath, [BIN, 'daemon', '--config', join(dir, 'config.yaml'), ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }
  }))
  proc.stdout?.on('data', d => { out += String(d) })
  proc.stderr?.on('data', d => { out += String(d) })
  const status = await waitFor(`daemon in ${dir}`, async () => {
    if (proc.exitCode != null) throw new Error(`daemon exited with ${proc.exitCode}: ${out}`)
    return await call(socket, 'status')
  }, timeoutMs).catch(err => { throw new Error(`${err.message as string}\ndaemon output:\n${out}`) })
  return {
    proc,
    dir,
    socket,
    status,
    output: () => out,
    stop: async () => {
      // Already gone (exited, or killed by a signal, whose 'exit' event has fired): nothing to wait for.
      if (proc.exitCode != null || proc.signalCode != null) return proc.exitCode
      const exited = new Promise<number | null>(resolve => proc.once('exit', code => { resolve(code) }))
      proc.kill('SIGTERM')
      return await exited
    }
  }
}

export interface TestMember { name: string, domain: string, dir: string }

/**
 * A federation on disk: one root CA and any number of members, each able to issue component identities with
 * ready-to-run configs. Real certificates, the same code paths as the CLI.
 */
export class TestFederation {
  readonly root: string
  readonly rootDir: string
  readonly members = new Map<string, TestMember>()

  private constructor (root: string) {
    this.root = root
    this.rootDir = join(root, 'ca')
  }

  static async create (cleanup: Cleanup, federation = 'collective.local'): Promise<TestFederation> {
    const f = new TestFederation(await cleanup.tempDir('collective-fed-'))
    await initRoot(f.rootDir, federation)
    return f
  }

  async member (name: string, domain: string): Promise<TestMember> {
    const dir = join(this.root, 'members', name)
    await initMember(this.rootDir, dir, name, domain)
    const m = { name, domain, dir }
    this.members.set(name, m)
    return m
  }

  /** Issues a component identity and writes its config.yaml; returns its folder */
  async component (member: string, name: string, role: Role, config: Record<string, unknown> = {}): Promise<string> {
    const m = this.members.get(member)
    if (m == null) throw new Error(`no member ${member}`)
    const dir = join(this.root, 'peers', `${name}.${member}`)
    await mkdir(dir, { recursive: true })
    await issueComponent({ memberDir: m.dir, outDir: dir, role, name })
    await writeFile(join(dir, 'config.yaml'), stringify({
      role,
      identity: { key: 'peer.key', cert: 'peer.crt', root: 'root.crt' },
      dataDir: 'data',
      controlSocket: 'control.sock',
      listen: ['/ip4/127.0.0.1/tcp/0'],
      heartbeatIntervalMs: 500,
      ...config
    }))
    return dir
  }
}

export interface OneMember {
  fed: TestFederation
  coordinator: RunningDaemon
  nodes: RunningDaemon[]
  /** Starts one more storage node of the member (config as the others') and adds it to `nodes` */
  addNode: (name: string) => Promise<RunningDaemon>
}

/**
 * One member "alice" on 127.0.0.1: a coordinator with `coordinator` config and `nodes` storage nodes named
 * node-01… with `node` config, each a separate process; resolves once the coordinator sees every node alive.
 */
export async function startOneMember (cleanup: Cleanup, options: { coordinator: Record<string, unknown>, node: Record<string, unknown>, nodes: number, coordinatorEnv?: NodeJS.ProcessEnv }): Promise<OneMember> {
  const fed = await TestFederation.create(cleanup)
  await fed.member('alice', 'home.collective.local')
  const coordinator = await startDaemon(cleanup, await fed.component('alice', 'coordinator', 'coordinator', options.coordinator), [], options.coordinatorEnv ?? {}, 60_000)
  const nodes: RunningDaemon[] = []
  const addNode = async (name: string): Promise<RunningDaemon> => {
    const d = await startDaemon(cleanup, await fed.component('alice', name, 'node', options.node), ['--coordinator', coordinator.status.listen[0]], {}, 60_000)
    nodes.push(d)
    return d
  }
  for (let i = 1; i <= options.nodes; i++) await addNode(`node-${String(i).padStart(2, '0')}`)
  await waitFor(`${options.nodes} live nodes`, async () => (await call(coordinator.socket, 'nodes')).filter((n: any) => n.state === 'alive').length === options.nodes, 60_000)
  return { fed, coordinator, nodes, addNode }
}
