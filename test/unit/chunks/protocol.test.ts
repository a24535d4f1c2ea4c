import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { lpStream } from '@libp2p/utils'
import { CID } from 'multiformats/cid'
import * as json from 'multiformats/codecs/json'
import * as raw from 'multiformats/codecs/raw'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { ChunkClient } from '../../../src/chunks/client.js'
import { CHUNK_FRAME_BUFFER_BYTES, CHUNK_PROTOCOL, CHUNK_PROTOCOL_LIMITS, frameHead } from '../../../src/chunks/protocol.js'
import { ChunkServer } from '../../../src/chunks/server.js'
import { ChunkOp, ChunkRequest, ChunkResponse, ChunkStatus } from '../../../src/gen/chunk.js'
import { PeerIdentities } from '../../../src/net/peer-identities.js'
import { issueCapability, selfIssued } from '../../../src/permissions/capability.js'
import { ChunkOwners } from '../../../src/storage/chunk-owners.js'
import { ChunkStore } from '../../../src/storage/chunk-store.js'
import { MAX_CHUNK_SIZE, MiB } from '../../../src/storage/chunking.js'
import { Cleanup, TestFederation, waitFor } from '../../helpers/daemons.js'
import { chunkOf, logger, pseudoRandomBytes, startPeer } from './fixtures.js'
import type { ChunkServerInit } from '../../../src/chunks/server.js'
import type { ChunkOperation, ChunkResult } from '../../../src/chunks/protocol.js'
import type { TestPeer } from './fixtures.js'
import type { Stream } from '@libp2p/interface'

const cleanup = new Cleanup()
const stoppers: Array<() => Promise<void>> = []
const everyone: TestPeer[] = []
let fed: TestFederation

/** Lets every host dial every other by peer ID alone, as a daemon can once it has heard of a node */
async function introduce (peer: TestPeer): Promise<void> {
  everyone.push(peer)
  for (const a of everyone) {
    for (const b of everyone) {
      if (a !== b) await a.host.peerStore.merge(b.host.peerId, { multiaddrs: b.host.getMultiaddrs() })
    }
  }
}

interface TestNode extends TestPeer {
  store: ChunkStore
  server: ChunkServer
  storePath: string
  operations: Array<{ op: ChunkOperation, result: ChunkResult, bytes: number, seconds: number }>
}

async function startNode (name: string, opts: { capacityBytes?: number, init?: ChunkServerInit, identities?: PeerIdentities } = {}): Promise<TestNode> {
  const peer = await startPeer(fed, 'alice', name, 'node')
  await introduce(peer)
  const storePath = join(peer.dir, 'chunks')
  const store = new ChunkStore({ path: storePath, reserveBytes: 0, capacityBytes: opts.capacityBytes })
  await store.start()
  const operations: TestNode['operations'] = []
  const owners = new ChunkOwners({ path: ':memory:' })
  await owners.start()
  const server = new ChunkServer({ host: peer.host, identities: opts.identities ?? peer.identities, store, owners, logger }, {
    ...opts.init,
    onOperation: (op, result, bytes, seconds) => { operations.push({ op, result, bytes, seconds }) }
  })
  await server.start()
  stoppers.push(async () => { await server.stop(); await owners.stop(); await store.stop(); await peer.host.stop() })
  return { ...peer, store, server, storePath, operations }
}

async function startCaller (name: string, role: 'client' | 'coordinator' | 'node' = 'client', init: ConstructorParameters<typeof ChunkClient>[1] = {}): Promise<TestPeer & { chunks: ChunkClient }> {
  const peer = await startPeer(fed, 'alice', name, role)
  await introduce(peer)
  stoppers.push(async () => { await peer.host.stop() })
  // Each caller signs its own capabilities, like a coordinator: it owns what it puts.
  return { ...peer, chunks: new ChunkClient({ host: peer.host, logger, capabilities: selfIssued(peer.privateKey) }, init) }
}

