import { randomBytes } from 'node:crypto'
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { MetaOp } from '../gen/meta.js'
import { InvalidManifestError, IsADirectoryError, NotADirectoryError, NotFoundError } from '../metadata/errors.js'
import { normalizePath, parentOf } from '../metadata/paths.js'
import { DEFAULT_CAPABILITY_TTL_MS, issueCapabilities } from '../permissions/capability.js'
import { InvalidMetaRequestError, META_PROTOCOL_LIMITS, TooManyWritesError, UnknownWriteError, WriteTooLargeError } from '../permissions/meta-protocol.js'
import { principalOf } from '../permissions/subjects.js'
import { pickTargets } from '../placement/capacity.js'
import { CHUNK_SIZES, assertChunkCid } from '../storage/chunking.js'
import { ReplicationError } from '../transfer/errors.js'
import { Semaphore } from '../util/semaphore.js'
import { toWireEntry } from './wire.js'
import { livenessRank, replicaOrder } from '../transfer/replicas.js'
import type { ReplicaStanding } from '../transfer/replicas.js'
import type { MetaRequest, MetaResponse } from '../gen/meta.js'
import type { FileService } from '../files/service.js'
import type { VerifiedIdentity } from '../identity/index.js'
import type { NodeRecord } from '../node-registry/registry.js'
import type { PlaceChunk } from '../transfer/writer.js'
import type { NodeDirectory } from '../transfer/types.js'
import type { ComponentLogger, Logger, PrivateKey } from '@libp2p/interface'

type Response = Partial<MetaResponse>
type Bytes = Uint8Array<ArrayBuffer>

export interface ContentServerComponents {
  files: FileService
  /** Storage nodes for placement and their addresses (the federation's, as the coordinator's own writes use) */
  nodes: NodeDirectory
  /** The coordinator's key: it signs the capabilities it hands out */
  privateKey: PrivateKey
  /**
   * When the caller's right at a path lapses by the expiry of a grant (undefined: not soon): capabilities never
   * outlive it. Default: never.
   */
  lapse?: (caller: VerifiedIdentity, path: string, right: 'read' | 'write', horizonMs: number) => number | undefined
  /** Whether `peerId` holds `cid` for this coordinator: COMMIT_WRITE checks every copy a writer claims */
  has: (peerId: string, cid: CID, signal: AbortSignal) => Promise<boolean>
  logger: ComponentLogger
}

export interface ContentServerInit {
  /** An open write idle this long is dropped (default META_PROTOCOL_LIMITS.writeIdleMs, 10 minutes) */
  writeIdleMs?: number
  /** Lifetime of the capabilities handed out (default that of capability.ts, 5 minutes) */
  capabilityTtlMs?: number
  /** HAS checks in flight at once while committing (default 16) */
  commitChecks?: number
  /** Most chunks one write may have (default META_PROTOCOL_LIMITS.writeChunks, 2^20) */
  writeChunks?: number
}

interface AllocatedChunk {
  cid: string
  size: number
  /** Copies this coordinator already had (deduplication): the writer sends nothing there */
  held: string[]
  /** Nodes the writer was told to put the chunk on */
  targets: string[]
}

interface OpenWrite {
  id: string
  caller: string
  path: string
  chunkSize: number
  mode?: number
  replication: number
  place?: PlaceChunk
  chunks: Map<number, AllocatedChunk>
  unpin: Map<string, () => void>
  expiresAtMs: number
}

function bytesOfPeer (peerId: string): Bytes {
  return peerIdFromString(peerId).toMultihash().bytes as Bytes
}

/**
 * File contents for callers of another daemon (`/collective/meta/1.0.0`: OPEN_READ, BEGIN_WRITE, ALLOCATE,
 * COMMIT_WRITE, ABORT_WRITE). The owning coordinator never touches the bytes: it tells the caller where chunks are
 * or should go and hands it short-lived capabilities for exactly those chunks, and the caller moves the chunks
 * to and from the storage nodes itself. A write becomes visible only at COMMIT_WRITE, after the coordinator has
 * checked that every copy the writer was asked for is on its node.
 *
 * The caller's rights are checked by the meta server before each call reaches this class; writes are bound to
 * the caller's peer ID, so nobody else can extend or commit them.
 */
