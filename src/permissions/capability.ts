// Capabilities: what lets a storage node serve or accept a chunk. The DataStore's owning coordinator checks the
// caller's rights once (open-for-read, begin-write) and hands out a token naming the holder, the operation, the
// chunks and an expiry, signed with its libp2p Ed25519 key. A node needs no metadata and no grants to decide: it
// checks the token against the peer ID the handshake authenticated and the chunk asked for. Knowing a CID is
// worth nothing without one.
import { peerIdFromMultihash, peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { Capability, CapabilityClaims, CapabilityOp } from '../gen/capability.js'
import { equalBytes } from '../storage/chunking.js'
import {
  CapabilityAudienceError, CapabilityCidError, CapabilityExpiredError, CapabilityHolderError, CapabilityOperationError,
  CapabilitySignatureError, CapabilityTooLargeError, MalformedCapabilityError, UntrustedCapabilityIssuerError
} from './errors.js'
import type { ChunkOperation } from '../chunks/protocol.js'
import type { PeerId, PrivateKey } from '@libp2p/interface'

/**
 * Largest token accepted or issued. It travels inside a chunk request frame, whose room beside the chunk is
 * 4 KiB (chunk.md, "Limits"), so it must leave space for the frame's other fields.
 */
export const MAX_CAPABILITY_BYTES = 3 * 1024
/** CIDs per token: 64 binary CIDs (36 bytes each) plus the other fields stay under MAX_CAPABILITY_BYTES */
export const MAX_CAPABILITY_CIDS = 64
/** Default lifetime: long enough for one file's transfer to start, short enough that a revoked grant stops soon */
export const DEFAULT_CAPABILITY_TTL_MS = 5 * 60_000
/** Tokens issued up to this far in the verifier's future are still accepted: coordinators' clocks drift */
export const MAX_CLOCK_SKEW_MS = 60_000

const FORMAT_VERSION = 1
// Signing a context string with the claims keeps a capability signature from ever passing as another message's
const SIGNING_CONTEXT = new TextEncoder().encode('collective-p2p/capability/1\n')

const TO_WIRE: Record<ChunkOperation, CapabilityOp> = {
  put: CapabilityOp.PUT, get: CapabilityOp.GET, has: CapabilityOp.HAS, delete: CapabilityOp.DELETE
}
const FROM_WIRE: Partial<Record<CapabilityOp, ChunkOperation>> = {
  [CapabilityOp.PUT]: 'put', [CapabilityOp.GET]: 'get', [CapabilityOp.HAS]: 'has', [CapabilityOp.DELETE]: 'delete'
}

export interface IssueCapabilityOptions {
  /** The issuing coordinator's libp2p private key (Ed25519) */
  privateKey: PrivateKey
  /** The peer that will present the token: the caller the coordinator just checked */
  holder: PeerId | string
  /** The only storage node that may honour it. Default: any node */
  audience?: PeerId | string
  op: ChunkOperation
  /** At most MAX_CAPABILITY_CIDS; issueCapabilities splits longer lists */
  cids: Array<CID | string>
  /** Default: Date.now() */
  now?: number
  /** Default: DEFAULT_CAPABILITY_TTL_MS */
  ttlMs?: number
}

export interface VerifyCapabilityOptions {
  /** The chunk the request is about */
  cid: CID | string
  /** The operation the request asks for */
  op: ChunkOperation
  /** The verifying storage node's own peer ID */
  node: PeerId | string
  /** The peer presenting the token, as authenticated by the connection */
  holder: PeerId | string
  /** Coordinators whose capabilities count (peer IDs as strings) */
  trustedIssuers: ReadonlySet<string> | ((issuer: string) => boolean)
  /** Default: Date.now() */
  now?: number
}

export interface VerifiedCapability {
  issuer: string
  holder: string
  /** Undefined: any node */
  audience?: string
  op: ChunkOperation
  /** How many chunks the token covers (they are not decoded: a node checks one per request) */
  chunkCount: number
  issuedAtMs: number
  expiresAtMs: number
}

// protons types its bytes fields as ArrayBuffer-backed; ours always are, so the casts below only restate that
type Bytes = Uint8Array<ArrayBuffer>

function peerIdBytes (id: PeerId | string): Bytes {
  return (typeof id === 'string' ? peerIdFromString(id) : id).toMultihash().bytes as Bytes
}

function toCid (cid: CID | string, ErrorClass: new (message: string) => Error): CID {
  if (typeof cid !== 'string') return cid
  try {
    return CID.parse(cid)
  } catch {
    throw new ErrorClass(`${JSON.stringify(cid)} is not a CID`)
  }
}

function decodePeerId (bytes: Uint8Array, what: string): PeerId {
  try {
    return peerIdFromMultihash(Digest.decode(bytes))
  } catch (err) {
    throw new MalformedCapabilityError(`capability ${what} is not a peer ID: ${(err as Error).message}`)
  }
}

function signedBytes (claims: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGNING_CONTEXT.length + claims.length)
  out.set(SIGNING_CONTEXT, 0)
  out.set(claims, SIGNING_CONTEXT.length)
  return out
}

