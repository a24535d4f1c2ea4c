import { call } from '../../control/client.js'
import { homeLayout } from '../../local/layout.js'
import { table, ago, printable } from '../output.js'
import { formatBytes } from '../../util/units.js'
import { UsageError } from '../errors.js'
import type { Command, CommandContext } from '../command.js'

function socketOf (home: string): string {
  return homeLayout(home).controlSocket
}

const DEFAULT_WATCH_SECONDS = 2
// ESC[H moves to the top left, ESC[2J clears the screen: each refresh redraws in place like `watch`.
const CLEAR_SCREEN = '\x1b[H\x1b[2J'

export const statusCommand: Command = {
  name: 'status',
  summary: 'One-screen overview: identity, health, members, storage nodes with their fill, capacity and peers.',
  usage: 'status [--json] [--watch [SECONDS]]',
  description: `--watch redraws every SECONDS (default ${DEFAULT_WATCH_SECONDS}) until Ctrl-C; with --json it prints one JSON object per line per refresh.`,
  options: {
    watch: { type: 'boolean', short: 'w', description: `refresh every SECONDS (the argument after it, default ${DEFAULT_WATCH_SECONDS}) until Ctrl-C` }
  },
  maxPositionals: 1,
  async run (ctx) {
    const seconds = watchSeconds(ctx, this.usage)
    if (seconds == null) {
      const s = await overview(ctx)
      ctx.emit(s)
      if (!ctx.json) console.log(printable(renderStatus(s)))
      return 0
    }
    return await watch(ctx, seconds)
  }
}

/** The daemon's status and the context this command chose its home through (null when none did) */
async function overview (ctx: CommandContext, signal?: AbortSignal): Promise<any> {
  return { ...await call(socketOf(ctx.home), 'status', {}, { signal }), context: ctx.context ?? null }
}

function watchSeconds (ctx: CommandContext, usage: string): number | undefined {
  const arg = ctx.positionals[0]
  if (ctx.values.watch !== true) {
    if (arg != null) throw new UsageError(`unexpected argument "${arg}"\nUsage: collective-p2p ${usage}`)
    return undefined
  }
  if (arg == null) return DEFAULT_WATCH_SECONDS
  const n = Number(arg)
  if (!Number.isFinite(n) || n <= 0 || n > 86_400) throw new UsageError(`--watch takes a number of seconds (more than 0, at most 86400), got "${arg}"\nUsage: collective-p2p ${usage}`)
  return n
}

/**
 * Redraws until SIGINT/SIGTERM. A daemon that goes away does not end the watch: the frame says so and the next
 * refresh tries again, which is what someone watching a restart wants to see.
 */
