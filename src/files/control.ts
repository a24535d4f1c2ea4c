import { once } from 'node:events'
import { ControlBody } from '../control/server.js'
import { baseName } from '../metadata/paths.js'
import { clampRange } from '../transfer/range.js'
import { optionalNumber, str } from '../control/params.js'
import type { ControlServer, ControlContext } from '../control/server.js'
import type { FileService } from './service.js'
import type { NodeRecord } from '../node-registry/registry.js'

export interface FileMethodsInit {
  files: FileService
  /** Federated name recorded as the owner of what this daemon creates */
  owner: string
  nodes: () => NodeRecord[]
}

/** The bytes of an upload: the rest of the request's socket */
export function uploadBody (ctx: ControlContext): AsyncIterable<Uint8Array> {
  // Iterating a socket destroys it at the end by default, and the answer still has to go back on it.
  return ctx.socket.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>
}

/** Counts uploaded bytes into progress lines on the control socket: at most ten a second, whatever the chunk rate */
export function progressReporter (ctx: ControlContext, total?: number): (bytes: number) => void {
  let bytes = 0
  let lastReport = 0
  return (n) => {
    bytes += n
    const now = Date.now()
    if (now - lastReport >= 100) { lastReport = now; ctx.progress({ bytes, total }) }
  }
}

/** A result line followed by raw bytes, written as the reader yields them and as fast as the socket takes them */
export function streamBody (result: Record<string, unknown>, read: (signal: AbortSignal) => AsyncIterable<Uint8Array>): ControlBody {
  return new ControlBody(result, async (socket, signal) => {
    for await (const bytes of read(signal)) {
      if (!socket.write(bytes)) await once(socket, 'drain', { signal })
    }
  })
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
    const entry = await files.write(str(p, 'path'), uploadBody(ctx), {
      size: optionalNumber(p, 'size'),
      owner,
      mode: optionalNumber(p, 'mode'),
      signal: ctx.signal,
      onProgress: progressReporter(ctx, optionalNumber(p, 'size'))
    })
    return { ...entry, chunks: files.stat(entry.path).chunks }
  })

  control.register('fs.get', async (p) => {
    const { entry, manifest } = files.open(str(p, 'path'))
    return streamBody({ ...entry }, signal => files.read(manifest, signal))
  })

  // For the FUSE mount: chmod and utimens.
  control.register('fs.setattr', async p => await files.setAttributes(str(p, 'path'), { mode: optionalNumber(p, 'mode'), mtimeMs: optionalNumber(p, 'mtimeMs') }))

  // For the FUSE mount: a byte range of the current version. The result line carries the entry and the clamped
  // range; exactly `length` raw bytes follow it.
  control.register('fs.read', async (p) => {
    const { entry, manifest } = files.open(str(p, 'path'))
    const range = clampRange(manifest.size, optionalNumber(p, 'offset') ?? 0, optionalNumber(p, 'length') ?? manifest.size)
    return streamBody({ ...entry, ...range }, signal => files.readRange(manifest, range.offset, range.length, signal))
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
