import { once } from 'node:events'
import { ControlBody } from '../control/server.js'
import { ControlProtocolError } from '../control/errors.js'
import { readFramedBody } from '../control/framing.js'
import { describeChange, sameContent } from '../metadata/content.js'
import { FileChangedError } from '../metadata/errors.js'
import { baseName } from '../metadata/paths.js'
import { MAX_CHUNK_SIZE } from '../storage/chunking.js'
import { clampRange } from '../transfer/range.js'
import { AlignedBufferPool } from '../util/direct-io.js'
import { releaseBytes } from '../util/lent-bytes.js'
import { optionalNumber, str } from '../control/params.js'
import { PartialFile, assertAbsolute, openForUpload, readChunks } from './local-files.js'
import type { FileIdentity } from './local-files.js'
import type { ControlServer, ControlContext } from '../control/server.js'
import type { FileService } from './service.js'
import type { Entry } from '../metadata/store.js'
import type { NodeRecord } from '../node-registry/registry.js'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface FileMethodsInit {
  files: FileService
  /** Federated name recorded as the owner of what this daemon creates */
  owner: string
  nodes: () => NodeRecord[]
}

/**
 * The bytes of an upload: the rest of the request's socket, raw when the request declares their size (the writer
 * checks it), else framed (see framing.ts). The end of the connection alone never completes an upload.
 */
