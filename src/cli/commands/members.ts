import { call } from '../../control/client.js'
import { homeLayout } from '../../local/layout.js'
import { table, ago } from '../output.js'
import type { Command } from '../command.js'

/** One peer of the federation as the daemon's membership sees it (contract of the `members` control method) */
export interface MemberPeerView {
  peerId: string
  name?: string
  role?: string
  state: string
  /** ms since the epoch of the last state change */
  changedAt: number
  incarnation: number
  /** Lamport version of the last change */
  version: number
  /** The name and role were proved by a certificate this daemon verified, not only claimed */
  verified: boolean
  self?: boolean
}

export interface MemberView {
  member: string
  domain: string
  peers: MemberPeerView[]
}

export const membersCommand: Command = {
  name: 'members',
  summary: 'Every member of the federation with its coordinator and nodes: state (alive/suspect/dead), last change, version.',
  usage: 'members [--json]',
  description: 'State comes from SWIM membership: a peer that stops answering probes is suspect, and dead when it does not refute in time.',
  async run (ctx) {
    const members = await call(homeLayout(ctx.home).controlSocket, 'members') as MemberView[]
    ctx.emit(members)
    if (ctx.json) return 0
    const now = Date.now()
    const rows: Array<Array<string | number | undefined>> = []
    for (const m of members) {
      for (const p of m.peers) {
        rows.push([m.member, p.name != null ? `${p.name}${p.verified ? '' : ' (unverified)'}${p.self === true ? ' (this daemon)' : ''}` : p.peerId, p.role, p.state, ago(now - p.changedAt), p.version, p.peerId])
      }
    }
    ctx.out(rows.length === 0 ? 'no members known' : table(['MEMBER', 'NAME', 'ROLE', 'STATE', 'CHANGED', 'VERSION', 'PEER ID'], rows))
    return 0
  }
}

export const resolveCommand: Command = {
  name: 'resolve',
  summary: 'Resolve a federated name or a peer ID: print both, the state, and the current addresses.',
  usage: 'resolve NAME|PEERID [--json]',
  description: 'Names resolve through certificates and membership; addresses through membership, or kad-dht when not known directly.',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const r = await call(homeLayout(ctx.home).controlSocket, 'resolve', { query: ctx.positionals[0] })
    ctx.emit(r)
    ctx.out(`${r.name ?? '(name unknown)'}  ${r.peerId}`)
    if (r.role != null) ctx.out(`  role:   ${r.role as string}${r.verified === true ? '' : ' (unverified)'}`)
    if (r.state != null) ctx.out(`  state:  ${r.state as string}`)
    ctx.out(`  addrs:  ${(r.addrs as string[]).length > 0 ? (r.addrs as string[]).join('\n          ') : '(none known)'}`)
    if (r.source != null) ctx.out(`  (addresses from ${r.source as string})`)
    return 0
  }
}
