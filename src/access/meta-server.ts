import { handleRequests } from '../net/rpc.js'
import { MetaOp, MetaRequest, MetaResponse, MetaStatus } from '../gen/meta.js'
import { moveDestination, normalizePath } from '../metadata/paths.js'
import {
  META_PROTOCOL, META_PROTOCOL_LIMITS, REQUIRED_RIGHT, metaStatusOf, parseRights, formatRights, principalOf, PermissionDeniedError
} from '../permissions/index.js'
import { InvalidMetaRequestError, NotOwnerError } from '../permissions/meta-protocol.js'
import { OperationNotAllowedError, UnknownPeerError } from '../chunks/protocol.js'
import { toWireEntry, toWireGrant } from './wire.js'
import type { DataStoreRegistry, DataStore } from '../permissions/index.js'
import type { ContentServer } from './content-server.js'
import type { FileService } from '../files/service.js'
import type { Host } from '../net/host.js'
import type { PeerIdentities } from '../net/peer-identities.js'
import type { VerifiedIdentity } from '../identity/index.js'
import type { ComponentLogger, Logger, PeerId } from '@libp2p/interface'

export interface MetaServerComponents {
  host: Host
  /** This coordinator's own identity: its member's components may use the member's own namespace */
  identity: VerifiedIdentity
  identities: PeerIdentities
  /** The federation's DataStores: a path in one another coordinator owns is refused as not ours */
  directory?: { find: (path: string) => { local: boolean } | undefined }
  registry: DataStoreRegistry
  files: FileService
  /** File contents (OPEN_READ and the write ops); without it they are refused as not served */
  content?: ContentServer
  logger: ComponentLogger
  /** Told about every permission check (metrics): the right, and whether it was allowed */
  onCheck?: (right: string, allowed: boolean) => void
  /** Told when a DataStore or its grants changed, so the federation hears at once */
  onDataStoresChanged?: () => void
  /** Ops answered by other modules (invites, certificate renewal); each checks its caller, which may be uncertified */
  handlers?: Partial<Record<MetaOp, MetaOpHandler>>
}

type Response = Partial<MetaResponse>

const CONTENT_OPS: ReadonlySet<MetaOp> = new Set([MetaOp.OPEN_READ, MetaOp.BEGIN_WRITE, MetaOp.ALLOCATE, MetaOp.COMMIT_WRITE, MetaOp.ABORT_WRITE])
/** `caller` is the connection's verified identity; undefined for a newcomer admitted without a certificate */
export type MetaOpHandler = (req: MetaRequest, ctx: { remotePeer: PeerId, caller?: VerifiedIdentity, signal: AbortSignal }) => Promise<Response>

/**
 * `/collective/meta/1.0.0` on a DataStore's owning coordinator (spec: protocols/meta.md): every metadata operation
 * of another member, or of a client, on one of this coordinator's DataStores. The caller is who its certificate
 * says it is — never anything in the request — and every operation is checked against its rights before anything
 * changes; a denial changes nothing and names the path and the missing right.
 */
export class MetaServer {
  private readonly components: MetaServerComponents
  private readonly log: Logger

  constructor (components: MetaServerComponents) {
    this.components = components
    this.log = components.logger.forComponent('collective:access:meta-server')
  }

  async start (): Promise<void> {
    await handleRequests(this.components.host, META_PROTOCOL, MetaRequest, MetaResponse, async (req, { remotePeer, signal }) => {
      const caller = this.components.identities.get(remotePeer)
      try {
        const handler = this.components.handlers?.[req.op]
        if (handler != null) return complete(await handler(req, { remotePeer, caller, signal }))
        if (caller == null) throw new UnknownPeerError(`${remotePeer.toString()} has no verified certificate here`)
        // A storage node stores; it never acts on the namespace, though its certificate names its member.
        if (caller.role === 'node') throw new OperationNotAllowedError(`${caller.name} is certified as a node; nodes do not use ${META_PROTOCOL}`)
        return complete(await this.serve(caller, req, signal))
      } catch (err: any) {
        this.log('%s from %s refused - %s: %s', MetaOp[req.op], caller?.name ?? remotePeer.toString(), err.name, err.message)
        return complete({ status: metaStatusOf(err), error: err.name ?? 'Error', message: err.message ?? String(err), deniedPath: err.name === 'PermissionDeniedError' ? err.path : '', deniedRight: err.name === 'PermissionDeniedError' ? err.right : '' })
      }
    }, { ...META_PROTOCOL_LIMITS }, this.log)
  }