export class ContentServer {
  private readonly components: ContentServerComponents
  private readonly writeIdleMs: number
  private readonly capabilityTtlMs: number
  private readonly commitChecks: number
  private readonly writeChunks: number
  private readonly writes = new Map<string, OpenWrite>()
  private readonly log: Logger
  private sweeper?: ReturnType<typeof setInterval>

  constructor (components: ContentServerComponents, init: ContentServerInit = {}) {
    this.components = components
    this.writeIdleMs = init.writeIdleMs ?? META_PROTOCOL_LIMITS.writeIdleMs
    this.capabilityTtlMs = init.capabilityTtlMs ?? DEFAULT_CAPABILITY_TTL_MS
    this.commitChecks = init.commitChecks ?? 16
    this.writeChunks = init.writeChunks ?? META_PROTOCOL_LIMITS.writeChunks
    this.log = components.logger.forComponent('collective:access:content')
  }

  async start (): Promise<void> {
    this.sweeper = setInterval(() => { this.dropExpired() }, Math.min(60_000, this.writeIdleMs))
    this.sweeper.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.sweeper)
    for (const write of [...this.writes.values()]) this.drop(write)
  }

  async serve (caller: VerifiedIdentity, req: MetaRequest, signal: AbortSignal): Promise<Response> {
    this.dropExpired()
    switch (req.op) {
      case MetaOp.OPEN_READ: return await this.openRead(caller, req)
      case MetaOp.BEGIN_WRITE: return this.beginWrite(caller, req)
      case MetaOp.ALLOCATE: return await this.allocate(caller, req)
      case MetaOp.COMMIT_WRITE: return await this.commitWrite(caller, req, signal)
      case MetaOp.ABORT_WRITE: {
        this.drop(this.writeOf(caller, req.writeId))
        return {}
      }
      default: throw new InvalidMetaRequestError(`${MetaOp[req.op] ?? req.op} is not a file content operation`)
    }
  }

  /** The path an open write is for: the meta server checks the caller's write right there on every call */
  pathOf (caller: VerifiedIdentity, writeId: string): string {
    return this.writeOf(caller, writeId).path
  }

  private async openRead (caller: VerifiedIdentity, req: MetaRequest): Promise<Response> {
    const { files } = this.components
    const { entry, manifest } = files.open(req.path)
    const limit = req.limit > 0 ? Math.min(req.limit, META_PROTOCOL_LIMITS.readPageChunks) : META_PROTOCOL_LIMITS.readPageChunks
    const first = req.firstChunk
    const page = manifest.chunks.slice(first, first + limit)
    const nodes = new Map(this.components.nodes().map(n => [n.peerId, n]))
    // The reader tries the holders in this order: live ones first, shuffled among equals so that reads spread over
    // the copies (its own load is not ours to know).
    const standing = (p: string): ReplicaStanding => ({ rank: livenessRank(nodes.get(p)?.state), load: 0 })
    const placements = page.map((chunk, i) => {
      const holders = replicaOrder(files.metadata.chunkLocations(chunk.cid), standing)
      return {
        index: first + i,
        cid: CID.parse(chunk.cid).bytes as Bytes,
        size: chunk.size,
        nodes: holders.map(bytesOfPeer),
        addrs: holders.map(p => addressOf(nodes.get(p)))
      }
    })
    files.noteReads(spannedBy(req, manifest.chunkSize, first, page).map(c => c.cid))
    const tokens = page.length === 0
      ? []
      : await issueCapabilities({ privateKey: this.components.privateKey, holder: caller.peerId, op: 'get', cids: page.map(c => c.cid), ttlMs: this.ttlFor(caller, entry.path, 'read') })
    return {
      entry: toWireEntry(entry),
      version: entry.version,
      size: manifest.size,
      chunkSize: manifest.chunkSize,
      chunkCount: manifest.chunks.length,
      placements,
      capabilities: tokens.map((t, k) => ({ token: t.token as Bytes, indexes: t.cids.map((_, j) => first + k * 64 + j) }))
    }
  }

  private beginWrite (caller: VerifiedIdentity, req: MetaRequest): Response {
    const { files } = this.components
    const path = normalizePath(req.path)
    if (!CHUNK_SIZES.includes(req.chunkSize)) {
      throw new InvalidMetaRequestError(`chunk_size must be one of ${CHUNK_SIZES.join(', ')}, got ${req.chunkSize}`)
    }
    // Fail before any bytes move when the commit is bound to fail.
    const parent = files.metadata.tryStat(parentOf(path))
    if (parent == null) throw new NotFoundError(`${parentOf(path)}: no such directory`)
    if (parent.type !== 'dir') throw new NotADirectoryError(`${parent.path} is not a directory`)
    if (files.metadata.tryStat(path)?.type === 'dir') throw new IsADirectoryError(`${path} is a directory`)
    const mine = [...this.writes.values()].filter(w => w.caller === caller.peerId).length
    if (mine >= META_PROTOCOL_LIMITS.maxOpenWrites) {
      throw new TooManyWritesError(`${caller.name} already has ${mine} open writes here; finish or abort one first`)
    }
    const policy = files.policyFor(path)
    const write: OpenWrite = {
      id: randomBytes(16).toString('hex'),
      caller: caller.peerId,
      path,
      chunkSize: req.chunkSize,
      mode: req.mode,
      replication: policy.replication,
      place: policy.place,
      chunks: new Map(),
      unpin: new Map(),
      expiresAtMs: Date.now() + this.writeIdleMs
    }
    this.writes.set(write.id, write)
    this.log('write %s of %s opened for %s', write.id, path, caller.name)
    return { writeId: write.id, replicas: write.replication, expiresAtMs: write.expiresAtMs }
  }

  private async allocate (caller: VerifiedIdentity, req: MetaRequest): Promise<Response> {
    const write = this.writeOf(caller, req.writeId)
    if (req.chunks.length === 0 || req.chunks.length > META_PROTOCOL_LIMITS.allocateChunks) {
      throw new InvalidMetaRequestError(`ALLOCATE takes 1 to ${META_PROTOCOL_LIMITS.allocateChunks} chunks, got ${req.chunks.length}`)
    }
    // Every allocation pins its chunks against garbage collection until the write ends, and each call keeps the
    // write open: unbounded, one write could grow and hold chunks without end.
    const last = req.firstChunk + req.chunks.length - 1
    if (last >= this.writeChunks) {
      throw new WriteTooLargeError(`chunk ${last} of ${write.path} is beyond the ${this.writeChunks} chunks a write may have`)
    }
    const exclude = new Set(req.exclude.map(decodePeer))
    const placements: NonNullable<Response['placements']> = []
    const cids: string[] = []
    for (const [i, ref] of req.chunks.entries()) {
      const index = req.firstChunk + i
      const cid = decodeCid(ref.cid)
      if (!Number.isSafeInteger(ref.size) || ref.size <= 0 || ref.size > write.chunkSize) {
        throw new InvalidManifestError(`chunk ${index} is ${ref.size} bytes; chunks of this write are 1 to ${write.chunkSize} bytes`)
      }
      const key = cid.toString()
      if (!write.unpin.has(key)) {
        // Indexes alone do not bound the pins: each index may be announced again with another chunk.
        if (write.unpin.size >= this.writeChunks) throw new WriteTooLargeError(`${write.path}: a write may pin at most ${this.writeChunks} distinct chunks`)
        write.unpin.set(key, this.components.files.pin(key))
      }
      const chunk = this.place(write, index, key, ref.size, exclude)
      write.chunks.set(index, chunk)
      cids.push(key)
      const nodes = new Map(this.components.nodes().map(n => [n.peerId, n]))
      placements.push({ index, cid: cid.bytes as Bytes, size: ref.size, nodes: chunk.targets.map(bytesOfPeer), addrs: chunk.targets.map(p => addressOf(nodes.get(p))) })
    }
    write.expiresAtMs = Date.now() + this.writeIdleMs
    const [token] = await issueCapabilities({ privateKey: this.components.privateKey, holder: caller.peerId, op: 'put', cids, ttlMs: this.ttlFor(caller, write.path, 'write') })
    return { placements, capabilities: [{ token: token.token as Bytes, indexes: placements.map(p => p.index) }], writeId: write.id, replicas: write.replication }
  }

  /**
   * Where one chunk's missing copies go: what this coordinator already keeps counts, and so do the targets an
   * earlier allocation of the same chunk gave (the writer re-announces a chunk when some puts failed, excluding
   * the nodes that failed; the others keep their copy). `exclude` is avoided.
   */
  private place (write: OpenWrite, index: number, cid: string, size: number, exclude: ReadonlySet<string>): AllocatedChunk {
    const { metadata } = this.components.files
    const all = this.components.nodes()
    const alive = new Set(all.filter(n => n.state !== 'dead').map(n => n.peerId))
    // Only a chunk some file references is safe to deduplicate against: an unreferenced one may be collected.
    const referenced = (metadata.getChunk(cid)?.refcount ?? 0) > 0
    const held = referenced ? metadata.chunkLocations(cid).filter(p => alive.has(p) && !exclude.has(p)) : []
    const previous = write.chunks.get(index)
    const kept = previous?.cid === cid ? previous.targets.filter(p => !exclude.has(p) && !held.includes(p)) : []
    const missing = Math.max(0, write.replication - held.length - kept.length)
    // One copy the writer must send itself even when deduplication would spare it, to a node where this
    // coordinator keeps none: COMMIT_WRITE's check of that copy proves the writer has the chunk's bytes. Without
    // it, knowing the CID of a chunk in a DataStore one cannot read, and write access to another, would be enough
    // to read the chunk. (When every live node already keeps a copy there is nowhere to prove it, and none is asked.)
    const proof = missing === 0 && kept.length === 0 && held.length > 0 ? 1 : 0
    const tried = new Set([...held, ...kept, ...exclude])
    const domains = new Map(all.map(n => [n.peerId, n.domain ?? '']))
    const holders = held.map(p => domains.get(p) ?? '')
    const wanted = missing + proof
    const targets = wanted === 0 ? [] : (write.place?.(all, wanted, tried, holders) ?? pickTargets(all, wanted, tried, Math.random, holders))
    if (targets.length < missing) {
      throw new ReplicationError(`chunk ${index} of ${write.path} can reach ${held.length + kept.length + targets.length} of ${write.replication} replicas: not enough storage nodes (${alive.size} live, ${exclude.size} excluded)`)
    }
    return { cid, size, held, targets: [...kept, ...targets.map((t: NodeRecord) => t.peerId)] }
  }

  private async commitWrite (caller: VerifiedIdentity, req: MetaRequest, signal: AbortSignal): Promise<Response> {
    const write = this.writeOf(caller, req.writeId)
    const chunks: AllocatedChunk[] = []
    for (let i = 0; i < req.chunkCount; i++) {
      const chunk = write.chunks.get(i)
      if (chunk == null) throw new InvalidManifestError(`chunk ${i} of ${write.path} was never allocated`)
      if (i < req.chunkCount - 1 && chunk.size !== write.chunkSize) {
        throw new InvalidManifestError(`chunk ${i} of ${write.path} is ${chunk.size} bytes; every chunk but the last is ${write.chunkSize}`)
      }
      chunks.push(chunk)
    }
    if (write.chunks.size !== req.chunkCount) {
      throw new InvalidManifestError(`${write.chunks.size} chunks were allocated but the commit names ${req.chunkCount}`)
    }
    const total = chunks.reduce((s, c) => s + c.size, 0)
    if (total !== req.size) throw new InvalidManifestError(`the chunks add up to ${total} bytes, not ${req.size}`)

    // A file is visible only with every copy in place: the writer's word is checked, not taken.
    const missing: string[] = []
    const checks = new Semaphore(this.commitChecks)
    await Promise.all(chunks.flatMap((chunk, i) => chunk.targets.map(async peer => {
      await checks.acquire(signal)
      try {
        if (!await this.components.has(peer, CID.parse(chunk.cid), signal)) missing.push(`chunk ${i} on ${peer.slice(-8)}`)
      } catch (err: any) {
        missing.push(`chunk ${i} on ${peer.slice(-8)} (${String(err.name)})`)
      } finally {
        checks.release()
      }
    })))
    if (missing.length > 0) {
      throw new ReplicationError(`${write.path} is not committed: ${missing.length} copies are not on their nodes (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ' …' : ''}); allocate those chunks again`)
    }

    const locations = new Map<string, Set<string>>()
    for (const c of chunks) {
      const at = locations.get(c.cid) ?? new Set()
      for (const p of [...c.held, ...c.targets]) at.add(p)
      locations.set(c.cid, at)
    }
    const entry = await this.components.files.commit(write.path, {
      manifest: { chunkSize: write.chunkSize, chunks: chunks.map(c => ({ cid: c.cid, size: c.size })) },
      size: total,
      owner: principalOf(caller),
      mode: write.mode,
      replication: write.replication,
      locations: [...locations].map(([cid, peers]) => ({ cid, peerIds: [...peers] }))
    })
    this.release(write)
    this.log('write %s of %s committed by %s: %d bytes in %d chunks', write.id, write.path, caller.name, total, chunks.length)
    return { entry: toWireEntry(entry) }
  }

  /** A capability's lifetime: the default, cut short where the caller's right lapses sooner */
  private ttlFor (caller: VerifiedIdentity, path: string, right: 'read' | 'write'): number {
    const lapse = this.components.lapse?.(caller, path, right, this.capabilityTtlMs)
    return lapse == null ? this.capabilityTtlMs : Math.max(1, lapse - Date.now())
  }

  private writeOf (caller: VerifiedIdentity, writeId: string): OpenWrite {
    const write = this.writes.get(writeId)
    // Someone else's write is as unknown to the caller as one that never was.
    if (write == null || write.caller !== caller.peerId) throw new UnknownWriteError(`no open write ${JSON.stringify(writeId)} of yours here (never begun, committed, aborted or idle for over ${Math.round(this.writeIdleMs / 1000)} s)`)
    return write
  }

  private dropExpired (): void {
    const now = Date.now()
    for (const write of [...this.writes.values()]) if (write.expiresAtMs <= now) this.drop(write)
  }

  /**
   * Ends a write that will not be committed. Copies of chunks no file references are recorded where they were
   * sent, so garbage collection deletes them after its grace period (a node that never got one just says so).
   */
  private drop (write: OpenWrite): void {
    const { metadata } = this.components.files
    for (const chunk of write.chunks.values()) {
      if ((metadata.getChunk(chunk.cid)?.refcount ?? 0) > 0) continue
      for (const peer of chunk.targets) metadata.addChunkLocation(chunk.cid, peer, { size: chunk.size })
    }
    this.release(write)
    this.log('write %s of %s dropped', write.id, write.path)
  }

  private release (write: OpenWrite): void {
    for (const unpin of write.unpin.values()) unpin()
    this.writes.delete(write.id)
  }
}