export function uploadBody (ctx: ControlContext, params: Record<string, unknown>): AsyncIterable<Uint8Array> {
  if (params.framed !== true && params.size == null) throw new ControlProtocolError('an upload of unknown size must be framed: the end of the connection cannot tell a whole body from a cut one')
  // Iterating a socket destroys it at the end by default, and the answer still has to go back on it.
  const raw = ctx.socket.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>
  return params.framed === true ? readFramedBody(raw) : raw
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
export function streamBody (result: Record<string, unknown>, read: (signal: AbortSignal) => AsyncIterable<Uint8Array | Uint8ArrayList>): ControlBody {
  return new ControlBody(result, async (socket, signal) => {
    for await (const bytes of read(signal)) {
      let room = true
      // corked, the pieces of a chunk leave in one writev rather than one write each
      socket.cork()
      const pieces = bytes instanceof Uint8Array ? [bytes] : [...bytes]
      // the socket is done with the bytes once the last piece's write has completed (or failed)
      pieces.forEach((piece, i) => { room = socket.write(piece, i === pieces.length - 1 ? () => { releaseBytes(bytes) } : undefined) })
      socket.uncork()
      if (!room) await once(socket, 'drain', { signal })
    }
  })
}

function optionalIdentity (params: Record<string, unknown>, key: string): FileIdentity | undefined {
  const v = params[key] as Record<string, unknown> | undefined
  if (v == null) return undefined
  if (typeof v !== 'object' || !Number.isSafeInteger(v.dev) || !Number.isSafeInteger(v.ino)) throw new TypeError(`parameter "${key}" must be {dev, ino} integers`)
  return { dev: v.dev as number, ino: v.ino as number }
}

function absolute (params: Record<string, unknown>, key: string): string {
  const path = str(params, key)
  assertAbsolute(path, `parameter "${key}"`)
  return path
}

/**
 * A read that names the content it opened (`version`, and `id` where known), as the FUSE mount's reads do, is
 * refused once the path holds another: a new version, a file moved over it (`mv new old`, the way editors save)
 * or one created again. Each read opens its own stream by path, so answering from the new content would hand one
 * open file the bytes of two.
 *
 * @throws FileChangedError
 */
export function assertOpened (entry: Entry, p: Record<string, unknown>): void {
  const version = optionalNumber(p, 'version')
  if (version == null) return
  const opened = { id: optionalNumber(p, 'id') ?? 0, version }
  if (!sameContent(opened, entry)) throw new FileChangedError(`${entry.path} changed since it was opened (${describeChange(opened, entry)}); open it again`)
}

/** The file commands of the CLI, served on the control socket (contract in src/cli/commands/files.ts) */
export function registerFileMethods (control: ControlServer, init: FileMethodsInit): void {
  // get's local files are written with direct I/O (see util/direct-io.ts); a download writes one chunk at a time,
  // so the buffers are allocated as needed and rarely more than one
  const buffers = new AlignedBufferPool({ bufferBytes: MAX_CHUNK_SIZE, maxBuffers: 2 })
  const { files, owner } = init

  control.register('fs.mkdir', async p => files.mkdir(str(p, 'path'), p.parents === true, owner, optionalNumber(p, 'mode')))
  control.register('fs.ls', async p => ({ entries: files.list(str(p, 'path')).map(e => ({ ...e, name: baseName(e.path) })) }))
  control.register('fs.stat', async p => files.stat(str(p, 'path')))
  control.register('fs.rm', async p => await files.remove(str(p, 'path'), p.recursive === true))
  control.register('fs.mv', async p => await files.rename(str(p, 'src'), str(p, 'dst')))

  control.register('fs.put', async (p, ctx) => {
    const entry = await files.write(str(p, 'path'), uploadBody(ctx, p), {
      size: optionalNumber(p, 'size'),
      owner,
      mode: optionalNumber(p, 'mode'),
      signal: ctx.signal,
      onProgress: progressReporter(ctx, optionalNumber(p, 'size'))
    })
    return { ...entry, chunks: files.stat(entry.path).chunks }
  })

  // put LOCALFILE on the daemon's own host: the daemon reads the file itself, chunk by chunk, instead of taking
  // its bytes through the CLI process and the socket. `file` is what the CLI opened, so a path that means another
  // file here (another mount namespace) is LocalPathUnavailableError, on which the CLI streams the bytes itself.
  // The FUSE mount uploads its spool files this way too, with `keepMode`: the spool's 0600 is no file's mode, so a
  // replaced file keeps its own and a new one gets the default, as with fs.put without a mode.
  control.register('fs.putLocal', async (p, ctx) => {
    const localPath = absolute(p, 'localPath')
    const { handle, size, mode } = await openForUpload(localPath, optionalIdentity(p, 'file'))
    try {
      const entry = await files.write(str(p, 'path'), (chunkSize, buffer) => readChunks(handle, size, chunkSize, localPath, ctx.signal, buffer), {
        size,
        owner,
        mode: optionalNumber(p, 'mode') ?? (p.keepMode === true ? undefined : mode),
        signal: ctx.signal,
        onProgress: progressReporter(ctx, size)
      })
      return { ...entry, chunks: files.stat(entry.path).chunks }
    } finally {
      await handle.close().catch(() => {})
    }
  })

  control.register('fs.get', async (p) => {
    const { entry, manifest } = files.open(str(p, 'path'))
    return streamBody({ ...entry }, signal => files.read(manifest, signal))
  })

  // get REMOTE LOCALFILE on the daemon's own host: the daemon writes the file itself (LOCALFILE.partial-*, flushed
  // and renamed into place when complete, removed on any failure or when the CLI goes away). `directory` is the
  // destination's directory as the CLI saw it, checked like `file` above.
  control.register('fs.getLocal', async (p, ctx) => {
    const dest = absolute(p, 'localPath')
    const { entry, manifest } = files.open(str(p, 'path'))
    const partial = await PartialFile.create(dest, { mode: optionalNumber(p, 'mode'), directory: optionalIdentity(p, 'directory'), buffers })
    const progress = progressReporter(ctx, manifest.size)
    try {
      for await (const bytes of files.read(manifest, ctx.signal)) {
        await partial.write(bytes)
        progress(bytes.byteLength)
        // written (copied into the page cache, or taken by the device): nothing refers to the bytes any more
        releaseBytes(bytes)
      }
      await partial.commit()
    } catch (err) {
      await partial.abort()
      throw err
    }
    return { ...entry, destination: dest }
  })

  // For the FUSE mount: chmod and utimens.
  control.register('fs.setattr', async p => await files.setAttributes(str(p, 'path'), { mode: optionalNumber(p, 'mode'), mtimeMs: optionalNumber(p, 'mtimeMs') }))

  // For the FUSE mount: a byte range of the current version, or of the one it opened (assertOpened). The result line
  // carries the entry and the clamped range; exactly `length` raw bytes follow it.
  control.register('fs.read', async (p) => {
    const { entry, manifest } = files.open(str(p, 'path'))
    assertOpened(entry, p)
    const range = clampRange(manifest.size, optionalNumber(p, 'offset') ?? 0, optionalNumber(p, 'length') ?? manifest.size)
    return streamBody({ ...entry, ...range }, signal => files.readRange(manifest, range.offset, range.length, signal))
  })

  control.register('df', async () => {
    const nodes = init.nodes().map(n => ({ name: n.name, peerId: n.peerId, state: n.state, capacityBytes: n.capacityBytes, usedBytes: n.usedBytes, chunkCount: n.chunkCount }))
    // A dead node's figures are its last report: what it held is not in the collective now.
    const live = nodes.filter(n => n.state !== 'dead')
    const capacityBytes = live.reduce((s, n) => s + n.capacityBytes, 0)
    const usedBytes = live.reduce((s, n) => s + n.usedBytes, 0)
    const chunkCount = live.reduce((s, n) => s + n.chunkCount, 0)
    return {
      nodes,
      total: { capacityBytes, usedBytes, freeBytes: Math.max(0, capacityBytes - usedBytes), chunkCount },
      replication: files.replication,
      usage: files.metadata.usage()
    }
  })
}