  async stop (): Promise<void> {
    await this.components.host.unhandle(META_PROTOCOL)
  }

  /** The DataStore `path` lies in, which must be one of ours: we answer only for what we own */
  private owned (path: string): DataStore {
    try {
      return this.components.registry.datastoreOf(path)
    } catch (err: any) {
      if (err.name === 'NoSuchDataStoreError') throw new NotOwnerError(`${path} is in no DataStore this coordinator owns`)
      throw err
    }
  }

  private check (caller: VerifiedIdentity, path: string, op: MetaOp): void {
    const right = REQUIRED_RIGHT[op]
    if (right == null) return
    try {
      if (this.inDataStore(path)) this.components.registry.check(caller, path, right)
      else this.checkPrivate(caller, path, right)
      this.components.onCheck?.(right, true)
    } catch (err: any) {
      if (err.name === 'PermissionDeniedError') this.components.onCheck?.(right, false)
      throw err
    }
  }

  private inDataStore (path: string): boolean {
    return this.components.registry.find(path) != null
  }

  /**
   * Outside its DataStores a coordinator's namespace is its member's own: its member's other components (a
   * laptop's client daemon) use it as the member, nobody else does, guests included.
   */
  private checkPrivate (caller: VerifiedIdentity, path: string, right: string): void {
    if (this.components.directory?.find(path)?.local === false) throw new NotOwnerError(`${path} is in a DataStore another coordinator owns`)
    const principal = principalOf(caller)
    const member = principalOf(this.components.identity)
    if (principal !== member) {
      throw new PermissionDeniedError(principal, path, right, { detail: `${path} is in ${member}'s own namespace, outside every DataStore` })
    }
  }