/** The node reports an operation once its stream is closed, which may be just after the caller has its answer */
async function reported (node: TestNode, count: number): Promise<Array<[ChunkOperation, ChunkResult, number]>> {
  await waitFor(`${count} operations reported`, async () => node.operations.length >= count, 5_000, 5)
  return node.operations.map(o => [o.op, o.result, o.bytes])
}

async function rejection (p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (err) {
    return err
  }
  assert.fail('expected a rejection')
}

async function filesUnder (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await filesUnder(p))
    else if (e.name.endsWith('.data')) out.push(p)
  }
  return out
}

/** Resolves when the stream ends one way or another; the remote closing or resetting it both count */
async function streamEnded (stream: Stream, timeoutMs: number): Promise<void> {
  if (stream.status !== 'open') return
  await Promise.race([
    new Promise(resolve => { stream.addEventListener('close', resolve, { once: true }) }),
    new Promise((resolve, reject) => setTimeout(() => { reject(new Error(`stream still ${stream.status} after ${timeoutMs} ms`)) }, timeoutMs))
  ])
}

/**
 * A stand-in node speaking the protocol by hand: every request on every stream goes to `onRequest` with a
 * function that answers it. Counts the streams it was offered.
 */
async function fakeNode (name: string, onRequest: (req: ChunkRequest, answer: (res: Partial<ChunkResponse>) => void) => void): Promise<TestPeer & { streams: () => number }> {
  const peer = await startPeer(fed, 'alice', name, 'node')
  await introduce(peer)
  stoppers.push(async () => { await peer.host.stop() })
  let streams = 0
  await peer.host.handle(CHUNK_PROTOCOL, async (stream) => {
    streams++
    const lp = lpStream(stream)
    for (;;) {
      let req: ChunkRequest
      try {
        req = ChunkRequest.decode(await lp.read())
      } catch {
        return
      }
      onRequest(req, res => { stream.send(frameHead(ChunkResponse.encode({ ...res, id: req.id }), 0)) })
    }
  }, { maxInboundStreams: 8 })
  return { ...peer, streams: () => streams }
}

/** Streams of the chunk protocol open between two hosts, as seen from `from` */
function chunkStreams (from: TestPeer, to: TestPeer): Stream[] {
  return from.host.getConnections(to.host.peerId).flatMap(c => c.streams).filter(s => s.protocol === CHUNK_PROTOCOL && s.status === 'open')
}