/**
 * Signs one capability. Cost: one Ed25519 signature, whatever the number of CIDs.
 *
 * @throws CapabilityTooLargeError (too many CIDs), MalformedCapabilityError (a CID that does not parse, a bad ttl)
 */
export async function issueCapability (options: IssueCapabilityOptions): Promise<Uint8Array> {
  const { privateKey, op } = options
  if (TO_WIRE[op] == null) throw new MalformedCapabilityError(`unknown operation ${JSON.stringify(op)}`)
  if (options.cids.length === 0) throw new MalformedCapabilityError('a capability covers at least one chunk')
  if (options.cids.length > MAX_CAPABILITY_CIDS) {
    throw new CapabilityTooLargeError(`${options.cids.length} CIDs in one capability; at most ${MAX_CAPABILITY_CIDS} (use issueCapabilities)`)
  }
  const ttlMs = options.ttlMs ?? DEFAULT_CAPABILITY_TTL_MS
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new MalformedCapabilityError(`ttl must be a positive number of ms, got ${ttlMs}`)
  const now = options.now ?? Date.now()
  const claims = CapabilityClaims.encode({
    version: FORMAT_VERSION,
    issuer: privateKey.publicKey.toMultihash().bytes as Bytes,
    holder: peerIdBytes(options.holder),
    audience: options.audience == null ? new Uint8Array(0) : peerIdBytes(options.audience),
    op: TO_WIRE[op],
    cids: options.cids.map(cid => toCid(cid, MalformedCapabilityError).bytes as Bytes),
    issuedAtMs: now,
    expiresAtMs: now + ttlMs
  })
  const token = Capability.encode({ claims, signature: await privateKey.sign(signedBytes(claims)) as Bytes })
  if (token.byteLength > MAX_CAPABILITY_BYTES) {
    throw new CapabilityTooLargeError(`capability is ${token.byteLength} bytes; at most ${MAX_CAPABILITY_BYTES}`)
  }
  return token
}

export interface IssuedCapability {
  /** The CIDs (strings, as given) this token covers */
  cids: string[]
  token: Uint8Array
}

/** Issues as many capabilities as a long CID list needs (one per MAX_CAPABILITY_CIDS chunks of a file) */
export async function issueCapabilities (options: IssueCapabilityOptions): Promise<IssuedCapability[]> {
  const out: IssuedCapability[] = []
  for (let i = 0; i < options.cids.length; i += MAX_CAPABILITY_CIDS) {
    const cids = options.cids.slice(i, i + MAX_CAPABILITY_CIDS)
    out.push({ cids: cids.map(String), token: await issueCapability({ ...options, cids }) })
  }
  return out
}

/**
 * What a storage node runs before serving or accepting a chunk. Every check is made against what the node knows
 * itself (its own peer ID, the connection's authenticated remote peer, the chunk asked for), never against what
 * the token says alone.
 *
 * @throws CapabilityTooLargeError, MalformedCapabilityError, UntrustedCapabilityIssuerError,
 *   CapabilitySignatureError, CapabilityExpiredError, CapabilityOperationError, CapabilityAudienceError,
 *   CapabilityHolderError, CapabilityCidError
 */
