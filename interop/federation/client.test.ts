import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { MetaClient } from '../../src/access/meta-client.js'
import { MetaOp } from '../../src/gen/meta.js'
import { NodeReport, NodeReportResponse } from '../../src/gen/node.js'
import { NODE_PROTOCOL, NODE_PROTOCOL_LIMITS } from '../../src/node-registry/protocol.js'
import { request } from '../../src/net/rpc.js'
import { Cleanup, cli, startDaemon, waitFor } from '../../test/helpers/daemons.js'
import { startMount } from '../../test/helpers/mount.js'
import { MemberFederation, freePort } from '../../test/helpers/members.js'
import { startPeer } from '../../test/unit/chunks/fixtures.js'
import type { CliResult, RunningDaemon } from '../../test/helpers/daemons.js'

/**
 * Bob's laptop: a daemon in role `client`, on a home of its own, that stores nothing for anyone. Its CLI reaches
 * every DataStore of the federation and bob's own namespace with exactly bob's rights, through real daemons of
 * three members.
 */

const cleanup = new Cleanup()
let fed: MemberFederation
let laptop: RunningDaemon
let work: string

async function run (home: string, ...args: string[]): Promise<CliResult> {
  return await cli([...args, '--home', home])
}

async function ok (home: string, ...args: string[]): Promise<string> {
  const r = await run(home, ...args)
  assert.equal(r.code, 0, `${args.join(' ')}\n${r.stderr}\n--- laptop:\n${laptop?.output().slice(-2000) ?? ''}`)
  return r.stdout
}

const coordinator = (member: string): string => fed.peer(`coordinator.${member}`).dir

describe('a client daemon on a laptop', () => {
  before(async () => {
    work = await cleanup.tempDir('client-')
    fed = await MemberFederation.create(cleanup, { nodes: 1, federation: { announceInterval: '1s' } })
    await fed.startAll()
    await ok(coordinator('alice'), 'datastore', 'create', '/media')
    await ok(coordinator('alice'), 'grant', '/media', 'bob@garage.collective.local', 'read+write')
    await ok(coordinator('alice'), 'datastore', 'create', '/vault')
    await ok(coordinator('bob'), 'mkdir', '/notes')

    const dir = await fed.ca.component('bob', 'laptop', 'client', {
      listen: [`/ip4/127.0.0.1/tcp/${await freePort()}`],
      coordinator: fed.addrOf('coordinator.bob')
    })
    laptop = await startDaemon(cleanup, dir, [], {}, 60_000)
    await waitFor('the laptop to know alice\'s DataStores', async () => {
      const list = JSON.parse(await ok(dir, 'datastore', 'ls', '--json'))
      return list.filter((d: any) => d.owner === 'alice@home.collective.local').length === 2
    }, 60_000)
  })

  after(async () => { await cleanup.run() })

  it('writes and reads in another member\'s DataStore with the member\'s grants', async () => {
    const local = join(work, 'film.bin')
    await writeFile(local, randomBytes(2 * 1024 * 1024 + 5))
    await ok(laptop.dir, 'put', local, '/media/film.bin')
    const stat = JSON.parse(await ok(coordinator('alice'), 'stat', '/media/film.bin', '--json'))
    assert.equal(stat.owner, 'bob@garage.collective.local', 'the laptop acts as bob')
    await ok(laptop.dir, 'get', '/media/film.bin', join(work, 'film.back'))
    assert.ok((await readFile(join(work, 'film.back'))).equals(await readFile(local)))
    assert.match(await ok(laptop.dir, 'ls', '/media'), /film\.bin/)

    const denied = await run(laptop.dir, 'put', local, '/vault/film.bin')
    assert.equal(denied.code, 1)
    assert.match(denied.stderr, /\[PermissionDeniedError\]/)
    assert.ok(denied.stderr.includes('missing right: write'), denied.stderr)
  })

  it('uses bob\'s own namespace on bob\'s coordinator, and stores nothing itself', async () => {
    const r = await cli(['write', '/notes/todo.txt', '--home', laptop.dir], { input: 'buy milk\n' })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(await ok(coordinator('bob'), 'cat', '/notes/todo.txt'), 'buy milk\n', 'the file is in bob\'s namespace')
    assert.equal(await ok(laptop.dir, 'cat', '/notes/todo.txt'), 'buy milk\n')
    await ok(laptop.dir, 'mv', '/notes/todo.txt', '/notes/done.txt')
    assert.equal((await run(coordinator('bob'), 'stat', '/notes/done.txt')).code, 0)
    // Alice's laptop-less coordinator has no business in bob's namespace: it is not routed there at all.
    assert.equal((await run(coordinator('alice'), 'stat', '/notes/done.txt')).code, 1)
    const status = JSON.parse(await ok(laptop.dir, 'status', '--json'))
    assert.equal(status.role, 'client')
  })

  it('serves the laptop\'s mount: other members\' DataStores and bob\'s own namespace, as files', async () => {
    const mnt = join(work, 'mnt')
    await mkdir(mnt)
    const mount = await startMount(cleanup, mnt, laptop.dir)
    try {
      assert.ok((await readdir(mnt)).includes('media'), `alice's DataStore shows: ${(await readdir(mnt)).join(' ')}`)
      const bytes = randomBytes(300_000)
      await writeFile(join(mnt, 'media', 'from-laptop.bin'), bytes)
      await ok(coordinator('alice'), 'get', '/media/from-laptop.bin', join(work, 'from-laptop.back'))
      assert.ok((await readFile(join(work, 'from-laptop.back'))).equals(bytes), 'written through the laptop\'s mount, read at alice\'s')
      await writeFile(join(mnt, 'notes', 'mounted.txt'), 'from the mount\n')
      assert.equal(await ok(coordinator('bob'), 'cat', '/notes/mounted.txt'), 'from the mount\n')
    } finally {
      await mount.stop()
    }
  })

  it('a client certificate presented as a storage node is refused', async () => {
    const impostor = await startPeer(fed.ca, 'bob', 'fake-node', 'client')
    try {
      const coordinatorId = fed.peer('coordinator.bob').peerId as string
      await impostor.host.peerStore.merge(peerIdFromString(coordinatorId), { multiaddrs: [multiaddr(fed.addrOf('coordinator.bob'))] })
      const res = await request(impostor.host, peerIdFromString(coordinatorId), NODE_PROTOCOL, { capacityBytes: 1e12, usedBytes: 0, chunkCount: 0, addrs: [], corruptCids: [] }, NodeReport, NodeReportResponse, NODE_PROTOCOL_LIMITS)
      assert.equal(res.accepted, false)
      assert.equal(res.error, 'NotANodeError')
      // ... and a node certificate gets nothing of the namespace, though it names bob's member
      const node = await startPeer(fed.ca, 'bob', 'rogue-node', 'node')
      try {
        await node.host.peerStore.merge(peerIdFromString(coordinatorId), { multiaddrs: [multiaddr(fed.addrOf('coordinator.bob'))] })
        await assert.rejects(new MetaClient({ host: node.host }).call(coordinatorId, { op: MetaOp.LS, path: '/notes' }), (err: any) => err.name === 'OperationNotAllowedError')
      } finally {
        await node.host.stop()
      }
      const nodes = JSON.parse(await ok(coordinator('bob'), 'df', '--json')).nodes
      assert.ok(!nodes.some((n: any) => n.name.startsWith('fake-node')), 'it never became a placement target')
    } finally {
      await impostor.host.stop()
    }
  })
})