describe('/collective/chunk/1.1.0 between two in-process hosts', () => {
  let node: TestNode
  let client: TestPeer & { chunks: ChunkClient }

  before(async () => {
    fed = await TestFederation.create(cleanup)
    await fed.member('alice', 'home.collective.local')
    node = await startNode('node-01')
    client = await startCaller('laptop')
  })

  after(async () => {
    for (const stop of stoppers.reverse()) await stop().catch(() => {})
    await cleanup.run()
  })

  it('puts, gets, checks and deletes chunks of every size up to the largest', async () => {
    for (const [i, size] of [1, 1000, 64 * 1024, MiB + 7, MAX_CHUNK_SIZE].entries()) {
      const { cid, bytes } = await chunkOf(size, i + 1)
      await client.chunks.put(node.host.peerId, cid, bytes)
      assert.deepEqual(await client.chunks.has(node.host.peerId, cid), { present: true, size })
      const got = await client.chunks.get(node.host.peerId, cid)
      assert.equal(got.byteLength, size)
      assert.ok(Buffer.from(got.subarray()).equals(Buffer.from(bytes)), `chunk of ${size} bytes came back different`)
      await client.chunks.delete(node.host.peerId, cid)
      assert.deepEqual(await client.chunks.has(node.host.peerId, cid), { present: false, size: 0 })
      // deleting what is gone succeeds: the caller wanted it gone
      await client.chunks.delete(node.host.peerId, cid)
    }
    assert.equal((await node.store.stats()).chunkCount, 0)
  })

  it('moves and verifies chunks addressed by sha2-256, as collectives stored them before blake3', async () => {
    const bytes = pseudoRandomBytes(MiB + 3, 9)
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    await client.chunks.put(node.host.peerId, cid, bytes)
    const got = await client.chunks.get(node.host.peerId, cid)
    assert.ok(Buffer.from(got.subarray()).equals(Buffer.from(bytes)))
    assert.equal((await rejection(client.chunks.put(node.host.peerId, cid, bytes.subarray(1)))).reason, 'ChunkVerificationError')
    await client.chunks.delete(node.host.peerId, cid)
  })

  it('dials a node by multiaddr as well as by peer ID, and a repeated put is a no-op', async () => {
    const { cid, bytes } = await chunkOf(4096, 42)
    const addrs = node.host.getMultiaddrs()
    await client.chunks.put(addrs, cid, bytes)
    await client.chunks.put(addrs[0], cid, bytes)
    assert.ok(Buffer.from((await client.chunks.get(addrs[0], cid)).subarray()).equals(bytes))
    assert.equal((await node.store.stats()).chunkCount, 1)
    await client.chunks.delete(node.host.peerId, cid)
  })

  it('reports every served operation with its outcome, bytes and duration', async () => {
    node.operations.length = 0
    const { cid, bytes } = await chunkOf(10_000, 7)
    await client.chunks.put(node.host.peerId, cid, bytes)
    await client.chunks.get(node.host.peerId, cid)
    await client.chunks.has(node.host.peerId, cid)
    await client.chunks.delete(node.host.peerId, cid)
    await rejection(client.chunks.get(node.host.peerId, cid))
    assert.deepEqual(await reported(node, 5), [
      ['put', 'ok', 10_000], ['get', 'ok', 10_000], ['has', 'ok', 0], ['delete', 'ok', 0], ['get', 'not_found', 0]
    ])
    assert.ok(node.operations.every(o => o.seconds >= 0 && o.seconds < 10))
  })

  it('GET of a chunk the node does not hold throws ChunkNotFoundError', async () => {
    const { cid } = await chunkOf(100, 1234)
    const err = await rejection(client.chunks.get(node.host.peerId, cid))
    assert.equal(err.name, 'ChunkNotFoundError')
  })

  it('PUT of bytes that do not hash to the CID is rejected and nothing is stored', async () => {
    const { cid } = await chunkOf(5000, 1)
    const before = await node.store.stats()
    const err = await rejection(client.chunks.put(node.host.peerId, cid, pseudoRandomBytes(5000, 2)))
    assert.equal(err.name, 'ChunkRejectedError')
    assert.equal(err.reason, 'ChunkVerificationError')
    assert.deepEqual(await client.chunks.has(node.host.peerId, cid), { present: false, size: 0 })
    // Only what the store holds: free disk space moves with whatever else this machine is doing.
    const after = await node.store.stats()
    assert.deepEqual([after.chunkCount, after.usedBytes], [before.chunkCount, before.usedBytes])
  })

  it('refuses CIDs that are not CIDv1 raw blake3 or sha2-256, and chunks above the largest size', async () => {
    const bytes = pseudoRandomBytes(100, 3)
    const foreign = CID.createV1(json.code, await sha512.digest(bytes))
    const err = await rejection(client.chunks.put(node.host.peerId, foreign, bytes))
    assert.equal(err.name, 'ChunkRejectedError')
    assert.equal(err.reason, 'UnsupportedCidError')
    // a reader cannot verify such a chunk, so it does not even ask
    assert.equal((await rejection(client.chunks.get(node.host.peerId, foreign))).name, 'UnsupportedCidError')

    const big = await chunkOf(MAX_CHUNK_SIZE + 1, 4)
    const tooBig = await rejection(client.chunks.put(node.host.peerId, big.cid, big.bytes))
    assert.equal(tooBig.name, 'ChunkRejectedError')
    assert.equal(tooBig.reason, 'ChunkTooLargeError')
  })

  it('a full node answers NodeFullError with what it can still take', async () => {
    const small = await startNode('node-small', { capacityBytes: 10_000 })
    const fits = await chunkOf(6_000, 10)
    const overflows = await chunkOf(6_000, 11)
    await client.chunks.put(small.host.peerId, fits.cid, fits.bytes)
    const err = await rejection(client.chunks.put(small.host.peerId, overflows.cid, overflows.bytes))
    assert.equal(err.name, 'NodeFullError')
    assert.equal(err.reason, 'StoreFullError')
    assert.equal(err.availableBytes, 4_000)
    assert.deepEqual(await client.chunks.has(small.host.peerId, overflows.cid), { present: false, size: 0 })
    assert.deepEqual((await reported(small, 3)).map(o => o[1]), ['ok', 'full', 'not_found'])
  })

  it('a replica whose file was corrupted on disk makes the reader throw ChunkVerificationError', async () => {
    const { cid, bytes } = await chunkOf(200_000, 99)
    await client.chunks.put(node.host.peerId, cid, bytes)
    let file: string | undefined
    for (const f of await filesUnder(node.storePath)) {
      if (Buffer.from(await readFile(f)).equals(bytes)) file = f
    }
    assert.ok(file != null, 'the stored chunk file was not found')
    const rotten = Buffer.from(bytes)
    rotten[100_000] ^= 0xff
    await writeFile(file, rotten)

    const err = await rejection(client.chunks.get(node.host.peerId, cid))
    assert.equal(err.name, 'ChunkVerificationError')
    // a node that truncated the chunk is caught the same way
    await writeFile(file, rotten.subarray(0, 1000))
    assert.equal((await rejection(client.chunks.get(node.host.peerId, cid))).name, 'ChunkVerificationError')
    await client.chunks.delete(node.host.peerId, cid)
  })

  it('closes the stream on a frame larger than the limit and keeps serving the next request', async () => {
    const { cid, bytes } = await chunkOf(1000, 5)
    await client.chunks.put(node.host.peerId, cid, bytes)
    node.operations.length = 0

    const stream = await client.host.dialProtocol(node.host.peerId, CHUNK_PROTOCOL)
    let answered = 0
    stream.addEventListener('message', () => { answered++ })
    // a PUT announcing one byte more than a frame may hold, then the start of its data
    stream.send(frameHead(ChunkRequest.encode({ op: ChunkOp.PUT, cid: cid.bytes as Uint8Array<ArrayBuffer> }), CHUNK_PROTOCOL_LIMITS.maxMessageBytes))
    stream.send(new Uint8Array(256 * 1024))
    await streamEnded(stream, 5_000)
    assert.notEqual(stream.status, 'open')
    assert.equal(answered, 0, 'an oversized frame must get no response')
    assert.equal(node.operations.length, 0, 'an oversized frame must never reach the handler')

    assert.ok(Buffer.from((await client.chunks.get(node.host.peerId, cid)).subarray()).equals(bytes))
    assert.deepEqual(await reported(node, 1), [['get', 'ok', 1000]])
  })

  it('answers garbage with a closed stream and a request without an op with INVALID', async () => {
    const stream = await client.host.dialProtocol(node.host.peerId, CHUNK_PROTOCOL)
    // a varint length of 3 followed by bytes that are no protobuf message
    stream.send(Uint8Array.of(3, 0xff, 0xff, 0xff))
    await streamEnded(stream, 5_000)
    assert.notEqual(stream.status, 'open')

    const raw = await client.host.dialProtocol(node.host.peerId, CHUNK_PROTOCOL)
    const lp = lpStream(raw)
    await lp.write(ChunkRequest.encode({ cid: (await chunkOf(10, 1)).cid.bytes as Uint8Array<ArrayBuffer> }))
    const res = ChunkResponse.decode(await lp.read({ signal: AbortSignal.timeout(5_000) }))
    assert.equal(res.status, ChunkStatus.INVALID)
    assert.equal(res.error, 'InvalidChunkRequestError')
    await raw.close()
  })

  it('fails with UnsupportedProtocolError on a peer that does not serve chunks', async () => {
    const coordinator = await startCaller('coordinator-2', 'coordinator')
    const { cid, bytes } = await chunkOf(1000, 12)
    assert.equal((await rejection(client.chunks.get(coordinator.host.peerId, cid))).name, 'UnsupportedProtocolError')
    assert.equal((await rejection(client.chunks.put(coordinator.host.peerId, cid, bytes))).name, 'UnsupportedProtocolError')
  })

  it('throws RequestTimeoutError when the node never answers, within the configured timeout', async () => {
    const silent = await startPeer(fed, 'alice', 'node-silent', 'node')
    await introduce(silent)
    stoppers.push(async () => { await silent.host.stop() })
    // reads nothing, answers nothing, closes nothing
    await silent.host.handle(CHUNK_PROTOCOL, () => {})
    const impatient = new ChunkClient({ host: client.host, logger }, { timeoutMs: 300 })
    const { cid, bytes } = await chunkOf(1000, 8)
    const started = Date.now()
    const err = await rejection(impatient.get(silent.host.peerId, cid))
    const elapsed = Date.now() - started
    assert.equal(err.name, 'RequestTimeoutError')
    assert.ok(elapsed >= 290 && elapsed < 2_000, `timed out after ${elapsed} ms`)
    assert.equal((await rejection(impatient.put(silent.host.peerId, cid, bytes))).name, 'RequestTimeoutError')
    // the caller's own abort is not a timeout
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 50)
    assert.equal((await rejection(impatient.has(silent.host.peerId, cid, { signal: controller.signal }))).name, 'AbortError')
  })

  it('keeps at most maxConcurrentPerPeer requests in flight to one peer and queues the rest', async () => {
    let active = 0
    let most = 0
    let served = 0
    // answers every request after 60 ms, however many arrive
    const slow = await fakeNode('node-slow', (_req, answer) => {
      active++
      most = Math.max(most, active)
      setTimeout(() => {
        active--
        served++
        answer({ status: ChunkStatus.NOT_FOUND })
      }, 60)
    })

    // connected already, so the line is about the bound alone (see the next test for a peer not yet connected)
    await client.host.dial(slow.host.peerId)
    const bounded = new ChunkClient({ host: client.host, logger }, { maxConcurrentPerPeer: 2 })
    const { cid } = await chunkOf(10, 9)
    const all = Promise.all(Array.from({ length: 7 }, async () => await bounded.has(slow.host.peerId, cid)))
    await new Promise(resolve => setTimeout(resolve, 20))
    assert.deepEqual(bounded.inflight(), { [slow.host.peerId.toString()]: { active: 2, waiting: 5 } })
    const results = await all
    assert.equal(results.length, 7)
    assert.ok(results.every(r => !r.present))
    assert.equal(most, 2)
    assert.equal(served, 7)
    assert.deepEqual(bounded.inflight(), {}, 'an idle peer holds no state')

    // a caller giving up while in line leaves the line, and the others still get served
    const single = new ChunkClient({ host: client.host, logger }, { maxConcurrentPerPeer: 1 })
    const first = single.has(slow.host.peerId, cid)
    const controller = new AbortController()
    const second = single.has(slow.host.peerId, cid, { signal: controller.signal })
    const third = single.has(slow.host.peerId, cid)
    controller.abort()
    assert.equal((await rejection(second)).name, 'AbortError')
    assert.deepEqual(await first, { present: false, size: 0 })
    assert.deepEqual(await third, { present: false, size: 0 })
    assert.equal(served, 9)
  })

  it('sends one request at a time to a peer it has no connection to, until that peer has answered once', async () => {
    // Many streams arriving before the remote has set up its side of a new connection make yamux kill the
    // connection (more than 10 "early streams"): every request on it would fail.
    const fresh = await startNode('node-fresh')
    const eager = await startCaller('laptop-eager', 'client', { maxConcurrentPerPeer: 32 })
    assert.equal(eager.host.getConnections(fresh.host.peerId).length, 0)
    const chunks = await Promise.all(Array.from({ length: 32 }, async (_, i) => await chunkOf(256 * 1024, 700 + i)))
    const puts = Promise.allSettled(chunks.map(async c => { await eager.chunks.put(fresh.host.peerId, c.cid, c.bytes) }))
    await new Promise(resolve => setTimeout(resolve, 0))
    assert.deepEqual(eager.chunks.inflight(), { [fresh.host.peerId.toString()]: { active: 1, waiting: 31 } })
    const results = await puts
    assert.deepEqual(results.filter(r => r.status === 'rejected').map(r => (r as PromiseRejectedResult).reason.name), [])
    assert.equal((await fresh.store.stats()).chunkCount, 32)
    assert.equal(eager.host.getConnections(fresh.host.peerId).length, 1)
  })

  it('denies a caller the node cannot identify', async () => {
    // a server consulting an identity map the handshake never filled: every caller is a stranger to it
    const amnesiac = await startNode('node-amnesiac', { identities: new PeerIdentities() })
    const { cid, bytes } = await chunkOf(100, 20)
    const err = await rejection(client.chunks.put(amnesiac.host.peerId, cid, bytes))
    assert.equal(err.name, 'ChunkAccessDeniedError')
    assert.equal(err.reason, 'UnknownPeerError')
    assert.equal((await rejection(client.chunks.get(amnesiac.host.peerId, cid))).name, 'ChunkAccessDeniedError')
    assert.equal((await amnesiac.store.stats()).chunkCount, 0)
    assert.deepEqual((await reported(amnesiac, 2)).map(o => o[1]), ['denied', 'denied'])
  })

  it('denies an operation the caller\'s certified role may not perform', async () => {
    const strict = await startNode('node-strict', { init: { policy: { put: ['coordinator'], delete: ['coordinator'] } } })
    const coordinator = await startCaller('coordinator', 'coordinator')
    const { cid, bytes } = await chunkOf(100, 21)
    const err = await rejection(client.chunks.put(strict.host.peerId, cid, bytes))
    assert.equal(err.name, 'ChunkAccessDeniedError')
    assert.equal(err.reason, 'OperationNotAllowedError')
    await coordinator.chunks.put(strict.host.peerId, cid, bytes)
    assert.equal((await rejection(client.chunks.delete(strict.host.peerId, cid))).reason, 'OperationNotAllowedError')
    await coordinator.chunks.delete(strict.host.peerId, cid)
  })

  it('serves a chunk only with a capability from a coordinator it keeps the chunk for', async () => {
    const coordinator = await startCaller('coordinator-owner', 'coordinator')
    const other = await startCaller('coordinator-other', 'coordinator')
    const { cid, bytes } = await chunkOf(1000, 22)
    await coordinator.chunks.put(node.host.peerId, cid, bytes)

    // No token at all, or a token for another chunk: refused before the store is touched.
    const bare = new ChunkClient({ host: client.host, logger })
    assert.equal((await rejection(bare.get(node.host.peerId, cid))).reason, 'MalformedCapabilityError')
    const elsewhere = await chunkOf(10, 23)
    const wrongChunk = await issueCapability({ privateKey: coordinator.privateKey, holder: client.host.peerId, op: 'get', cids: [elsewhere.cid] })
    assert.equal((await rejection(client.chunks.get(node.host.peerId, cid, { capability: wrongChunk }))).reason, 'CapabilityCidError')
    // A token held by someone else, or expired, does not count either.
    const forCoordinator = await issueCapability({ privateKey: coordinator.privateKey, holder: coordinator.host.peerId, op: 'get', cids: [cid] })
    assert.equal((await rejection(client.chunks.get(node.host.peerId, cid, { capability: forCoordinator }))).reason, 'CapabilityHolderError')
    const expired = await issueCapability({ privateKey: coordinator.privateKey, holder: client.host.peerId, op: 'get', cids: [cid], now: Date.now() - 600_000 })
    assert.equal((await rejection(client.chunks.get(node.host.peerId, cid, { capability: expired }))).reason, 'CapabilityExpiredError')

    // Knowing the CID and signing one's own token is worth nothing: the chunk is not here for that coordinator.
    assert.equal((await rejection(other.chunks.get(node.host.peerId, cid))).name, 'ChunkNotFoundError')
    assert.equal((await rejection(client.chunks.get(node.host.peerId, cid))).name, 'ChunkNotFoundError')
    assert.deepEqual(await other.chunks.has(node.host.peerId, cid), { present: false, size: 0 })

    // The owner's token, handed to the client, opens it.
    const granted = await issueCapability({ privateKey: coordinator.privateKey, holder: client.host.peerId, op: 'get', cids: [cid] })
    assert.ok(Buffer.from((await client.chunks.get(node.host.peerId, cid, { capability: granted })).subarray()).equals(bytes))

    // Putting the same bytes makes the other coordinator an owner too; one owner's delete keeps the other's copy.
    await other.chunks.put(node.host.peerId, cid, bytes)
    await coordinator.chunks.delete(node.host.peerId, cid)
    assert.ok(Buffer.from((await other.chunks.get(node.host.peerId, cid)).subarray()).equals(bytes))
    assert.equal((await rejection(coordinator.chunks.get(node.host.peerId, cid))).name, 'ChunkNotFoundError')
    await other.chunks.delete(node.host.peerId, cid)
    assert.equal((await rejection(node.store.sizeOf(cid))).name, 'ChunkNotFoundError')
  })

  it('a refused put makes nobody an owner: no read of another\'s chunk, and the last owner\'s delete frees it', async () => {
    const owner = await startCaller('coordinator-first', 'coordinator')
    const prober = await startCaller('coordinator-prober', 'coordinator')
    const { cid, bytes } = await chunkOf(1000, 24)
    await owner.chunks.put(node.host.peerId, cid, bytes)

    // Knowing the CID but not the bytes: the put is refused, and it does not open the chunk to the prober.
    assert.equal((await rejection(prober.chunks.put(node.host.peerId, cid, new Uint8Array(1000)))).name, 'ChunkRejectedError')
    assert.equal((await rejection(prober.chunks.get(node.host.peerId, cid))).name, 'ChunkNotFoundError')
    assert.deepEqual(await prober.chunks.has(node.host.peerId, cid), { present: false, size: 0 })

    // The real owner's delete is the last one: the bytes leave the disk.
    await owner.chunks.delete(node.host.peerId, cid)
    assert.equal((await rejection(node.store.sizeOf(cid))).name, 'ChunkNotFoundError')
  })

  it('moves many chunks concurrently over one connection', async () => {
    const chunks = await Promise.all(Array.from({ length: 24 }, async (_, i) => await chunkOf(256 * 1024 + i, 500 + i)))
    await Promise.all(chunks.map(async c => { await client.chunks.put(node.host.peerId, c.cid, c.bytes) }))
    const got = await Promise.all(chunks.map(async c => await client.chunks.get(node.host.peerId, c.cid)))
    got.forEach((g, i) => { assert.ok(Buffer.from(g.subarray()).equals(chunks[i].bytes)) })
    assert.equal(client.host.getConnections(node.host.peerId).length, 1)
    await Promise.all(chunks.map(async c => { await client.chunks.delete(node.host.peerId, c.cid) }))
  })

  it('carries many requests on a few long-lived streams, matching answers by id whatever their order', async () => {
    const chunks = await Promise.all(Array.from({ length: 12 }, async (_, i) => await chunkOf(100_000 + i, 900 + i)))
    const caller = await startCaller('laptop-pooled', 'client', { idleMs: 150 })
    await caller.chunks.put(node.host.peerId, chunks[0].cid, chunks[0].bytes)
    await Promise.all(chunks.map(async c => { await caller.chunks.put(node.host.peerId, c.cid, c.bytes) }))
    // Answers finish in any order (a small chunk read beats a big one), so each must find its own request.
    const got = await Promise.all(chunks.map(async c => await caller.chunks.get(node.host.peerId, c.cid)))
    got.forEach((g, i) => { assert.ok(Buffer.from(g.subarray()).equals(chunks[i].bytes), `chunk ${i} came back different`) })
    const open = chunkStreams(caller, node)
    assert.equal(open.length, 1, 'one stream per node carries them all')
    // idle streams are closed: an idle peer holds no streams
    await waitFor('idle chunk streams closed', async () => chunkStreams(caller, node).length === 0, 5_000, 20)
    await Promise.all(chunks.map(async c => { await caller.chunks.delete(node.host.peerId, c.cid) }))
  })

  it('resets a stream whose caller sends more than the node holds without waiting for answers, and only that stream', async () => {
    const busy = await startNode('node-busy')
    const { cid, bytes } = await chunkOf(1000, 40)
    await client.chunks.put(busy.host.peerId, cid, bytes)
    // every GET waits on its read until the end of the test, so the requests below keep all of the stream's slots busy
    let unblock = (): void => {}
    const blocked = new Promise<void>(resolve => { unblock = resolve })
    const read = async function * (): AsyncGenerator<Uint8Array> { await blocked; yield bytes }
    busy.store.stream = read
    try {
      const raw = await client.host.dialProtocol(busy.host.peerId, CHUNK_PROTOCOL)
      const capability = await selfIssued(client.privateKey)('get', cid) as Uint8Array<ArrayBuffer>
      for (let id = 1; id <= CHUNK_PROTOCOL_LIMITS.maxRequestsPerStream; id++) {
        raw.send(frameHead(ChunkRequest.encode({ op: ChunkOp.GET, cid: cid.bytes as Uint8Array<ArrayBuffer>, id, capability }), 0))
      }
      // then a frame and more bytes than the node buffers for a stream
      raw.send(frameHead(ChunkRequest.encode({ op: ChunkOp.PUT, cid: cid.bytes as Uint8Array<ArrayBuffer>, id: 99 }), 1000))
      raw.send(new Uint8Array(CHUNK_PROTOCOL_LIMITS.maxRequestsPerStream * CHUNK_FRAME_BUFFER_BYTES))
      await streamEnded(raw, 10_000)
      assert.equal(raw.status, 'reset')
    } finally {
      // also when an assertion failed: the node's stop waits for these reads
      unblock()
    }
    // the caller's own stream was not touched
    assert.ok(Buffer.from((await client.chunks.get(busy.host.peerId, cid)).subarray()).equals(bytes))
  })

  it('fails only the request that timed out, then moves on to a fresh stream', async () => {
    // answers every request at once, except the very first one, which it never answers
    let requests = 0
    const moody = await fakeNode('node-moody', (_req, answer) => {
      if (requests++ > 0) answer({ status: ChunkStatus.NOT_FOUND })
    })
    await client.host.dial(moody.host.peerId)
    // 1.5 s: the answered request must beat it even on a loaded machine
    const impatient = new ChunkClient({ host: client.host, logger }, { timeoutMs: 1500, streamsPerPeer: 1 })
    const { cid } = await chunkOf(10, 42)
    const first = impatient.has(moody.host.peerId, cid)
    const second = impatient.has(moody.host.peerId, cid)
    assert.deepEqual(await second, { present: false, size: 0 })
    assert.equal((await rejection(first)).name, 'RequestTimeoutError')
    // the stream that let a request time out takes nothing more: the next request goes out on a new one
    assert.deepEqual(await impatient.has(moody.host.peerId, cid), { present: false, size: 0 })
    assert.equal(moody.streams(), 2)
    await waitFor('the first stream reset', async () => chunkStreams(client, moody).length === 1, 5_000, 20)
  })

  it('stops serving on stop(): streams in flight are aborted and new ones are refused', async () => {
    const stopping = await startNode('node-stopping')
    const { cid, bytes } = await chunkOf(100, 30)
    await client.chunks.put(stopping.host.peerId, cid, bytes)
    await stopping.server.stop()
    const err = await rejection(client.chunks.get(stopping.host.peerId, cid))
    assert.notEqual(err.name, 'ChunkNotFoundError')
    await stopping.server.start()
    assert.ok(Buffer.from((await client.chunks.get(stopping.host.peerId, cid)).subarray()).equals(bytes))
  })
})
