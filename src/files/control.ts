import { once } from 'node:events'
import { ControlBody } from '../control/server.js'
import { baseName } from '../metadata/paths.js'
import { clampRange } from '../transfer/range.js'
import type { ControlServer } from '../control/server.js'
import type { FileService } from './service.js'
import type { NodeRecord } from '../node-registry/registry.js'

export interface FileMethodsInit {
  files: FileService
  /** Federated name recorded as the owner of what this daemon creates */
  owner: string
  nodes: () => NodeRecord[]
}

function str (params: Record<string, unknown>, key: string): string {
  const v = params[key]
  if (typeof v !== 'string') throw new TypeError(`parameter "${key}" must be a string`)
  return v
}

function optionalNumber (params: Record<string, unknown>, key: string): number | undefined {
  const v = params[key]
  if (v == null) return undefined
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new TypeError(`parameter "${key}" must be a non-negative integer`)
  return v
}

/** The file commands of the CLI, served on the control socket (contract in src/cli/commands/files.ts) */
export function registerFileMethods (control: ControlServer, init: FileMethodsInit): void {
  const { files, owner } = init

  control.register('fs.mkdir', async p => files.mkdir(str(p, 'path'), p.parents === true, owner, optionalNumber(p, 'mode')))
  control.register('fs.ls', async p => ({ entries: files.list(str(p, 'path')).map(e => ({ ...e, name: baseName(e.path) })) }))
  control.register('fs.stat', async p => files.stat(str(p, 'path')))
  control.register('fs.rm', async p => await files.remove(str(p, 'path'), p.recursive === true))
  control.register('fs.mv', async p => await files.rename(str(p, 'src'), str(p, 'dst')))

  control.register('fs.put', async (p, ctx) => {
    const total = optionalNumber(p, 'size')
    let bytes = 0
    let lastReport = 0
    // Iterating a socket destroys it at the end by default, and the answer still has to go back on it.
    const body = ctx.socket.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>
    const entry = await files.write(str(p, 'path'), body, {
      size: total,
      owner,
      mode: optionalNumber(p, 'mode'),
      signal: ctx.signal,
      onProgress: (n) => {
        bytes += n
        // At most ten progress lines a second, whatever the chunk rate.
        const now = Date.now()
        if (now - lastReport >= 100) { lastReport = now; ctx.progress({ bytes, total }) }
      }
    })
    return { ...entry, chunks: files.stat(entry.path).chunks }
  })

  control.register('fs.get', async (p) => {
    const { entry, manifest } = files.open(str(p, 'path'))
    return new ControlBody({ ...entry }, async (socket, signal) => {
      for await (const bytes of files.read(manifest, signal)) {
        if (!socket.write(bytes)) await once(socket, 'drain', { signal })
      }
    })
  })

  // For the FUSE mount: chmod and utimens.
  control.register('fs.setattr', async p => await files.setAttributes(str(p, 'path'), { mode: optionalNumber(p, 'mode'), mtimeMs: optionalNumber(p, 'mtimeMs') }))

  // For the FUSE mount: a byte range of the current version. The result line carries the entry and the clamped
  // range; exactly `length` raw bytes follow it.
  control.register('fs.read', async (p) => {
    const { entry, manifest } = files.open(str(p, 'path'))
    const range = clampRange(manifest.size, optionalNumber(p, 'offset') ?? 0, optionalNumber(p, 'length') ?? manifest.size)
    return new ControlBody({ ...entry, ...range }, async (socket, signal) => {
      for await (const bytes of files.readRange(manifest, range.offset, range.length, signal)) {
        if (!socket.write(bytes)) await once(socket, 'drain', { signal })
      }
    })
  })

  control.register('df', async () => {
    const nodes = init.nodes().map(n => ({ name: n.name, peerId: n.peerId, state: n.state, capacityBytes: n.capacityBytes, usedBytes: n.usedBytes, chunkCount: n.chunkCount }))
    const live = nodes.filter(n => n.state !== 'dead')
    const capacityBytes = live.reduce((s, n) => s + n.capacityBytes, 0)
    const usedBytes = live.reduce((s, n) => s + n.usedBytes, 0)
    return {
      nodes,
      total: { capacityBytes, usedBytes, freeBytes: Math.max(0, capacityBytes - usedBytes) },
      replication: files.replication,
      usage: files.metadata.usage()
    }
  })
}