  private async serve (caller: VerifiedIdentity, req: MetaRequest, signal: AbortSignal): Promise<Response> {
    const { files, registry, content } = this.components
    if (CONTENT_OPS.has(req.op)) {
      if (content == null) throw new InvalidMetaRequestError(`operation ${MetaOp[req.op]} is not served here`)
      if (req.op === MetaOp.OPEN_READ || req.op === MetaOp.BEGIN_WRITE) {
        this.check(caller, normalizePath(req.path), req.op)
        return await content.serve(caller, req, signal)
      }
      // An open write is checked again on every step: a grant revoked mid-write stops it at the next call.
      const path = content.pathOf(caller, req.writeId)
      if (req.op !== MetaOp.ABORT_WRITE) this.check(caller, path, MetaOp.BEGIN_WRITE)
      return await content.serve(caller, { ...req, path }, signal)
    }
    const path = req.op === MetaOp.DATASTORE_LIST ? '/' : normalizePath(req.path)
    this.check(caller, path, req.op)
    const owner = principalOf(caller)
    switch (req.op) {
      case MetaOp.MKDIR:
        return { entry: toWireEntry(files.mkdir(path, req.parents, owner)) }
      case MetaOp.LS: {
        const entries = files.list(path).sort((a, b) => a.path.localeCompare(b.path))
        const after = req.after !== '' ? entries.findIndex(e => e.path.localeCompare(req.after) > 0) : 0
        const start = after < 0 ? entries.length : after
        const limit = req.limit > 0 ? Math.min(req.limit, META_PROTOCOL_LIMITS.lsPageSize) : META_PROTOCOL_LIMITS.lsPageSize
        const page = entries.slice(start, start + limit)
        return { entries: page.map(toWireEntry), more: start + limit < entries.length }
      }
      case MetaOp.STAT:
        return { entry: toWireEntry(files.stat(path)) }
      case MetaOp.SETATTR:
        return { entry: toWireEntry(await files.setAttributes(path, { mode: req.mode, mtimeMs: req.mtimeMs })) }
      case MetaOp.RM: {
        if (registry.get(path) != null) throw new InvalidMetaRequestError(`${path} is a DataStore's root; it is not removed with rm`)
        // the path as sent: a trailing slash there means "a directory" (FileService.remove)
        const removed = await files.remove(req.path, req.recursive)
        return { removedFiles: removed.files, removedDirs: removed.dirs }
      }
      case MetaOp.MV: {
        const destination = moveDestination(path, req.destination)
        // Moving takes the source away (delete) and puts it at the destination (write); both in our DataStores.
        this.check(caller, destination, MetaOp.MKDIR)
        if (registry.get(path) != null) throw new InvalidMetaRequestError(`${path} is a DataStore's root; it is not moved`)
        return { entry: toWireEntry(await files.rename(path, destination)) }
      }
      case MetaOp.RIGHTS: {
        if (this.inDataStore(path)) return { rights: formatRights(registry.rights(caller, path)) }
        const own = principalOf(caller) === principalOf(this.components.identity)
        return { rights: own ? formatRights(['read', 'write', 'delete', 'share']) : '' }
      }
      case MetaOp.DATASTORE_SHOW: {
        const ds = this.owned(path)
        // Anyone with a right in it may see who else has one; others learn only that it exists (from gossip).
        if (registry.rights(caller, ds.path).length === 0) registry.check(caller, ds.path, 'read')
        return { datastore: this.describe(ds) }
      }
      case MetaOp.DATASTORE_LIST:
        return { datastores: registry.list().map(ds => ({ ...this.describe(ds), grants: [] })) }
      case MetaOp.GRANT: {
        this.owned(path)
        const grant = registry.grant(caller, { path, subject: req.subject, rights: parseRights(req.rights), expiresAtMs: req.expiresAtMs > 0 ? req.expiresAtMs : undefined })
        this.components.onDataStoresChanged?.()
        return { grant: toWireGrant(grant) }
      }
      case MetaOp.REVOKE: {
        this.owned(path)
        const removed = registry.revoke(caller, { path, subject: req.subject, rights: req.rights !== '' ? parseRights(req.rights) : undefined })
        this.components.onDataStoresChanged?.()
        return { rights: formatRights(removed) }
      }
      default:
        throw new InvalidMetaRequestError(`operation ${MetaOp[req.op] ?? req.op} is not served here`)
    }
  }

  describe (ds: DataStore): NonNullable<MetaResponse['datastore']> {
    const usage = this.components.files.metadata.subtreeUsage(ds.path)
    return {
      path: ds.path,
      owner: ds.owner,
      strategy: ds.strategy,
      replicas: ds.replicas,
      createdAtMs: ds.createdAtMs,
      version: ds.version,
      grants: this.components.registry.grants(ds.path).map(toWireGrant),
      files: usage.files,
      bytes: usage.bytes,
      storedBytes: usage.storedBytes
    }
  }
}

/** Fills what protons needs for every field of a response */
export function complete (r: Response): MetaResponse {
  return {
    status: r.status ?? MetaStatus.OK,
    error: '',
    message: '',
    deniedPath: '',
    deniedRight: '',
    entries: [],
    more: false,
    removedFiles: 0,
    removedDirs: 0,
    version: 0,
    size: 0,
    chunkSize: 0,
    chunkCount: 0,
    placements: [],
    capabilities: [],
    writeId: '',
    replicas: 0,
    expiresAtMs: 0,
    datastores: [],
    rights: '',
    name: '',
    certificates: [],
    rootCertificate: new Uint8Array(0),
    grants: [],
    ...r
  }
}
