import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, afterEach, describe, it } from 'node:test'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { MetadataStore } from '../../../src/metadata/store.js'
import { cidOf } from '../../../src/storage/chunking.js'
import type { CommitFileOptions, ManifestChunk } from '../../../src/metadata/store.js'

const OWNER = 'alice.home.collective.local'
let cids: string[] = []
let root: string
let n = 0

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'metadata-test-'))
  cids = await Promise.all(Array.from({ length: 10 }, async (_, i) => (await cidOf(new TextEncoder().encode(`chunk ${i}`))).toString()))
})
after(async () => { await rm(root, { recursive: true, force: true }) })

/** A manifest of the given chunk indexes, each chunk `size` bytes */
function file (indexes: number[], size = 100, extra: Partial<CommitFileOptions> = {}): CommitFileOptions {
  const chunks: ManifestChunk[] = indexes.map(i => ({ cid: cids[i], size }))
  return { manifest: { chunkSize: 100, chunks }, size: size * indexes.length, owner: OWNER, ...extra }
}

function refcount (store: MetadataStore, i: number): number | undefined {
  return store.getChunk(cids[i])?.refcount
}

describe('MetadataStore', () => {
  let clock = 1_000_000
  let path: string
  let store: MetadataStore

  beforeEach(() => {
    clock = 1_000_000
    path = join(root, `db-${n++}`, 'nested', 'meta.sqlite')
    store = new MetadataStore({ path, now: () => clock })
    store.start()
  })
  afterEach(() => { store.stop() })

  /** Stops the store and leaves its database as a schema `version` would have: `sql` undoes the later ones */
  async function rewriteSchema (version: number, sql = ''): Promise<void> {
    store.stop()
    const Database = (await import('better-sqlite3')).default
    const db = new Database(path)
    if (sql !== '') db.exec(sql)
    db.pragma(`user_version = ${version}`)
    db.close()
  }

  it('has a root directory from the start', () => {
    const r = store.stat('/')
    assert.equal(r.type, 'dir')
    assert.equal(r.path, '/')
    assert.deepEqual(store.list('/'), [])
  })

  it('mkdir, mkdir -p, list sorted by name, stat', () => {
    store.mkdir('/b', { owner: OWNER })
    store.mkdir('/a', { owner: OWNER, mode: 0o700 })
    const deep = store.mkdir('/a/x/y/z', { owner: OWNER, parents: true })
    assert.equal(deep.path, '/a/x/y/z')
    assert.equal(deep.type, 'dir')
    assert.equal(deep.mode, 0o755)
    assert.deepEqual(store.list('/').map(e => e.path), ['/a', '/b'])
    assert.equal(store.stat('/a').mode, 0o700)
    assert.equal(store.stat('/a//x/').path, '/a/x')
    assert.equal(store.stat('/a/x/y').owner, OWNER)
    // -p accepts what exists
    assert.equal(store.mkdir('/a/x', { owner: OWNER, parents: true }).path, '/a/x')

    for (const name of ['c', 'B', 'a', 'é', 'a0', 'a.txt']) store.mkdir(`/b/${name}`, { owner: OWNER })
    assert.deepEqual(store.list('/b').map(e => e.path.slice(3)), ['B', 'a', 'a.txt', 'a0', 'c', 'é'])
    assert.deepEqual(store.list('/b', { after: 'a', limit: 2 }).map(e => e.path), ['/b/a.txt', '/b/a0'])
  })

  it('mkdir refusals', () => {
    store.mkdir('/a', { owner: OWNER })
    store.commitFile('/f', file([0]))
    assert.throws(() => store.mkdir('/a', { owner: OWNER }), { name: 'AlreadyExistsError' })
    assert.throws(() => store.mkdir('/', { owner: OWNER }), { name: 'AlreadyExistsError' })
    assert.throws(() => store.mkdir('/missing/x', { owner: OWNER }), { name: 'NotFoundError' })
    assert.throws(() => store.mkdir('/f/x', { owner: OWNER }), { name: 'NotADirectoryError' })
    assert.throws(() => store.mkdir('/f/x/y', { owner: OWNER, parents: true }), { name: 'NotADirectoryError' })
    assert.throws(() => store.mkdir('/f', { owner: OWNER, parents: true }), { name: 'AlreadyExistsError' })
    assert.throws(() => store.mkdir('/b', { owner: '' }), { name: 'InvalidAttributeError' })
    assert.throws(() => store.mkdir('/b', { owner: OWNER, mode: 0o10000 }), { name: 'InvalidAttributeError' })
    assert.throws(() => store.mkdir('b', { owner: OWNER }), { name: 'InvalidPathError' })
  })

  it('stat and list refusals', () => {
    store.commitFile('/f', file([0]))
    assert.throws(() => store.stat('/nope'), { name: 'NotFoundError' })
    assert.equal(store.tryStat('/nope'), undefined)
    assert.throws(() => store.list('/nope'), { name: 'NotFoundError' })
    assert.throws(() => store.list('/f'), { name: 'NotADirectoryError' })
    assert.throws(() => store.stat('/a/../f'), { name: 'InvalidPathError' })
  })

  it('commits and replaces a file, moving refcounts up and down', () => {
    store.mkdir('/docs', { owner: OWNER })
    clock = 2_000_000
    const v1 = store.commitFile('/docs/f', file([0, 1, 2], 100, { mtimeMs: 1_500_000 }))
    assert.equal(v1.type, 'file')
    assert.equal(v1.version, 1)
    assert.equal(v1.size, 300)
    assert.equal(v1.mode, 0o644)
    assert.equal(v1.mtimeMs, 1_500_000)
    assert.equal(v1.ctimeMs, 2_000_000)
    assert.equal(store.stat('/docs').mtimeMs, 2_000_000)
    assert.deepEqual([0, 1, 2].map(i => refcount(store, i)), [1, 1, 1])
    assert.deepEqual(store.getManifest('/docs/f'), {
      chunkSize: 100, size: 300, version: 1, chunks: [0, 1, 2].map(i => ({ cid: cids[i], size: 100 }))
    })

    clock = 3_000_000
    const v2 = store.commitFile('/docs/f', file([2, 3], 100, { owner: 'bob.home.collective.local', mode: 0o600 }))
    assert.equal(v2.version, 2)
    assert.equal(v2.size, 200)
    assert.equal(v2.mode, 0o600)
    assert.equal(v2.owner, OWNER, 'a replaced file keeps its owner')
    assert.equal(v2.mtimeMs, 3_000_000)
    assert.deepEqual([0, 1, 2, 3].map(i => refcount(store, i)), [0, 0, 1, 1])
    assert.equal(store.getChunk(cids[0])?.zeroSinceMs, 3_000_000)
    assert.equal(store.getChunk(cids[2])?.zeroSinceMs, undefined)
    assert.deepEqual(store.getManifest('/docs/f').chunks.map(c => c.cid), [cids[2], cids[3]])

    // a chunk coming back to life loses its zero timestamp
    store.commitFile('/docs/g', file([0]))
    assert.equal(refcount(store, 0), 1)
    assert.equal(store.getChunk(cids[0])?.zeroSinceMs, undefined)

    const empty = store.commitFile('/docs/empty', { manifest: { chunkSize: 65536, chunks: [] }, size: 0, owner: OWNER })
    assert.equal(empty.size, 0)
    assert.deepEqual(store.getManifest('/docs/empty').chunks, [])
  })

  it('deduplicates: the same chunk in two files (or twice in one) counts every reference', () => {
    store.commitFile('/a', file([5]))
    store.commitFile('/b', file([5, 6]))
    assert.equal(refcount(store, 5), 2)
    store.commitFile('/zeros', file([7, 7, 7]))
    assert.equal(refcount(store, 7), 3)
    store.remove('/a')
    assert.equal(refcount(store, 5), 1)
    store.commitFile('/zeros', file([7]))
    assert.equal(refcount(store, 7), 1)
    assert.equal(store.usage().chunks, 3)
  })

  it('normalizes CID spellings so refcounts do not split', () => {
    const other = CID.parse(cids[0]).toString(base58btc)
    assert.notEqual(other, cids[0])
    store.commitFile('/a', file([0]))
    store.commitFile('/b', { ...file([]), manifest: { chunkSize: 100, chunks: [{ cid: other, size: 100 }] }, size: 100 })
    assert.equal(refcount(store, 0), 2)
    assert.deepEqual(store.getManifest('/b').chunks, [{ cid: cids[0], size: 100 }])
  })

  it('commitFile refusals', () => {
    store.mkdir('/d', { owner: OWNER })
    store.commitFile('/f', file([0]))
    assert.throws(() => store.commitFile('/missing/f', file([1])), { name: 'NotFoundError' })
    assert.throws(() => store.commitFile('/f/g', file([1])), { name: 'NotADirectoryError' })
    assert.throws(() => store.commitFile('/d', file([1])), { name: 'IsADirectoryError' })
    assert.throws(() => store.commitFile('/', file([1])), { name: 'IsADirectoryError' })
    assert.throws(() => store.commitFile('/g', { ...file([1]), size: 99 }), { name: 'InvalidManifestError', message: /add up/ })
    assert.throws(() => store.commitFile('/g', file([1], 101)), { name: 'InvalidManifestError' })
    assert.throws(() => store.commitFile('/g', { ...file([]), manifest: { chunkSize: 100, chunks: [{ cid: 'nope', size: 1 }] }, size: 1 }), { name: 'InvalidManifestError' })
    assert.throws(() => store.commitFile('/g', file([1], 100, { locations: [{ cid: cids[2], peerIds: ['p'] }] })), { name: 'InvalidManifestError' })
    assert.throws(() => store.getManifest('/d'), { name: 'IsADirectoryError' })
    assert.throws(() => store.getManifest('/nope'), { name: 'NotFoundError' })
    assert.equal(refcount(store, 1), undefined)
  })

  it('a commit that fails midway changes nothing', () => {
    store.commitFile('/f', file([0, 1], 100, { locations: [{ cid: cids[0], peerIds: ['peerA'] }] }))
    const before = { stat: store.stat('/f'), manifest: store.getManifest('/f'), usage: store.usage() }

    // parent missing: refused before anything is touched
    assert.throws(() => store.commitFile('/missing/f', file([2])), { name: 'NotFoundError' })
    // chunk 3 is referenced first, then chunk 0 contradicts its known size: the transaction must roll back
    const bad: CommitFileOptions = {
      manifest: { chunkSize: 100, chunks: [{ cid: cids[3], size: 100 }, { cid: cids[0], size: 50 }] },
      size: 150,
      owner: OWNER,
      locations: [{ cid: cids[3], peerIds: ['peerB'] }]
    }
    assert.throws(() => store.commitFile('/f', bad), { name: 'InvalidManifestError', message: /known with size/ })
    assert.throws(() => store.commitFile('/new', bad), { name: 'InvalidManifestError' })

    assert.deepEqual(store.stat('/f'), before.stat)
    assert.deepEqual(store.getManifest('/f'), before.manifest)
    assert.deepEqual(store.usage(), before.usage)
    assert.equal(store.getChunk(cids[3]), undefined)
    assert.deepEqual([0, 1].map(i => refcount(store, i)), [1, 1])
    assert.equal(store.tryStat('/new'), undefined)
    assert.deepEqual(store.chunkLocations(cids[0]), ['peerA'])
  })

  it('batch() makes several operations one transaction', () => {
    assert.throws(() => store.batch(() => {
      store.mkdir('/x', { owner: OWNER })
      store.commitFile('/x/f', file([0]))
      throw new Error('boom')
    }), /boom/)
    assert.equal(store.tryStat('/x'), undefined)
    assert.equal(store.getChunk(cids[0]), undefined)
  })

  it('removes files, empty dirs and (recursively) subtrees, releasing chunks', () => {
    store.mkdir('/a/b/c', { owner: OWNER, parents: true })
    store.mkdir('/ab', { owner: OWNER })
    store.commitFile('/a/f1', file([0, 1]))
    store.commitFile('/a/b/f2', file([1, 2]))
    store.commitFile('/a/b/c/f3', file([3]))
    store.commitFile('/ab/keep', file([3]))
    store.commitFile('/a.txt', file([4]))

    assert.throws(() => store.remove('/a'), { name: 'NotEmptyError' })
    assert.throws(() => store.remove('/'), { name: 'InvalidPathError' })
    assert.throws(() => store.remove('/', { recursive: true }), { name: 'InvalidPathError' })
    assert.throws(() => store.remove('/nope'), { name: 'NotFoundError' })

    clock = 5_000_000
    const res = store.remove('/a', { recursive: true })
    assert.deepEqual(res, { files: 3, dirs: 3, bytes: 500 })
    assert.equal(store.tryStat('/a'), undefined)
    assert.equal(store.tryStat('/a/b/c/f3'), undefined)
    assert.deepEqual(store.list('/').map(e => e.path), ['/a.txt', '/ab'])
    assert.deepEqual([0, 1, 2, 3, 4].map(i => refcount(store, i)), [0, 0, 0, 1, 1])
    assert.equal(store.getChunk(cids[1])?.zeroSinceMs, 5_000_000)
    assert.equal(store.stat('/').mtimeMs, 5_000_000)

    store.remove('/a.txt')
    assert.equal(refcount(store, 4), 0)
    store.mkdir('/empty', { owner: OWNER })
    assert.deepEqual(store.remove('/empty'), { files: 0, dirs: 1, bytes: 0 })
    const u = store.usage()
    assert.equal(u.files, 1)
    assert.equal(u.dirs, 2)
    assert.equal(u.bytes, 100)
  })

  it('renames files, subtrees, and a file over an existing file', () => {
    store.mkdir('/src/sub/deep', { owner: OWNER, parents: true })
    store.mkdir('/dst', { owner: OWNER })
    store.mkdir('/srcx', { owner: OWNER })
    store.commitFile('/src/f', file([0]))
    store.commitFile('/src/sub/g', file([1]))
    store.commitFile('/src/sub/deep/h', file([2]))
    store.commitFile('/srcx/keep', file([3]))

    clock = 7_000_000
    const moved = store.rename('/src', '/dst/moved')
    assert.equal(moved.path, '/dst/moved')
    assert.equal(moved.type, 'dir')
    assert.equal(store.tryStat('/src'), undefined)
    assert.deepEqual(store.list('/dst/moved').map(e => e.path), ['/dst/moved/f', '/dst/moved/sub'])
    assert.deepEqual(store.list('/dst/moved/sub').map(e => e.path), ['/dst/moved/sub/deep', '/dst/moved/sub/g'])
    assert.deepEqual(store.getManifest('/dst/moved/sub/deep/h').chunks.map(c => c.cid), [cids[2]])
    assert.deepEqual(store.list('/srcx').map(e => e.path), ['/srcx/keep'], 'a sibling sharing the prefix is untouched')
    assert.deepEqual([0, 1, 2].map(i => refcount(store, i)), [1, 1, 1])
    assert.equal(store.stat('/dst').mtimeMs, 7_000_000)

    // a file renamed over a file replaces it and releases the old one's chunks
    store.rename('/dst/moved/f', '/srcx/keep')
    assert.deepEqual(store.getManifest('/srcx/keep').chunks.map(c => c.cid), [cids[0]])
    assert.equal(store.tryStat('/dst/moved/f'), undefined)
    assert.equal(refcount(store, 3), 0)
    assert.equal(refcount(store, 0), 1)

    // a plain file rename, and a rename onto itself
    assert.equal(store.rename('/srcx/keep', '/renamed').path, '/renamed')
    assert.equal(store.rename('/renamed', '//renamed/').path, '/renamed')
    assert.equal(store.getManifest('/renamed').version, 1)

    // multi-byte names move intact
    store.mkdir('/日本/é', { owner: OWNER, parents: true })
    store.commitFile('/日本/é/ü', file([5]))
    store.rename('/日本', '/ñ')
    assert.equal(store.stat('/ñ/é/ü').type, 'file')
    assert.deepEqual(store.list('/ñ/é').map(e => e.path), ['/ñ/é/ü'])
  })

  it('rename refusals', () => {
    store.mkdir('/a/b', { owner: OWNER, parents: true })
    store.mkdir('/c', { owner: OWNER })
    store.commitFile('/f', file([0]))
    store.commitFile('/g', file([1]))
    assert.throws(() => store.rename('/a', '/a/b/inside'), { name: 'InvalidPathError', message: /into itself/ })
    assert.throws(() => store.rename('/a', '/a/x'), { name: 'InvalidPathError' })
    assert.throws(() => store.rename('/', '/x'), { name: 'InvalidPathError' })
    assert.throws(() => store.rename('/nope', '/x'), { name: 'NotFoundError' })
    assert.throws(() => store.rename('/f', '/missing/f'), { name: 'NotFoundError' })
    assert.throws(() => store.rename('/f', '/g/f'), { name: 'NotADirectoryError' })
    assert.throws(() => store.rename('/a', '/c'), { name: 'AlreadyExistsError' })
    assert.throws(() => store.rename('/f', '/c'), { name: 'AlreadyExistsError' })
    assert.throws(() => store.rename('/c', '/f'), { name: 'AlreadyExistsError' })
    assert.throws(() => store.rename('/a/b', '/a'), { name: 'AlreadyExistsError' })
    assert.deepEqual([0, 1].map(i => refcount(store, i)), [1, 1])
  })

  it('rename refuses to push a path below the moved directory past the path limit', () => {
    // the deepest path is exactly 4096 bytes: 2 + 16 × 255 + 14
    const dir = '/d' + ('/' + 'x'.repeat(254)).repeat(16)
    const deep = `${dir}/${'y'.repeat(13)}`
    assert.equal(Buffer.byteLength(deep), 4096)
    store.mkdir(dir, { owner: OWNER, parents: true })
    store.commitFile(deep, file([0]))
    for (const dst of ['/dd', '/é']) {
      assert.throws(() => store.rename('/d', dst), { name: 'InvalidPathError', message: /longer than 4096 bytes/ }, dst)
    }
    assert.equal(store.stat(deep).type, 'file', 'nothing moved')
    assert.equal(store.rename('/d', '/e').path, '/e', 'a move that keeps every path within the limit')
    assert.equal(store.stat('/e' + deep.slice(2)).type, 'file')
  })

  it('records chunk locations', () => {
    store.commitFile('/f', file([0, 1], 100, { locations: [{ cid: cids[0], peerIds: ['p2', 'p1'] }, { cid: cids[1], peerIds: ['p1'] }] }))
    assert.deepEqual(store.chunkLocations(cids[0]), ['p1', 'p2'])
    assert.equal(store.addChunkLocation(cids[1], 'p3'), true)
    assert.equal(store.addChunkLocation(cids[1], 'p3'), false)
    assert.deepEqual(store.chunkLocations(cids[1]), ['p1', 'p3'])
    assert.equal(store.removeChunkLocation(cids[0], 'p2'), true)
    assert.equal(store.removeChunkLocation(cids[0], 'p2'), false)
    assert.deepEqual(store.chunkLocations(cids[0]), ['p1'])
    assert.deepEqual(store.chunksOnPeer('p1'), [cids[0], cids[1]].sort())
    assert.deepEqual(store.chunkLocations(cids[9]), [])
    assert.throws(() => store.addChunkLocation(cids[9], 'p1'), { name: 'UnknownChunkError' })
    assert.throws(() => store.addChunkLocation('not-a-cid', 'p1'), { name: 'InvalidCidError' })
    assert.throws(() => store.addChunkLocation(cids[0], 'p1', { size: 5 }), { name: 'InvalidManifestError' })

    // a chunk pushed ahead of its commit is registered unreferenced, so it is collectable if the commit never comes
    clock = 2_000_000
    assert.equal(store.addChunkLocation(cids[9], 'p4', { size: 100 }), true)
    assert.deepEqual(store.getChunk(cids[9]), { cid: cids[9], size: 100, refcount: 0, zeroSinceMs: 2_000_000, target: 0, hotTarget: 0, locations: ['p4'] })
    assert.equal(store.usage().storedBytes, 400)
    assert.equal(store.usage().uniqueBytes, 200)
  })

  it('keeps each chunk\'s replica target, the most its files asked for, and lists it under-replicated by that', () => {
    store.commitFile('/backup', file([0, 1], 100, { replication: 3, locations: [{ cid: cids[0], peerIds: ['p1', 'p2'] }, { cid: cids[1], peerIds: ['p1', 'p2'] }] }))
    store.commitFile('/other', file([1], 100, { replication: 2 }))
    store.commitFile('/plain', file([2], 100, { locations: [{ cid: cids[2], peerIds: ['p1'] }] }))
    assert.equal(store.getChunk(cids[1])?.target, 3, 'a second file asking for fewer copies lowers nothing')
    const under = store.underReplicatedChunks(['p1', 'p2'], 2)
    assert.deepEqual(under.map(c => [c.cid, c.copies, c.target]).sort(), [[cids[0], 2, 3], [cids[1], 2, 3], [cids[2], 1, 2]].sort())
    assert.deepEqual(store.underReplicatedChunks(['p1', 'p2', 'p3'], 4).map(c => c.target), [4, 4, 4], 'the default target is a floor')
  })

  it('garbageChunks honours the grace period; forgetChunk refuses a live chunk', () => {
    store.commitFile('/a', file([0, 1], 100, { locations: [{ cid: cids[0], peerIds: ['p1', 'p2'] }] }))
    store.commitFile('/b', file([1]))
    clock = 10_000_000
    store.remove('/a')
    clock = 10_500_000
    store.remove('/b')

    const grace = 1_000_000
    assert.deepEqual(store.garbageChunks(grace, 10_000_000), [])
    assert.deepEqual(store.garbageChunks(grace, 11_000_000), [], 'exactly the grace period is not longer than it')
    assert.deepEqual(store.garbageChunks(grace, 11_000_001), [{ cid: cids[0], size: 100, locations: ['p1', 'p2'] }])
    assert.deepEqual(store.garbageChunks(grace, 12_000_000).map(g => g.cid), [cids[0], cids[1]])
    assert.deepEqual(store.garbageChunks(grace, 12_000_000, 1).map(g => g.cid), [cids[0]])
    assert.equal(store.garbageChunks(grace).length, 0, 'defaults to the store clock (10.5e6)')

    // a chunk referenced again between listing and collection is not forgotten
    store.commitFile('/c', file([1]))
    assert.equal(store.forgetChunk(cids[1]), false)
    assert.equal(refcount(store, 1), 1)
    assert.deepEqual(store.garbageChunks(grace, 99_000_000).map(g => g.cid), [cids[0]])

    assert.equal(store.forgetChunk(cids[0]), true)
    assert.equal(store.getChunk(cids[0]), undefined)
    assert.deepEqual(store.chunkLocations(cids[0]), [])
    assert.deepEqual(store.chunksOnPeer('p1'), [])
    assert.deepEqual(store.garbageChunks(grace, 99_000_000), [])
  })

  it('persists across stop/start', () => {
    store.mkdir('/a/b', { owner: OWNER, parents: true })
    store.commitFile('/a/b/f', file([0, 1], 100, { locations: [{ cid: cids[0], peerIds: ['p1'] }] }))
    store.commitFile('/a/b/f', file([1, 2]))
    store.setAttributes('/a', { mode: 0o711 })
    const before = { usage: store.usage(), entry: store.stat('/a/b/f'), manifest: store.getManifest('/a/b/f') }
    store.stop()
    assert.throws(() => store.stat('/'), { name: 'NotStartedError' })

    store = new MetadataStore({ path, now: () => clock })
    store.start()
    assert.deepEqual(store.usage(), before.usage)
    assert.deepEqual(store.stat('/a/b/f'), before.entry)
    assert.deepEqual(store.getManifest('/a/b/f'), before.manifest)
    assert.equal(store.stat('/a').mode, 0o711)
    assert.deepEqual(store.chunkLocations(cids[0]), ['p1'])
    assert.deepEqual([0, 1, 2].map(i => refcount(store, i)), [0, 1, 1])
    assert.equal(store.getChunk(cids[0])?.zeroSinceMs, 1_000_000)
  })

  it('upgrades a version 1 database in place, keeping its files', async () => {
    store.commitFile('/f', file([0], 100, { locations: [{ cid: cids[0], peerIds: ['p1'] }] }))
    await rewriteSchema(1, 'DROP TRIGGER entry_id_kept; DROP TABLE entry_id_floor; DROP INDEX chunk_hot; ALTER TABLE chunk DROP COLUMN hot_target; ALTER TABLE chunk DROP COLUMN target')
    store = new MetadataStore({ path })
    store.start()
    assert.equal(store.stat('/f').size, 100)
    assert.equal(store.getChunk(cids[0])?.target, 0)
    assert.deepEqual(store.underReplicatedChunks(['p1'], 2).map(c => c.cid), [cids[0]])
  })

  it('upgrades a version 2 database in place: no chunk is hot', async () => {
    store.commitFile('/f', file([0], 100, { locations: [{ cid: cids[0], peerIds: ['p1'] }] }))
    await rewriteSchema(2, 'DROP TRIGGER entry_id_kept; DROP TABLE entry_id_floor; DROP INDEX chunk_hot; ALTER TABLE chunk DROP COLUMN hot_target')
    store = new MetadataStore({ path })
    store.start()
    assert.equal(store.getChunk(cids[0])?.hotTarget, 0)
    assert.deepEqual(store.hotChunks(), [])
  })

  it('a hot target raises the copies repair restores a chunk to, and lists the chunk until cleared', () => {
    store.commitFile('/f', file([0], 100, { locations: [{ cid: cids[0], peerIds: ['p1', 'p2'] }] }))
    assert.deepEqual(store.underReplicatedChunks(['p1', 'p2'], 2), [])
    assert.equal(store.setHotTarget(cids[0], 4), true)
    assert.deepEqual(store.underReplicatedChunks(['p1', 'p2'], 2).map(c => [c.cid, c.copies, c.target]), [[cids[0], 2, 4]])
    assert.equal(store.hotChunkCount(2), 1)
    assert.deepEqual(store.hotChunks().map(c => [c.cid, c.hotTarget]), [[cids[0], 4]])
    store.setHotTarget(cids[0], 2)
    assert.equal(store.hotChunkCount(2), 0, 'at the base it is no longer above it')
    assert.equal(store.hotChunks().length, 1, 'but stays listed until cleared, so its extra copies are trimmed')
    store.setHotTarget(cids[0], 0)
    assert.deepEqual(store.hotChunks(), [])
    assert.equal(store.setHotTarget('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', 3), false)
    assert.throws(() => store.setHotTarget(cids[0], -1), { name: 'InvalidAttributeError' })
  })

  it('never gives an entry id out twice, so a file created again is told from the one removed', async () => {
    const first = store.commitFile('/f', file([0]))
    assert.ok(first.id > 0)
    assert.equal(store.rename('/f', '/g').id, first.id, 'a rename keeps the id')
    assert.equal(store.commitFile('/g', file([1])).id, first.id, 'so does a new version')
    // /g is the newest entry: SQLite alone would give its id to the next one
    store.remove('/g')
    const again = store.commitFile('/g', file([0]))
    assert.equal(again.version, first.version)
    assert.ok(again.id > first.id, `a new file gets a new id (${again.id} after ${first.id})`)
    store.remove('/g')
    assert.ok(store.mkdir('/d', { owner: OWNER }).id > again.id, 'directories too')
  })

  it('upgrades a version 3 database in place: ids already removed are not given out again', async () => {
    store.commitFile('/a', file([0]))
    const newest = store.commitFile('/b', file([1]))
    store.remove('/b')
    await rewriteSchema(3, 'DROP TRIGGER entry_id_kept; DROP TABLE entry_id_floor;')
    store = new MetadataStore({ path })
    store.start()
    assert.equal(store.stat('/a').size, 100)
    // The largest id in use is the floor: the removed /b's id was already free before the upgrade, and is reused
    // once; from then on, nothing is
    const c = store.commitFile('/c', file([1]))
    assert.ok(c.id >= newest.id)
    store.remove('/c')
    assert.ok(store.commitFile('/c', file([1])).id > c.id)
  })

  it('refuses a database from a newer schema', async () => {
    await rewriteSchema(99)
    store = new MetadataStore({ path })
    assert.throws(() => store.start(), { name: 'SchemaVersionError' })
    assert.equal(store.isStarted(), false)
  })

  it('setAttributes changes mode, owner and mtime', () => {
    store.commitFile('/f', file([0]))
    clock = 4_000_000
    const e = store.setAttributes('/f', { mode: 0o600, owner: 'bob.home.collective.local', mtimeMs: 123 })
    assert.equal(e.mode, 0o600)
    assert.equal(e.owner, 'bob.home.collective.local')
    assert.equal(e.mtimeMs, 123)
    assert.equal(e.ctimeMs, 4_000_000)
    assert.throws(() => store.setAttributes('/nope', { mode: 0o600 }), { name: 'NotFoundError' })
    assert.throws(() => store.setAttributes('/f', { mode: -1 }), { name: 'InvalidAttributeError' })
  })

  it('lists a large directory page by page', () => {
    store.mkdir('/big', { owner: OWNER })
    store.batch(() => {
      for (let i = 0; i < 2000; i++) store.commitFile(`/big/f${String(i).padStart(4, '0')}`, file([i % 10]))
    })
    const seen: string[] = []
    let after: string | undefined
    for (;;) {
      const page = store.list('/big', { after, limit: 500 })
      if (page.length === 0) break
      seen.push(...page.map(e => e.path))
      after = page[page.length - 1].path.slice('/big/'.length)
    }
    assert.equal(seen.length, 2000)
    assert.equal(seen[0], '/big/f0000')
    assert.equal(seen[1999], '/big/f1999')
    assert.equal(refcount(store, 3), 200)
    const plan = store['database']().prepare('EXPLAIN QUERY PLAN SELECT * FROM entry WHERE parent = ? AND name > ? ORDER BY name LIMIT ?').all('/big', '', 10) as Array<{ detail: string }>
    assert.ok(plan.some(r => r.detail.includes('entry_children')), JSON.stringify(plan))
  })
})
