import { call } from '../../control/client.js'
import { homeLayout } from '../../local/layout.js'
import { formatBytes } from '../../util/units.js'
import { table } from '../output.js'
import type { Command } from '../command.js'

interface DfNode { name: string, peerId: string, state: string, capacityBytes: number, usedBytes: number, chunkCount: number }

export interface DfResult {
  nodes: DfNode[]
  /** Over the nodes that are not dead, by the daemon's rule */
  total: { capacityBytes: number, usedBytes: number, freeBytes: number, chunkCount: number }
  replication: number
  usage: { files: number, dirs: number, bytes: number, chunks: number, storedBytes: number }
}

function percent (used: number, capacity: number): string {
  return capacity > 0 ? `${Math.round(used / capacity * 100)}%` : '-'
}

function count (n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}

export const dfCommand: Command = {
  name: 'df',
  summary: 'Show the storage nodes\' capacity and use, and how much the collective stores.',
  usage: 'df [--json]',
  async run (ctx) {
    const r = await call(homeLayout(ctx.home).controlSocket, 'df') as DfResult
    ctx.emit(r)
    const nodes = [...r.nodes].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    ctx.out(table(['NODE', 'STATE', 'CAPACITY', 'USED', 'USE%', 'CHUNKS'], [
      ...nodes.map(n => [n.name, n.state, formatBytes(n.capacityBytes), formatBytes(n.usedBytes), percent(n.usedBytes, n.capacityBytes), n.chunkCount]),
      ['total', '', formatBytes(r.total.capacityBytes), formatBytes(r.total.usedBytes), percent(r.total.usedBytes, r.total.capacityBytes), r.total.chunkCount]
    ]))
    ctx.out('')
    const u = r.usage
    ctx.out(`free        ${formatBytes(r.total.freeBytes)}`)
    ctx.out(`stored      ${count(u.files, 'file', 'files')} in ${count(u.dirs, 'directory', 'directories')}, ${formatBytes(u.bytes)} ` +
      `(${formatBytes(u.storedBytes)} with replicas, ${count(u.chunks, 'chunk', 'chunks')})`)
    ctx.out(`replication ${r.replication} copies of each chunk`)
  }
}
