import { peerIdFromString } from '@libp2p/peer-id'
import { request } from '../net/rpc.js'
import { MetaOp, MetaRequest, MetaResponse, MetaStatus } from '../gen/meta.js'
import { META_PROTOCOL, META_PROTOCOL_LIMITS } from '../permissions/index.js'
import { ProtocolError } from '../net/errors.js'
import type { Entry } from '../metadata/store.js'
import type { Libp2p, AbortOptions } from '@libp2p/interface'

/**
 * A refusal or failure reported by a DataStore's owning coordinator. Its `name` is the owner's stable error name
 * (PermissionDeniedError, NotFoundError ...), so callers and the CLI treat it exactly like a local one.
 */
export class RemoteMetaError extends Error {
  readonly status: MetaStatus
  /** PermissionDeniedError: the path and the right that was missing */
  readonly path?: string
  readonly right?: string

  constructor (res: MetaResponse) {
    super(res.message !== '' ? res.message : `the owning coordinator answered ${MetaStatus[res.status]}`)
    this.name = res.error !== '' ? res.error : 'RemoteMetaError'
    this.status = res.status
    if (res.deniedPath !== '') this.path = res.deniedPath
    if (res.deniedRight !== '') this.right = res.deniedRight
  }
}

export function fromWireEntry (e: NonNullable<MetaResponse['entry']>): Entry {
  return { path: e.path, type: e.type === 'dir' ? 'dir' : 'file', mode: e.mode, size: e.size, mtimeMs: e.mtimeMs, ctimeMs: e.ctimeMs, owner: e.owner, version: e.version, id: e.id }
}

const EMPTY_REQUEST: MetaRequest = {
  op: MetaOp.OP_UNSPECIFIED,
  path: '',
  destination: '',
  parents: false,
  recursive: false,
  after: '',
  limit: 0,
  firstChunk: 0,
  size: 0,
  chunkSize: 0,
  writeId: '',
  chunks: [],
  exclude: [],
  chunkCount: 0,
  strategy: '',
  replicas: 0,
  subject: '',
  rights: '',
  expiresAtMs: 0,
  code: '',
  requestedName: '',
  readOffset: 0,
  readLength: 0
}

/** Sends metadata operations to the coordinator that owns a DataStore (spec: protocols/meta.md) */
export class MetaClient {
  private readonly host: Libp2p

  constructor (components: { host: Libp2p }) {
    this.host = components.host
  }

  async call (coordinator: string, req: Partial<MetaRequest> & { op: MetaOp }, options: AbortOptions = {}): Promise<MetaResponse> {
    const res = await request(this.host, peerIdFromString(coordinator), META_PROTOCOL, { ...EMPTY_REQUEST, ...req }, MetaRequest, MetaResponse,
      { maxMessageBytes: META_PROTOCOL_LIMITS.maxResponseBytes, timeoutMs: META_PROTOCOL_LIMITS.timeoutMs }, options)
    if (res.status === MetaStatus.STATUS_UNSPECIFIED) throw new ProtocolError('malformed meta response: no status')
    if (res.status !== MetaStatus.OK) throw new RemoteMetaError(res)
    return res
  }

  /** Every entry of a directory, page by page */
  async list (coordinator: string, path: string, options: AbortOptions = {}): Promise<Entry[]> {
    const out: Entry[] = []
    let after = ''
    for (let page = 0; page < 10_000; page++) {
      const res = await this.call(coordinator, { op: MetaOp.LS, path, after }, options)
      out.push(...res.entries.map(fromWireEntry))
      if (!res.more || res.entries.length === 0) break
      after = res.entries[res.entries.length - 1].path
    }
    return out
  }
}
