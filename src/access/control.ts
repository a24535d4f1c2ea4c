import { MetaOp } from '../gen/meta.js'
import { baseName, isDescendant, normalizePath, parentOf } from '../metadata/paths.js'
import { parseRights, formatRights, NoSuchDataStoreError, NestedDataStoreError, DataStoreExistsError } from '../permissions/index.js'
import { parseExpiry } from '../util/units.js'
import { fromWireEntry } from './meta-client.js'
import { assertOpened, progressReporter, streamBody, uploadBody } from '../files/control.js'
import { LocalPathUnavailableError } from '../files/local-files.js'
import { clampRange } from '../transfer/range.js'
import { optionalNumber, optionalStr, str } from '../control/params.js'
import type { RemoteContent } from './content-client.js'
import type { ControlContext, ControlServer } from '../control/server.js'
import type { DataStoreDirectory, KnownDataStore } from './datastores.js'
import type { MetaClient } from './meta-client.js'
import type { MetaServer } from './meta-server.js'
import type { DataStoreRegistry, Strategy } from '../permissions/index.js'
import type { FileService } from '../files/service.js'
import type { VerifiedIdentity } from '../identity/index.js'

export interface AccessMethodsInit {
  identity: VerifiedIdentity
  directory: DataStoreDirectory
  meta: MetaClient
  /** A coordinator's own DataStores, their grants, and the server that describes them */
  registry?: DataStoreRegistry
  server?: MetaServer
  files?: FileService
  /** Moves file contents to and from other members' DataStores */
  content: RemoteContent
  /**
   * A client's member coordinator (peer ID): paths outside every DataStore are the member's own namespace there.
   * Absent on a coordinator, whose own namespace is local.
   */
  home?: string
}

export class CrossDataStoreMoveError extends Error {
  static name = 'CrossDataStoreMoveError'
  name = 'CrossDataStoreMoveError'
}

/**
 * The DataStore and permission commands of the CLI (`datastore`, `grant`, `revoke`, `rights`), and the routing of
 * the file commands: a path in another member's DataStore is answered by that DataStore's coordinator over
 * `/collective/meta`, with this daemon's certified identity; anything else stays local.
 */
