import { createServer } from 'node:net'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { call } from '../../src/control/client.js'
import assert from 'node:assert/strict'
import { TestFederation, cli, startDaemon, waitFor } from './daemons.js'
import type { Cleanup, CliResult, RunningDaemon } from './daemons.js'

/** The seed's three members */
export const SEED_MEMBERS = [
  { name: 'alice', domain: 'home.collective.local' },
  { name: 'bob', domain: 'garage.collective.local' },
  { name: 'carol', domain: 'office.collective.local' }
]

/** A peer of a multi-member test federation: `key` is `<local>.<member>`, e.g. `node-01.bob` */
export interface MemberPeer {
  key: string
  member: string
  name: string
  dir: string
  port: number
  daemon?: RunningDaemon
  peerId?: string
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => { resolve(port) })
    })
  })
}

/**
 * Several members' daemons as separate processes on fixed loopback ports (so a restarted daemon keeps its
 * address): each member's coordinator joins through the first member's, each node registers with its own
 * coordinator. Real certificates from one federation root.
 */
export class MemberFederation {
  readonly peers = new Map<string, MemberPeer>()
  private readonly cleanup: Cleanup
  private readonly memberList: Array<{ name: string, domain: string }>

  /** The CA folders: the root's, and each member's (what `cert revoke --member-dir` takes) */
  ca!: TestFederation

  private constructor (cleanup: Cleanup, members: Array<{ name: string, domain: string }>) {
    this.cleanup = cleanup
    this.memberList = members
  }

  /**
   * Issues identities and configs: a coordinator per member plus `nodes` storage nodes each. `federation` goes
   * into every config's `federation:` section (timings); bootstrap is filled in by `startAll`.
   */
  static async create (cleanup: Cleanup, opts: { members?: Array<{ name: string, domain: string }>, nodes?: number, federation?: Record<string, unknown>, coordinator?: Record<string, unknown> } = {}): Promise<MemberFederation> {
    const members = opts.members ?? SEED_MEMBERS
    const f = new MemberFederation(cleanup, members)
    const fed = f.ca = await TestFederation.create(cleanup)
    for (const m of members) await fed.member(m.name, m.domain)
    for (const m of members) {
      const locals = ['coordinator', ...Array.from({ length: opts.nodes ?? 0 }, (_, i) => `node-${String(i + 1).padStart(2, '0')}`)]
      for (const local of locals) {
        const port = await freePort()
        const role = local === 'coordinator' ? 'coordinator' : 'node'
        const config: Record<string, unknown> = { listen: [`/ip4/127.0.0.1/tcp/${port}`], federation: opts.federation ?? {} }
        if (role === 'node') config.storage = { capacity: '1GiB' }
        if (role === 'coordinator') Object.assign(config, opts.coordinator ?? {})
        const dir = await fed.component(m.name, local, role, config)
        const key = `${local}.${m.name}`
        f.peers.set(key, { key, member: m.name, name: `${local}@${m.domain}`, dir, port })
      }
    }
    return f
  }

  peer (key: string): MemberPeer {
    const p = this.peers.get(key)
    if (p == null) throw new Error(`no peer ${key}`)
    return p
  }

  /** The peer's address with its peer ID, as bootstrap lists and `--coordinator` take it */
  addrOf (key: string): string {
    const p = this.peer(key)
    if (p.peerId == null) throw new Error(`${key} never started`)
    return `/ip4/127.0.0.1/tcp/${p.port}/p2p/${p.peerId}`
  }

  socket (key: string): string {
    const d = this.peer(key).daemon
    if (d == null) throw new Error(`${key} is not running`)
    return d.socket
  }

  /** Runs the CLI against a member's coordinator */
  async as (member: string, ...args: string[]): Promise<CliResult> {
    return await cli([...args, '--home', this.peer(`coordinator.${member}`).dir])
  }

  /** Runs the CLI against a member's coordinator and fails, with the end of that coordinator's log, unless it succeeds */
  async ok (member: string, ...args: string[]): Promise<string> {
    const r = await this.as(member, ...args)
    if (r.code !== 0) {
      assert.fail(`${member}: ${args.join(' ')}\n${r.stderr}\n--- ${member}'s coordinator:\n${this.peer(`coordinator.${member}`).daemon?.output().slice(-3000) ?? ''}`)
    }
    return r.stdout
  }

  /** Starts (or restarts) one daemon; nodes are pointed at their own member's coordinator */
  async start (key: string): Promise<RunningDaemon> {
    const p = this.peer(key)
    const extra = key.startsWith('coordinator.') ? [] : ['--coordinator', this.addrOf(`coordinator.${p.member}`)]
    for (let attempt = 1; ; attempt++) {
      try {
        // Many daemons start at once on two cores: give each more than the usual time.
        p.daemon = await startDaemon(this.cleanup, p.dir, extra, {}, 60_000)
        break
      } catch (err: any) {
        // freePort's port can be taken by another process before the daemon binds it: a first start moves on.
        if (p.peerId != null || attempt >= 3 || !String(err.message).includes('EADDRINUSE')) throw err
        p.port = await freePort()
        const file = join(p.dir, 'config.yaml')
        await writeFile(file, stringify({ ...parse(await readFile(file, 'utf8')), listen: [`/ip4/127.0.0.1/tcp/${p.port}`] }))
      }
    }
    p.peerId = p.daemon.status.peerId
    return p.daemon
  }

  /** The first member's coordinator, then the others (bootstrapping through it), then every node */
  async startAll (): Promise<void> {
    const [first, ...rest] = this.memberList
    await this.start(`coordinator.${first.name}`)
    for (const m of rest) {
      const configPath = join(this.peer(`coordinator.${m.name}`).dir, 'config.yaml')
      const config = parse(await readFile(configPath, 'utf8'))
      config.federation = { ...config.federation, bootstrap: [this.addrOf(`coordinator.${first.name}`)] }
      await writeFile(configPath, stringify(config))
    }
    await Promise.all(rest.map(async m => await this.start(`coordinator.${m.name}`)))
    await Promise.all([...this.peers.keys()].filter(k => !k.startsWith('coordinator.')).map(async k => await this.start(k)))
  }

  /** What one daemon's `members` says, by federated name */
  async members (key: string): Promise<Map<string, any>> {
    const view = await call(this.socket(key), 'members') as any[]
    return new Map(view.flatMap(m => m.peers.map((x: any) => [x.name as string, { ...x, member: m.member }])))
  }

  /** Waits until every listed daemon's membership satisfies `check`; resolves with the time it took */
  async converge (what: string, check: (view: Map<string, any>) => boolean, timeoutMs: number, keys = this.memberList.map(m => `coordinator.${m.name}`)): Promise<number> {
    const startedAt = Date.now()
    await Promise.all(keys.map(async k => await waitFor(`${k} to see ${what}`, async () => {
      const view = await this.members(k)
      if (check(view)) return true
      // Thrown, so that a timeout reports what the daemon saw last
      throw new Error(`${k} sees ${[...view.entries()].map(([name, p]) => `${name}=${String(p.state)}`).join(' ')}`)
    }, timeoutMs, 100)))
    return Date.now() - startedAt
  }
}
