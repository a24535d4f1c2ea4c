import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { call } from '../../src/control/client.js'
import { Cleanup, TestFederation, cli, startDaemon, waitFor } from '../../test/helpers/daemons.js'
import type { RunningDaemon } from '../../test/helpers/daemons.js'

export { scrape, sample } from '../../test/helpers/metrics.js'

/**
 * What the daemons print with DEBUG set: the upgrader's refusals, and every identify, kad-dht and gossipsub
 * exchange with the peer ID it concerns. A foreign peer that got past the handshake would show up here.
 */
export const DAEMON_DEBUG = 'libp2p:tcp:connection*,libp2p:identify*,libp2p:kad-dht:rpc*,libp2p:gossipsub,collective:*'

/** One member's collective as real processes: a coordinator and two storage nodes (replication 2) */
export class TestCollective {
  readonly cleanup = new Cleanup()
  fed!: TestFederation
  coordinator!: RunningDaemon
  nodes: RunningDaemon[] = []
  work!: string
  /** remote path -> sha256 of what was written */
  readonly written = new Map<string, string>()

  async start (opts: { env?: NodeJS.ProcessEnv } = {}): Promise<void> {
    this.work = await this.cleanup.tempDir('collective-interop-')
    this.fed = await TestFederation.create(this.cleanup)
    await this.fed.member('alice', 'home.collective.local')
    this.coordinator = await startDaemon(this.cleanup, await this.fed.component('alice', 'coordinator', 'coordinator', { heartbeatIntervalMs: 1000 }), [], opts.env)
    for (const name of ['node-01', 'node-02']) {
      const dir = await this.fed.component('alice', name, 'node', { heartbeatIntervalMs: 1000 })
      this.nodes.push(await startDaemon(this.cleanup, dir, ['--coordinator', this.coordinator.status.listen[0]], opts.env))
    }
    await waitFor('both nodes alive', async () => (await this.aliveNodes()) === 2, 30_000)
    const mk = await this.cli(['mkdir', '-p', '/docs'])
    if (mk.code !== 0) throw new Error(`mkdir failed: ${mk.stderr}`)
  }

  async aliveNodes (): Promise<number> {
    return (await call(this.coordinator.socket, 'nodes')).filter((n: any) => n.state === 'alive').length
  }

  async cli (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
    return await cli([...args, '--home', this.coordinator.dir], { timeoutMs: 60_000 })
  }

  /** Writes `size` random bytes to `remote` through the CLI; throws with the CLI's error on failure */
  async put (remote: string, size: number): Promise<void> {
    const local = join(this.work, `src-${randomBytes(4).toString('hex')}`)
    const bytes = randomBytes(size)
    await writeFile(local, bytes)
    const r = await this.cli(['put', local, remote])
    if (r.code !== 0) throw new Error(`put ${remote} failed: ${r.stderr}`)
    this.written.set(remote, sha256(bytes))
  }

  /** Reads `remote` back through the CLI; throws unless it is byte-identical to what was written */
  async assertReadsBack (remote: string): Promise<void> {
    const out = join(this.work, `out-${randomBytes(4).toString('hex')}`)
    const r = await this.cli(['get', remote, out])
    if (r.code !== 0) throw new Error(`get ${remote} failed: ${r.stderr}`)
    const got = sha256(await readFile(out))
    if (got !== this.written.get(remote)) throw new Error(`${remote} did not read back byte-identical`)
  }

  async stop (): Promise<void> { await this.cleanup.run() }
}

export function sha256 (bytes: Uint8Array): string { return createHash('sha256').update(bytes).digest('hex') }

/** Resident memory of a process in KiB, from /proc (Linux) */
export async function rssKiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  if (m == null) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(m[1])
}

/** CPU time a process has used so far, in seconds (user + system, from /proc) */
export async function cpuSeconds (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // fields after the command name (which may contain spaces), 1-based from the state field: utime 12, stime 13
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Debug lines a daemon printed that mention `needle` */
export function linesMentioning (d: RunningDaemon, needle: string): string[] {
  return d.output().split('\n').filter(l => l.includes(needle))
}
