import { durabilityReport } from './durability.js'
import { UnknownNodeError } from './errors.js'
import type { Repairer, DrainProgress } from './repairer.js'
import type { DrainList } from '../node-registry/drains.js'
import type { NodeRegistry, NodeRecord } from '../node-registry/registry.js'
import type { FileService } from '../files/service.js'
import type { ControlServer } from '../control/server.js'

export interface RepairMethodsInit {
  repairer: Repairer
  drains: DrainList
  /** This member's own nodes: the only ones its coordinator may drain */
  registry: NodeRegistry
  files: FileService
  /** Every node known to the federation (where copies may lie) */
  nodes: () => NodeRecord[]
}

/** A node of this member with its drain progress (contract of `node.ls`, `node.drain`, `node.undrain`) */
export interface NodeView extends NodeRecord {
  drain?: DrainProgress
}

function nodeParam (params: Record<string, unknown>): string {
  const v = params.node
  if (typeof v !== 'string' || v.length === 0) throw new TypeError('parameter "node" must be a node name or peer ID')
  return v
}

/** Repair, drain and durability, served on the control socket (contracts in src/cli/commands/node.ts and durability.ts) */
export function registerRepairMethods (control: ControlServer, init: RepairMethodsInit): void {
  const { repairer, drains, registry, files } = init

  const find = (query: string): NodeRecord => {
    const node = registry.list().find(n => n.peerId === query || n.name === query || n.name.split('@')[0] === query)
    if (node == null) {
      const own = registry.list().map(n => n.name).join(', ')
      throw new UnknownNodeError(`no node "${query}" is registered with this coordinator (its nodes: ${own.length > 0 ? own : 'none'})`)
    }
    return node
  }
  const view = (node: NodeRecord): NodeView => {
    const progress = repairer.status().draining.find(d => d.peerId === node.peerId)
    return progress == null ? node : { ...node, drain: { ...progress, since: drains.since(node.peerId) } }
  }

  control.register('repair.status', async () => repairer.status())
  control.register('node.ls', async () => registry.list().map(view))
  control.register('node.drain', async p => {
    const node = find(nodeParam(p))
    await drains.add(node.peerId)
    repairer.wake()
    return view(registry.get(node.peerId) ?? node)
  })
  control.register('node.undrain', async p => {
    const node = find(nodeParam(p))
    await drains.delete(node.peerId)
    return view(registry.get(node.peerId) ?? node)
  })
  control.register('durability', async p => {
    const path = p.path ?? '/'
    if (typeof path !== 'string') throw new TypeError('parameter "path" must be a string')
    return durabilityReport(files.metadata, init.nodes(), path, files.replication)
  })
}
