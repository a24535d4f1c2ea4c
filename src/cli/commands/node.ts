import { call } from '../../control/client.js'
import { homeLayout } from '../../local/layout.js'
import { formatBytes } from '../../util/units.js'
import { table, ago } from '../output.js'
import type { Command } from '../command.js'
import type { NodeView } from '../../repair/control.js'

function drainText (n: NodeView): string {
  if (n.drain == null) return '-'
  return n.drain.done ? 'drained' : `draining, ${n.drain.chunksLeft} chunks left`
}

function printNodes (nodes: NodeView[], out: (line?: string) => void): void {
  const now = Date.now()
  out(nodes.length === 0
    ? 'no storage nodes registered'
    : table(['NODE', 'STATE', 'USED', 'CAPACITY', 'CHUNKS', 'DRAIN', 'LAST SEEN', 'PEER ID'],
      nodes.map(n => [n.name, n.state, formatBytes(n.usedBytes), formatBytes(n.capacityBytes), n.chunkCount, drainText(n), ago(now - n.lastSeen), n.peerId])))
}

export const nodeLsCommand: Command = {
  name: 'node ls',
  summary: 'This member\'s storage nodes with state, fill and drain progress.',
  usage: 'node ls [--json]',
  async run (ctx) {
    const nodes = await call(homeLayout(ctx.home).controlSocket, 'node.ls') as NodeView[]
    ctx.emit(nodes)
    printNodes(nodes, ctx.out)
    return 0
  }
}

export const nodeDrainCommand: Command = {
  name: 'node drain',
  summary: 'Drain a storage node: no new chunks go to it, its chunks are copied elsewhere and then deleted from it.',
  usage: 'node drain NAME|PEERID [--json]',
  description: 'The drain is kept across coordinator restarts until "node undrain". Follow it with "node ls": the node is drained when no chunk is left on it.',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const node = await call(homeLayout(ctx.home).controlSocket, 'node.drain', { node: ctx.positionals[0] }) as NodeView
    ctx.emit(node)
    ctx.out(`draining ${node.name}: ${node.drain?.chunksLeft ?? 0} chunks to move ("collective-p2p node ls" shows progress)`)
    return 0
  }
}

export const nodeUndrainCommand: Command = {
  name: 'node undrain',
  summary: 'Cancel a drain: the node takes new chunks again (chunks already moved stay where they are).',
  usage: 'node undrain NAME|PEERID [--json]',
  minPositionals: 1,
  maxPositionals: 1,
  async run (ctx) {
    const node = await call(homeLayout(ctx.home).controlSocket, 'node.undrain', { node: ctx.positionals[0] }) as NodeView
    ctx.emit(node)
    ctx.out(`${node.name} is no longer draining`)
    return 0
  }
}

export const nodeCommands: Command[] = [nodeLsCommand, nodeDrainCommand, nodeUndrainCommand]