async function watch (ctx: CommandContext, seconds: number): Promise<number> {
  const stop = new AbortController()
  const onSignal = (): void => { stop.abort() }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const tty = process.stdout.isTTY === true
  try {
    while (!stop.signal.aborted) {
      let frame: string
      try {
        const s = await overview(ctx, stop.signal)
        frame = ctx.json ? JSON.stringify(s) : renderStatus(s)
      } catch (err: any) {
        if (stop.signal.aborted) break
        const name: string = err?.remoteName ?? err?.name ?? 'Error'
        const message: string = err?.message ?? String(err)
        frame = ctx.json
          ? JSON.stringify({ error: { name, message }, timestamp: new Date().toISOString() })
          : `collective-p2p: ${message} [${name}]\n(retrying every ${seconds}s)`
      }
      if (ctx.json) {
        process.stdout.write(frame + '\n')
      } else {
        const header = `Every ${seconds}s: collective-p2p status    ${new Date().toLocaleString()}    (Ctrl-C to stop)\n\n`
        // Without a terminal there is no screen to clear: frames are separated instead, so a log of them stays readable.
        process.stdout.write((tty ? CLEAR_SCREEN : '\n') + header + printable(frame) + '\n')
      }
      await new Promise<void>(resolve => {
        const timer = setTimeout(done, seconds * 1000)
        function done (): void { clearTimeout(timer); stop.signal.removeEventListener('abort', done); resolve() }
        stop.signal.addEventListener('abort', done, { once: true })
      })
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  return 0
}

function percent (used: number, capacity: number): string {
  if (!(capacity > 0)) return '-'
  return `${(used / capacity * 100).toFixed(1)}%`
}

/** The human overview; kept to what fits one screen for a member with a handful of nodes */
export function renderStatus (s: any): string {
  const lines: string[] = []
  const out = (line = ''): void => { lines.push(line) }
  const health = s.health
  out(`${s.name as string}  (${s.role as string} of member ${s.member as string})${health != null ? `    health ${health.score as number}/100 ${health.status as string}` : ''}`)
  if (s.context != null) out(`  context      ${s.context as string}`)
  out(`  peer ID      ${s.peerId as string}`)
  out(`  certificate  expires ${s.certificateExpires as string}`)
  for (const a of s.listen as string[]) out(`  listening    ${a}`)
  if (s.metrics != null) out(`  metrics      ${s.metrics as string}`)
  if (typeof s.uptimeSeconds === 'number') out(`  uptime       ${formatUptime(s.uptimeSeconds)}`)
  if (s.registration != null) {
    const r = s.registration
    out(`  coordinator  ${r.state as string}${r.error != null ? ` (${r.error as string}: ${r.message as string})` : ''}`)
  }

  if (health != null) {
    out('')
    out(`Health ${health.score as number}/100 (${health.status as string})`)
    if (Array.isArray(health.components) && health.components.length > 0) {
      out(table(['  COMPONENT', 'SCORE', 'WEIGHT', 'DETAIL'], health.components.map((c: any) => [`  ${c.name as string}`, c.score, c.weight, c.detail])))
    }
  }

  if (Array.isArray(s.members)) {
    out('')
    out(`Members (${s.members.length})`)
    for (const m of s.members) {
      const peers: any[] = Array.isArray(m.peers) ? m.peers : []
      const counts = ['alive', 'suspect', 'dead', 'left'].map(state => [state, peers.filter(p => p.state === state).length] as const).filter(([, n]) => n > 0)
      const self = m.domain === s.domain ? '  (this member)' : ''
      out(`  ${m.member as string}@${m.domain as string}  ${counts.map(([state, n]) => `${n} ${state}`).join(', ') || 'no peers known'}${self}`)
    }
  }

  const storage = s.storage
  if (storage != null) {
    out('')
    const under = storage.underReplicatedChunks == null
      ? 'not measured yet'
      : `${storage.underReplicatedChunks as number}${storage.chunksAtMostOneCopy > 0 ? ` (${storage.chunksAtMostOneCopy as number} with at most one copy)` : ''}`
    out(`Storage  ${formatBytes(storage.usedBytes)} used of ${formatBytes(storage.capacityBytes)} (${percent(storage.usedBytes, storage.capacityBytes)})` +
      `${storage.liveNodes != null ? ` on ${storage.liveNodes as number} live node(s)` : ''}` +
      `${storage.chunks != null ? `, ${storage.chunks as number} chunks` : ''}` +
      `${s.replication != null ? `, replication ${s.replication as number}` : ''}`)
    out(`  under-replicated chunks: ${under}`)
  }

  if (Array.isArray(s.nodes)) {
    out('')
    out(`Storage nodes (${s.nodes.length})`)
    if (s.nodes.length > 0) {
      out(table(['  NAME', 'STATE', 'FILL', 'USED', 'CAPACITY', 'CHUNKS', 'LAST SEEN'], s.nodes.map((n: any) => [
        `  ${n.name as string}`, n.state, percent(n.usedBytes, n.capacityBytes), formatBytes(n.usedBytes), formatBytes(n.capacityBytes), n.chunkCount, ago(Date.now() - n.lastSeen)
      ])))
    }
  }

  const peers = Array.isArray(s.peers) ? s.peers : []
  out('')
  out(`Connected peers (${peers.length as number})`)
  if (peers.length > 0) out(peerTable(peers))
  if (Array.isArray(s.refusals) && s.refusals.length > 0) {
    const last = s.refusals[s.refusals.length - 1]
    out('')
    out(`Refused handshakes: ${s.refusals.length as number} recent, last ${last.at as string} ${last.direction as string} ${String(last.remotePeer ?? '?')} (${last.reason as string})`)
  }
  return lines.join('\n')
}

function formatUptime (seconds: number): string {
  if (seconds < 60) return `${seconds}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ${Math.floor(seconds % 3600 / 60)}m`
  return `${Math.floor(seconds / 86_400)}d ${Math.floor(seconds % 86_400 / 3600)}h`
}

function peerTable (peers: any[]): string {
  return table(['NAME', 'ROLE', 'MEMBER', 'PEER ID', 'ADDRESS'], peers.map(p => [p.name, p.role, p.member, p.peerId, p.addrs[0]]))
}

export const peersCommand: Command = {
  name: 'peers',
  summary: 'List the peers this daemon is connected to, with the name and role their certificate proved.',
  usage: 'peers [--json]',
  async run (ctx) {
    const peers = await call(socketOf(ctx.home), 'peers')
    ctx.emit(peers)
    ctx.out(peers.length === 0 ? 'no connected peers' : peerTable(peers))
  }
}