export function registerAccessMethods (control: ControlServer, init: AccessMethodsInit): void {
  const { identity, directory, meta, registry, server, files, content } = init
  // The member's own namespace, on its coordinator, as a pseudo-DataStore covering every path no DataStore holds
  const home: KnownDataStore | undefined = init.home == null
    ? undefined
    : { path: '/', owner: `${identity.member}@${identity.domain}`, strategy: 'hybrid', replicas: 0, createdAtMs: 0, version: 0, coordinator: init.home, local: false }

  const requireExact = (path: string): KnownDataStore => {
    const p = normalizePath(path)
    const ds = directory.list().find(d => d.path === p)
    if (ds == null) throw new NoSuchDataStoreError(`no DataStore at ${p} is known (datastore ls lists them)`)
    return ds
  }

  /** Who answers for `path` when it is not this daemon: another member's DataStore, or a client's home coordinator */
  const remote = (path: string): KnownDataStore | undefined => {
    const ds = directory.find(path)
    if (ds != null) return ds.local ? undefined : ds
    return home
  }

  control.register('datastore.create', async p => {
    if (registry == null || files == null) throw new TypeError(`a ${identity.role} owns no DataStores: create them on your coordinator`)
    const path = normalizePath(str(p, 'path'))
    // The registry refuses overlaps among our own DataStores; the federation's are only known here.
    const clash = directory.list().find(d => !d.local && (d.path === path || isDescendant(d.path, path) || isDescendant(path, d.path)))
    if (clash?.path === path) throw new DataStoreExistsError(`${path} is already a DataStore, owned by ${clash.owner}`)
    if (clash != null) throw new NestedDataStoreError(`${path} would overlap ${clash.path}, owned by ${clash.owner}`)
    const ds = registry.create(identity, { path, strategy: optionalStr(p, 'strategy') as Strategy | undefined, replicas: typeof p.replicas === 'number' ? p.replicas : undefined })
    files.mkdir(path, true, `${identity.member}@${identity.domain}`)
    await directory.announce()
    return ds
  })

  control.register('datastore.ls', async () => directory.list())

  control.register('datastore.show', async (p, ctx) => {
    const ds = requireExact(str(p, 'path'))
    if (ds.local && server != null) return { ...server.describe(ds), coordinator: ds.coordinator, local: true }
    const res = await meta.call(ds.coordinator, { op: MetaOp.DATASTORE_SHOW, path: ds.path }, { signal: ctx.signal })
    return { ...res.datastore, coordinator: ds.coordinator, local: false }
  })

  control.register('grant', async (p, ctx) => {
    const path = normalizePath(str(p, 'path'))
    const rights = parseRights(str(p, 'rights'))
    const expiry = optionalStr(p, 'expires')
    const expiresAtMs = expiry != null ? parseExpiry(expiry) : undefined
    const subject = str(p, 'subject')
    const r = remote(path)
    if (r != null) return (await meta.call(r.coordinator, { op: MetaOp.GRANT, path, subject, rights: formatRights(rights), expiresAtMs: expiresAtMs ?? 0 }, { signal: ctx.signal })).grant
    if (registry == null) throw new NoSuchDataStoreError(`${path} is in no DataStore`)
    const grant = registry.grant(identity, { path, subject, rights, expiresAtMs })
    await directory.announce()
    return grant
  })

  control.register('revoke', async (p, ctx) => {
    const path = normalizePath(str(p, 'path'))
    const rights = optionalStr(p, 'rights')
    const subject = str(p, 'subject')
    const r = remote(path)
    if (r != null) return { revoked: (await meta.call(r.coordinator, { op: MetaOp.REVOKE, path, subject, rights: rights ?? '' }, { signal: ctx.signal })).rights }
    if (registry == null) throw new NoSuchDataStoreError(`${path} is in no DataStore`)
    const removed = registry.revoke(identity, { path, subject, rights: rights != null ? parseRights(rights) : undefined })
    await directory.announce()
    return { revoked: formatRights(removed) }
  })

  control.register('rights', async (p, ctx) => {
    const path = normalizePath(str(p, 'path'))
    const r = remote(path)
    if (r != null) return { path, rights: (await meta.call(r.coordinator, { op: MetaOp.RIGHTS, path }, { signal: ctx.signal })).rights }
    if (registry == null || directory.find(path) == null) return { path, rights: 'read+write+delete+share', private: true }
    return { path, rights: formatRights(registry.rights(identity, path)) }
  })

  // The file commands: other members' DataStores are theirs to answer.
  const route = (method: string, op: (ds: KnownDataStore, p: Record<string, unknown>, signal: AbortSignal, ctx: ControlContext) => Promise<unknown>): void => {
    const local = control.handler(method)
    control.register(method, async (p, ctx) => {
      const path = typeof p.path === 'string' ? p.path : typeof p.src === 'string' ? p.src : undefined
      const ds = path != null ? remote(path) : undefined
      if (ds != null) return await op(ds, p, ctx.signal, ctx)
      if (local == null) throw new TypeError(`a ${identity.role} has no namespace of its own: ${String(path)} is in no DataStore it can reach`)
      return await local(p, ctx)
    })
  }
  route('fs.mkdir', async (ds, p, signal) => fromWireEntry((await meta.call(ds.coordinator, { op: MetaOp.MKDIR, path: str(p, 'path'), parents: p.parents === true }, { signal })).entry!))
  route('fs.stat', async (ds, p, signal) => fromWireEntry((await meta.call(ds.coordinator, { op: MetaOp.STAT, path: str(p, 'path') }, { signal })).entry!))
  route('fs.ls', async (ds, p, signal) => {
    const path = normalizePath(str(p, 'path'))
    const stat = fromWireEntry((await meta.call(ds.coordinator, { op: MetaOp.STAT, path }, { signal })).entry!)
    const entries = stat.type === 'file' ? [stat] : await meta.list(ds.coordinator, path, { signal })
    return { entries: entries.map(e => ({ ...e, name: baseName(e.path) })) }
  })
  route('fs.rm', async (ds, p, signal) => {
    const res = await meta.call(ds.coordinator, { op: MetaOp.RM, path: str(p, 'path'), recursive: p.recursive === true }, { signal })
    return { files: res.removedFiles, dirs: res.removedDirs }
  })
  // File contents in another member's DataStore: the owner places and locates the chunks, this daemon moves them.
  route('fs.put', async (ds, p, signal, ctx) => {
    const path = normalizePath(str(p, 'path'))
    const size = optionalNumber(p, 'size')
    return await content.write(ds.coordinator, path, uploadBody(ctx, p), { size, mode: optionalNumber(p, 'mode'), signal, onProgress: progressReporter(ctx, size) })
  })
  route('fs.get', async (ds, p, signal) => {
    const file = await content.open(ds.coordinator, normalizePath(str(p, 'path')), signal)
    return streamBody({ ...file.entry }, signal => content.read(file, signal))
  })
  route('fs.read', async (ds, p, signal) => {
    const offset = optionalNumber(p, 'offset') ?? 0
    const length = optionalNumber(p, 'length')
    // The owner counts only the chunks of this range as read. The size is known only once the file is open, so a
    // read to the end of the file (as a mount's are) says so with the longest length there is.
    const file = await content.open(ds.coordinator, normalizePath(str(p, 'path')), signal, { offset, length: length ?? Number.MAX_SAFE_INTEGER - offset })
    assertOpened({ ...file.entry, version: file.version }, p)
    const range = clampRange(file.size, offset, length ?? file.size)
    return streamBody({ ...file.entry, ...range }, signal => content.readRange(file, range.offset, range.length, signal))
  })
  // The daemon's direct local-file transfers are for its own namespace: for another member's DataStore the CLI
  // streams the bytes (its fallback on LocalPathUnavailableError), and they take the routes above.
  for (const method of ['fs.putLocal', 'fs.getLocal']) {
    route(method, async ds => { throw new LocalPathUnavailableError(`${ds.path} is ${ds.owner}'s DataStore: its contents go through the routed transfer`) })
  }
  route('fs.setattr', async (ds, p, signal) => fromWireEntry((await meta.call(ds.coordinator, { op: MetaOp.SETATTR, path: str(p, 'path'), mode: optionalNumber(p, 'mode'), mtimeMs: optionalNumber(p, 'mtimeMs') }, { signal })).entry!))

  // Other members' DataStores appear where they are mounted in the tree, though this namespace has no such folder:
  // a listing of their parent shows them (the mount's `ls /` included).
  const listed = control.handler('fs.ls')
  if (listed != null) {
    control.register('fs.ls', async (p, ctx) => {
      const result = await listed(p, ctx) as { entries: Array<{ path: string, type: string }> }
      const path = normalizePath(str(p, 'path'))
      if (result.entries.length === 1 && result.entries[0].type === 'file' && result.entries[0].path === path) return result
      const present = new Set(result.entries.map(e => e.path))
      const mounted = directory.list()
        .filter(d => !d.local && !present.has(d.path) && parentOf(d.path) === path)
        .map(d => ({ path: d.path, name: baseName(d.path), type: 'dir', mode: 0o755, size: 0, mtimeMs: d.createdAtMs, ctimeMs: d.createdAtMs, owner: d.owner, version: 0, id: 0 }))
      return mounted.length === 0 ? result : { ...result, entries: [...result.entries, ...mounted].sort((a, b) => a.path.localeCompare(b.path)) }
    })
  }

  const localMove = control.handler('fs.mv')
  control.register('fs.mv', async (p, ctx) => {
    const [src, dst] = [str(p, 'src'), str(p, 'dst')]
    const [from, to] = [directory.find(src) ?? home, directory.find(dst) ?? home]
    if (from?.path !== to?.path) throw new CrossDataStoreMoveError(`${src} and ${dst} are in different DataStores: copy, then remove`)
    if (from != null && !from.local) return fromWireEntry((await meta.call(from.coordinator, { op: MetaOp.MV, path: src, destination: dst }, { signal: ctx.signal })).entry!)
    if (localMove == null) throw new TypeError(`${src} is in no DataStore this ${identity.role} can reach`)
    return await localMove(p, ctx)
  })
}

