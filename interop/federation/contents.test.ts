import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, createHash } from 'node:crypto'
import { chmod, mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import Database from 'better-sqlite3'
import { CID } from 'multiformats/cid'
import { MetaClient } from '../../src/access/meta-client.js'
import { ChunkClient } from '../../src/chunks/client.js'
import { MetaOp } from '../../src/gen/meta.js'
import { selfIssued } from '../../src/permissions/capability.js'
import { Cleanup, cli, waitFor } from '../../test/helpers/daemons.js'
import { startMount } from '../../test/helpers/mount.js'
import { scrape, sample } from '../../test/helpers/metrics.js'
import { DaemonFs } from '../../src/fuse/daemon-fs.js'
import { MemberFederation } from '../../test/helpers/members.js'
import { logger, startPeer } from '../../test/unit/chunks/fixtures.js'
import type { CliResult } from '../../test/helpers/daemons.js'

/**
 * File contents in another member's DataStore, with real daemons of three members (a coordinator and a node
 * each): the owner checks the caller's rights and hands out capabilities; the caller's daemon moves the chunks
 * straight to and from the storage nodes. And a chunk cannot be fetched by knowing its CID.
 */

const cleanup = new Cleanup()
let fed: MemberFederation
const as = async (member: string, ...args: string[]): Promise<CliResult> => await fed.as(member, ...args)
const ok = async (member: string, ...args: string[]): Promise<string> => await fed.ok(member, ...args)
let work: string

async function sha256File (path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex')
}

describe('file contents in other members\' DataStores', () => {
  before(async () => {
    work = await cleanup.tempDir('contents-')
    fed = await MemberFederation.create(cleanup, { nodes: 1, federation: { announceInterval: '1s' } })
    await fed.startAll()
    await ok('alice', 'datastore', 'create', '/media', '--strategy', 'media')
    await ok('alice', 'grant', '/media', 'bob@garage.collective.local', 'read+write')
    await ok('alice', 'grant', '/media', 'carol@office.collective.local', 'read')
    await ok('alice', 'datastore', 'create', '/vault')
    for (const m of ['bob', 'carol']) {
      await waitFor(`${m} to know alice's DataStores`, async () => {
        const list = JSON.parse(await ok(m, 'datastore', 'ls', '--json'))
        return list.filter((d: any) => d.owner === 'alice@home.collective.local').length === 2
      }, 30_000)
    }
    // Every node of the federation is known to alice before the writes: placement spreads across members.
    await waitFor('alice to see the three nodes', async () => JSON.parse(await ok('alice', 'df', '--json')).nodes.length >= 3, 30_000)
  })

  after(async () => { await cleanup.run() })

  it('bob writes into alice\'s /media and everyone with read gets the same bytes back', async () => {
    for (const [name, size] of [['empty.bin', 0], ['small.bin', 70_000], ['large.bin', 3 * 1024 * 1024 + 17]] as const) {
      const local = join(work, name)
      await writeFile(local, randomBytes(size))
      await ok('bob', 'put', local, `/media/${name}`)
      const stat = JSON.parse(await ok('alice', 'stat', `/media/${name}`, '--json'))
      assert.equal(stat.size, size)
      assert.equal(stat.owner, 'bob@garage.collective.local', 'the writer owns the file, by its certificate')
      if (size > 0) assert.ok(stat.replicas.min >= 2, `every chunk of ${name} is at the replica count: ${JSON.stringify(stat.replicas)}`)
      for (const reader of ['alice', 'bob', 'carol']) {
        const out = join(work, `${name}.${reader}`)
        await ok(reader, 'get', `/media/${name}`, out)
        assert.equal(await sha256File(out), await sha256File(local), `${reader} reads ${name} back byte for byte`)
      }
    }
    // stdin and stdout work the same way
    const r = await cli(['write', '/media/note.txt', '--home', fed.peer('coordinator.bob').dir], { input: 'hello from bob\n' })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(await ok('carol', 'cat', '/media/note.txt'), 'hello from bob\n')
  })

  it('the owner counts toward popularity only the chunks a ranged read spans', async () => {
    // large.bin is cut at 1 MiB: four chunks. Carol reads it as a mount does, through her daemon's fs.read.
    const MiB = 1024 * 1024
    const local = await readFile(join(work, 'large.bin'))
    const carol = new DaemonFs(fed.peer('coordinator.carol').daemon!.socket)
    const alice = fed.peer('coordinator.alice').daemon!
    const reads = async (): Promise<number> => sample(await scrape(alice), 'collective_popularity_chunk_reads_total')
    const read = async (offset: number, length?: number): Promise<Buffer> => {
      const parts: Buffer[] = []
      for await (const part of carol.stream('/media/large.bin', offset, length)) parts.push(part)
      return Buffer.concat(parts)
    }
    const before = await reads()
    assert.ok((await read(2 * MiB + 5, 1)).equals(local.subarray(2 * MiB + 5, 2 * MiB + 6)))
    assert.equal(await reads() - before, 1, 'one byte: the one chunk it is in, not the whole page')
    // to the end of the file, as a mount's reads ask: the last chunk only
    assert.ok((await read(3 * MiB + 1)).equals(local.subarray(3 * MiB + 1)))
    assert.equal(await reads() - before, 2)
    // the whole file: every chunk
    assert.ok((await read(0)).equals(local))
    assert.equal(await reads() - before, 6)
  })

  it('a write without the right is refused before any bytes move and changes nothing', async () => {
    const local = join(work, 'carol.bin')
    await writeFile(local, randomBytes(200_000))
    const r = await as('carol', 'put', local, '/media/carol.bin')
    assert.equal(r.code, 1)
    assert.match(r.stderr, /\[PermissionDeniedError\]/)
    assert.ok(r.stderr.includes('/media/carol.bin') && r.stderr.includes('missing right: write'), r.stderr)
    assert.equal((await as('alice', 'stat', '/media/carol.bin')).code, 1, 'nothing was written')
    const read = await as('bob', 'get', '/vault/anything', join(work, 'nothing'))
    assert.equal(read.code, 1)
    assert.match(read.stderr, /\[PermissionDeniedError\]/)
  })

  it('other members\' DataStores appear in a member\'s mount, with its rights: reads work, a denied write is EACCES', async () => {
    const mnt = join(work, 'mnt-carol')
    await mkdir(mnt)
    const mount = await startMount(cleanup, mnt, fed.peer('coordinator.carol').dir)
    const output = mount.output
    try {
      assert.ok((await readdir(mnt)).includes('media'), 'alice\'s DataStore shows in carol\'s root')
      assert.ok((await readFile(join(mnt, 'media', 'large.bin'))).equals(await readFile(join(work, 'large.bin'))), 'read through the mount')
      await assert.rejects(writeFile(join(mnt, 'media', 'from-carol.bin'), randomBytes(100_000)), (err: any) => {
        assert.equal(err.code, 'EACCES', `${String(err.message)}\n--- mount:\n${output().slice(-3000)}`)
        return true
      })
      assert.equal((await as('alice', 'stat', '/media/from-carol.bin')).code, 1, 'the denied write left nothing')
      // chmod and touch -d in another member's DataStore, for a member with the right (alice's own mount would do;
      // carol may not, and is told so)
      await assert.rejects(chmod(join(mnt, 'media', 'large.bin'), 0o600), (err: any) => err.code === 'EACCES')
      await ok('alice', 'grant', '/media', 'carol@office.collective.local', 'write')
      await waitFor('carol\'s write right', async () => /write/.test(await ok('carol', 'rights', '/media')), 10_000)
      await chmod(join(mnt, 'media', 'large.bin'), 0o600)
      await utimes(join(mnt, 'media', 'large.bin'), new Date('2020-01-02T03:04:05Z'), new Date('2020-01-02T03:04:05Z'))
      const after = JSON.parse(await ok('alice', 'stat', '/media/large.bin', '--json'))
      assert.equal(after.mode & 0o777, 0o600)
      assert.equal(after.mtimeMs, Date.parse('2020-01-02T03:04:05Z'))
      // 0 is a value like any other: chmod 000 and the epoch are set, not taken for "unchanged"
      // (and each attribute changes alone)
      await chmod(join(mnt, 'media', 'large.bin'), 0)
      const modeZero = JSON.parse(await ok('alice', 'stat', '/media/large.bin', '--json'))
      assert.deepEqual([modeZero.mode & 0o7777, modeZero.mtimeMs], [0, Date.parse('2020-01-02T03:04:05Z')])
      await utimes(join(mnt, 'media', 'large.bin'), 0, 0)
      const timeZero = JSON.parse(await ok('alice', 'stat', '/media/large.bin', '--json'))
      assert.deepEqual([timeZero.mode & 0o7777, timeZero.mtimeMs], [0, 0])
      await chmod(join(mnt, 'media', 'large.bin'), 0o644)
      await ok('alice', 'revoke', '/media', 'carol@office.collective.local', 'write')
    } finally {
      await mount.stop()
    }
  })

  it('a chunk cannot be fetched by knowing its CID: not without a capability, not with one the thief signed itself', async () => {
    const secret = randomBytes(300_000)
    await writeFile(join(work, 'secret.bin'), secret)
    await ok('alice', 'put', join(work, 'secret.bin'), '/vault/secret.bin')
    // The thief knows exactly where the chunk is: alice's own metadata says so.
    const db = new Database(join(fed.peer('coordinator.alice').dir, 'data', 'metadata.db'), { readonly: true })
    const rows = db.prepare('SELECT l.cid AS cid, l.node_peer_id AS node, m.size AS size FROM manifest_chunk m JOIN entry e ON e.id = m.entry_id JOIN chunk_location l ON l.cid = m.cid WHERE e.path = ?').all('/vault/secret.bin') as Array<{ cid: string, node: string, size: number }>
    db.close()
    assert.ok(rows.length >= 2, 'the chunk has copies')

    // Carol, a certified member with no grant on /vault, on a device of her own.
    const thief = await startPeer(fed.ca, 'carol', 'thief', 'client')
    // One client of each kind: a node takes two chunk streams per connection, and each client keeps one open.
    const bare = new ChunkClient({ host: thief.host, logger })
    const forged = new ChunkClient({ host: thief.host, logger, capabilities: selfIssued(thief.privateKey) })
    try {
      for (const { cid, node } of rows) {
        const at = fed.addrOf([...fed.peers.values()].find(p => p.peerId === node)!.key)
        await thief.host.peerStore.merge(peerIdFromString(node), { multiaddrs: [multiaddr(at)] })
        // A connection first (on a loaded machine a first dial may lose a race), so what follows tests the node's rules.
        await waitFor(`the thief connected to ${node}`, async () => { await thief.host.dial(peerIdFromString(node)); return true }, 30_000)
        await assert.rejects(bare.get(peerIdFromString(node), CID.parse(cid)), (err: any) => err.name === 'ChunkAccessDeniedError' && err.reason === 'MalformedCapabilityError')
        await assert.rejects(forged.get(peerIdFromString(node), CID.parse(cid)), (err: any) => err.name === 'ChunkNotFoundError')
      }
    } catch (err: any) {
      const nodes = [...fed.peers.values()].filter(p => rows.some(r => r.node === p.peerId))
      assert.fail(`${String(err.message)}\n${nodes.map(n => `--- ${n.key}:\n${n.daemon?.output().slice(-2000) ?? ''}`).join('\n')}`)
    } finally {
      await bare.stop()
      await forged.stop()
      await thief.host.stop()
    }
    // Nor by committing a file that names the CID in a DataStore one may write: the owner asks for a copy of the
    // writer's own first, and the commit checks it is there.
    const sneaky = await startPeer(fed.ca, 'bob', 'sneaky', 'client')
    try {
      const aliceId = fed.peer('coordinator.alice').peerId as string
      await sneaky.host.peerStore.merge(peerIdFromString(aliceId), { multiaddrs: [multiaddr(fed.addrOf('coordinator.alice'))] })
      const meta = new MetaClient({ host: sneaky.host })
      const { cid, size } = rows[0]
      const begun = await meta.call(aliceId, { op: MetaOp.BEGIN_WRITE, path: '/media/stolen.bin', size, chunkSize: 64 * 1024 })
      const wanted = await meta.call(aliceId, { op: MetaOp.ALLOCATE, writeId: begun.writeId, firstChunk: 0, chunks: [{ cid: CID.parse(cid).bytes as Uint8Array<ArrayBuffer>, size }] })
      assert.equal(wanted.placements[0].nodes.length, 1, 'one copy of its own is asked of the writer')
      await assert.rejects(meta.call(aliceId, { op: MetaOp.COMMIT_WRITE, writeId: begun.writeId, size, chunkCount: 1 }), (err: any) => err.name === 'ReplicationError')
      await assert.rejects(meta.call(aliceId, { op: MetaOp.OPEN_READ, path: '/media/stolen.bin' }), (err: any) => err.name === 'NotFoundError')
    } finally {
      await sneaky.host.stop()
    }

    // ... while the owner still reads it
    const back = join(work, 'secret.back')
    await ok('alice', 'get', '/vault/secret.bin', back)
    assert.ok((await readFile(back)).equals(secret))
  })
})