function decodePeer (bytes: Uint8Array): string {
  try {
    return peerIdFromMultihash(Digest.decode(bytes)).toString()
  } catch (err: any) {
    throw new InvalidMetaRequestError(`an excluded node is not a peer ID: ${err.message}`)
  }
}

function decodeCid (bytes: Uint8Array): CID {
  let cid: CID
  try {
    cid = CID.decode(bytes)
  } catch (err: any) {
    throw new InvalidMetaRequestError(`a chunk's CID does not parse: ${err.message}`)
  }
  assertChunkCid(cid)
  return cid
}

/** A node's first listen address, binary, for callers that do not know the node yet (empty when none is known) */
function addressOf (node?: NodeRecord): Bytes {
  const first = node?.addrs[0]
  if (first == null) return new Uint8Array(0)
  try {
    return multiaddr(first).bytes as Bytes
  } catch {
    return new Uint8Array(0)
  }
}

/**
 * The chunks of a page (chunk `first` onwards) that the reader means to fetch: all of them for a whole-file read,
 * those its byte range spans for a ranged one. Files are cut evenly, so chunk i holds bytes i × chunkSize onwards.
 */
export function spannedBy<T> (req: Pick<MetaRequest, 'readOffset' | 'readLength'>, chunkSize: number, first: number, page: T[]): T[] {
  if (req.readLength <= 0 || chunkSize <= 0) return page
  const from = Math.floor(req.readOffset / chunkSize)
  const to = Math.floor((req.readOffset + req.readLength - 1) / chunkSize)
  return page.filter((_, i) => first + i >= from && first + i <= to)
}