export async function verifyCapability (token: Uint8Array, options: VerifyCapabilityOptions): Promise<VerifiedCapability> {
  if (!(token instanceof Uint8Array) || token.byteLength === 0) throw new MalformedCapabilityError('no capability given')
  if (token.byteLength > MAX_CAPABILITY_BYTES) {
    throw new CapabilityTooLargeError(`capability is ${token.byteLength} bytes; at most ${MAX_CAPABILITY_BYTES}`)
  }
  let envelope: Capability
  let claims: CapabilityClaims
  try {
    envelope = Capability.decode(token)
    claims = CapabilityClaims.decode(envelope.claims, { limits: { cids: MAX_CAPABILITY_CIDS } })
  } catch (err) {
    throw new MalformedCapabilityError(`capability does not decode: ${(err as Error).message}`)
  }
  if (claims.version !== FORMAT_VERSION) throw new MalformedCapabilityError(`unsupported capability version ${claims.version}`)
  const op = FROM_WIRE[claims.op]
  if (op == null) throw new MalformedCapabilityError('capability names no operation')
  if (envelope.signature.byteLength === 0) throw new MalformedCapabilityError('capability is not signed')

  const issuer = decodePeerId(claims.issuer, 'issuer')
  const issuerId = issuer.toString()
  const trusted = typeof options.trustedIssuers === 'function' ? options.trustedIssuers(issuerId) : options.trustedIssuers.has(issuerId)
  if (!trusted) throw new UntrustedCapabilityIssuerError(`capability issued by ${issuerId}, which is not a trusted coordinator`)
  if (issuer.type !== 'Ed25519' || issuer.publicKey == null) throw new MalformedCapabilityError(`issuer ${issuerId} has no inline Ed25519 key`)
  let valid: boolean
  try {
    valid = await issuer.publicKey.verify(signedBytes(envelope.claims), envelope.signature)
  } catch {
    valid = false
  }
  if (!valid) throw new CapabilitySignatureError(`capability signature does not verify with the key of ${issuerId}`)

  const now = options.now ?? Date.now()
  if (now >= claims.expiresAtMs) throw new CapabilityExpiredError(`capability expired at ${new Date(claims.expiresAtMs).toISOString()}`)
  if (claims.issuedAtMs > now + MAX_CLOCK_SKEW_MS) {
    throw new CapabilityExpiredError(`capability is issued at ${new Date(claims.issuedAtMs).toISOString()}, in the future`)
  }
  if (op !== options.op) throw new CapabilityOperationError(`capability allows ${op}, not ${options.op}`)
  // Compared as bytes: printing a peer ID (base58) costs more than the rest of the check, so only errors do it
  if (claims.audience.byteLength > 0 && !equalBytes(claims.audience, peerIdBytes(options.node))) {
    throw new CapabilityAudienceError(`capability is for node ${decodePeerId(claims.audience, 'audience').toString()}, not ${options.node.toString()}`)
  }
  if (!equalBytes(claims.holder, peerIdBytes(options.holder))) {
    throw new CapabilityHolderError(`capability was issued to ${decodePeerId(claims.holder, 'holder').toString()}, not ${options.holder.toString()}`)
  }
  const wanted = toCid(options.cid, CapabilityCidError)
  if (!claims.cids.some(cid => equalBytes(cid, wanted.bytes))) {
    throw new CapabilityCidError(`capability does not cover chunk ${wanted.toString()}`)
  }

  return {
    issuer: issuerId,
    holder: options.holder.toString(),
    audience: claims.audience.byteLength === 0 ? undefined : options.node.toString(),
    op,
    chunkCount: claims.cids.length,
    issuedAtMs: claims.issuedAtMs,
    expiresAtMs: claims.expiresAtMs
  }
}

/**
 * A coordinator's capabilities for its own chunk requests (placement, reads, repair, garbage collection): each
 * request gets a token for its one chunk, held by the coordinator itself. One Ed25519 signature per request costs
 * tens of microseconds beside a chunk of 64 KiB or more, so nothing is cached.
 */
export function selfIssued (privateKey: PrivateKey, ttlMs = DEFAULT_CAPABILITY_TTL_MS): (op: ChunkOperation, cid: CID) => Promise<Uint8Array> {
  const holder = peerIdFromPrivateKey(privateKey)
  return async (op, cid) => await issueCapability({ privateKey, holder, op, cids: [cid], ttlMs })
}
