import { call } from '../../control/client.js'
import { homeLayout } from '../../local/layout.js'
import { table, ago } from '../output.js'
import { formatBytes } from '../../util/units.js'
import type { Command } from '../command.js'

function socketOf (home: string): string {
  return homeLayout(home).controlSocket
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'Show this daemon\'s identity, addresses, connected peers and (on a coordinator) its storage nodes.',
  usage: 'status [--json]',
  async run (ctx) {
    const s = await call(socketOf(ctx.home), 'status')
    ctx.emit(s)
    ctx.out(`${s.name as string}  (${s.role as string} of member ${s.member as string})`)
    ctx.out(`  peer ID      ${s.peerId as string}`)
    ctx.out(`  certificate  expires ${s.certificateExpires as string}`)
    for (const a of s.listen as string[]) ctx.out(`  listening    ${a}`)
    if (s.registration != null) {
      const r = s.registration
      ctx.out(`  coordinator  ${r.state as string}${r.error != null ? ` (${r.error as string}: ${r.message as string})` : ''}`)
    }
    if (Array.isArray(s.nodes)) {
      ctx.out('')
      ctx.out(`Storage nodes (${s.nodes.length})`)
      if (s.nodes.length > 0) {
        ctx.out(table(['NAME', 'STATE', 'CAPACITY', 'USED', 'LAST SEEN'], s.nodes.map((n: any) => [
          n.name, n.state, formatBytes(n.capacityBytes), formatBytes(n.usedBytes), ago(Date.now() - n.lastSeen)
        ])))
      }
    }
    ctx.out('')
    ctx.out(`Connected peers (${s.peers.length as number})`)
    if (s.peers.length > 0) ctx.out(peerTable(s.peers))
  }
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
