import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, beforeEach, describe, it } from 'node:test'
import { defaultLogger } from '@libp2p/logger'
import { DataStoreRegistry } from '../../../src/permissions/datastores.js'
import type { PermissionsDatabase } from '../../../src/permissions/database.js'
import type { Right } from '../../../src/permissions/rights.js'
import type { Caller } from '../../../src/permissions/subjects.js'
import { ALICE, BOB, CAROL, alice, bob, caller, carol, openDatabase } from './fixtures.js'

const HOUR = 3_600_000
const dave = caller('dave', 'attic.collective.local')
const guest = caller('carol', 'office.collective.local', 'guest-erin')

function denied (fn: () => unknown, subject: string, path: string, right: Right): void {
  assert.throws(fn, (err: any) => {
    assert.equal(err.name, 'PermissionDeniedError')
    assert.equal(err.subject, subject)
    assert.equal(err.path, path)
    assert.equal(err.right, right)
    assert.match(err.message, new RegExp(`^permission denied: ${subject.replace(/\./g, '\\.')} .*${path}.*\\(missing right: ${right}\\)$`))
    return true
  })
}

describe('DataStoreRegistry', () => {
  let clock: number
  let db: PermissionsDatabase
  let reg: DataStoreRegistry

  beforeEach(() => {
    clock = 1_000_000
    db = openDatabase()
    reg = new DataStoreRegistry({ database: db, logger: defaultLogger(), now: () => clock })
  })
  afterEach(() => { db.stop() })

  /** The seed's example: /media (alice; bob read+write, carol read), /backup (bob; federation-wide read+write), /shared (carol; alice read+write+share) */
  function seed (): void {
    reg.create(alice, { path: '/media', strategy: 'media', replicas: 2 })
    reg.grant(alice, { path: '/media', subject: BOB, rights: ['read', 'write'] })
    reg.grant(alice, { path: '/media', subject: CAROL, rights: ['read'] })
    reg.create(bob, { path: '/backup', strategy: 'backup', replicas: 3 })
    reg.grant(bob, { path: '/backup', subject: '*@*.collective.local', rights: ['read', 'write'] })
    reg.create(carol, { path: '/shared', strategy: 'hybrid' })
    reg.grant(carol, { path: '/shared', subject: ALICE, rights: ['read', 'write', 'share'] })
  }

  it('creates DataStores owned by the caller\'s member, with defaults', () => {
    const ds = reg.create(caller('alice', 'home.collective.local', 'coordinator'), { path: '/media/' })
    assert.deepEqual(ds, { path: '/media', owner: ALICE, strategy: 'hybrid', replicas: 2, createdAtMs: clock, version: 1 })
    assert.deepEqual(reg.get('/media'), ds)
    assert.deepEqual(reg.datastoreOf('/media/a/b').path, '/media')
    assert.throws(() => reg.datastoreOf('/other/x'), { name: 'NoSuchDataStoreError' })
  })

  it('refuses duplicates, nesting, / and bad definitions, and keeps nothing', () => {
    reg.create(alice, { path: '/media' })
    assert.throws(() => reg.create(bob, { path: '/media' }), { name: 'DataStoreExistsError' })
    assert.throws(() => reg.create(bob, { path: '/media/films' }), { name: 'NestedDataStoreError' })
    reg.create(bob, { path: '/a/b' })
    assert.throws(() => reg.create(bob, { path: '/a' }), { name: 'NestedDataStoreError' })
    reg.create(bob, { path: '/a.b' }) // a sibling whose name sorts inside the range of /a's subtree scan
    assert.throws(() => reg.create(alice, { path: '/' }), { name: 'InvalidDataStoreError' })
    assert.throws(() => reg.create(alice, { path: '/x', strategy: 'fast' as any }), { name: 'InvalidDataStoreError' })
    assert.throws(() => reg.create(alice, { path: '/x', replicas: 0 }), { name: 'InvalidDataStoreError' })
    assert.throws(() => reg.create(alice, { path: '/x', replicas: 1.5 }), { name: 'InvalidDataStoreError' })
    assert.throws(() => reg.create(alice, { path: 'x' }), { name: 'InvalidPathError' })
    assert.throws(() => reg.create(guest, { path: '/x' }), { name: 'PermissionDeniedError' })
    assert.deepEqual(reg.list().map(d => d.path), ['/a.b', '/a/b', '/media'])
  })

  it('works the seed\'s example exactly', () => {
    seed()
    const rights = (who: Caller, path: string): string => reg.rights(who, path).join('+')
    assert.equal(rights(alice, '/media'), 'read+write+delete+share')
    assert.equal(rights(bob, '/media/films/x.mkv'), 'read+write')
    assert.equal(rights(carol, '/media'), 'read')
    assert.equal(rights(dave, '/media'), '')
    assert.equal(rights(bob, '/backup'), 'read+write+delete+share')
    for (const who of [alice, carol, dave]) assert.equal(rights(who, '/backup/2026'), 'read+write')
    assert.equal(rights(guest, '/backup'), '')
    assert.equal(rights(carol, '/shared'), 'read+write+delete+share')
    assert.equal(rights(alice, '/shared/x'), 'read+write+share')
    assert.equal(rights(bob, '/shared'), '')
    assert.deepEqual(reg.grants('/media').map(g => `${g.subject}:${g.rights.join('+')}`), [`${BOB}:read+write`, `${CAROL}:read`])
  })

  it('grants and denies every right separately, naming the path and the missing right', () => {
    reg.create(alice, { path: '/media' })
    for (const right of ['read', 'write', 'delete', 'share'] as Right[]) {
      denied(() => { reg.check(bob, '/media/x', right) }, BOB, '/media/x', right)
      reg.grant(alice, { path: '/media', subject: BOB, rights: [right] })
      reg.check(bob, '/media/x', right)
      for (const other of ['read', 'write', 'delete', 'share'] as Right[]) {
        if (other !== right) denied(() => { reg.check(bob, '/media/x', other) }, BOB, '/media/x', other)
      }
      reg.revoke(alice, { path: '/media', subject: BOB })
    }
    assert.throws(() => reg.check(bob, '/media', 'own' as any), { name: 'InvalidRightsError' })
  })

  it('lets a sharer grant at most its own rights, at the DataStore or below it', () => {
    seed()
    // alice holds read+write+share on carol's /shared
    reg.grant(alice, { path: '/shared', subject: BOB, rights: ['read'] })
    assert.deepEqual(reg.rights(bob, '/shared/x'), ['read'])
    denied(() => reg.grant(alice, { path: '/shared/sub', subject: BOB, rights: ['read', 'delete'] }), ALICE, '/shared/sub', 'delete')
    assert.throws(() => reg.grant(alice, { path: '/shared', subject: BOB, rights: ['delete'] }), /may not grant delete on \/shared \(missing right: delete\)/)
    // bob has no share: he cannot pass anything on
    denied(() => reg.grant(bob, { path: '/shared', subject: 'dave@attic.collective.local', rights: ['read'] }), BOB, '/shared', 'share')
    // nothing changed by the refusals
    assert.deepEqual(reg.rights(bob, '/shared/sub'), ['read'])
    assert.equal(reg.grants('/shared').length, 2)
  })

  it('inherits grants down the tree; a grant below adds rights only there', () => {
    reg.create(alice, { path: '/media' })
    reg.grant(alice, { path: '/media', subject: BOB, rights: ['read'] })
    reg.grant(alice, { path: '/media/inbox', subject: BOB, rights: ['write'] })
    assert.deepEqual(reg.rights(bob, '/media'), ['read'])
    assert.deepEqual(reg.rights(bob, '/media/inbox'), ['read', 'write'])
    assert.deepEqual(reg.rights(bob, '/media/inbox/a/b'), ['read', 'write'])
    assert.deepEqual(reg.rights(bob, '/media/inboxes'), ['read'])
    assert.throws(() => reg.grant(alice, { path: '/elsewhere', subject: BOB, rights: ['read'] }), { name: 'NoSuchDataStoreError' })
  })

  it('caps a sharer\'s grant below by its own rights there, and withdraws it with the sharer\'s share', () => {
    seed()
    // carol gives alice delete on one subdirectory only; alice may pass it on there but not above it
    reg.grant(carol, { path: '/shared/tmp', subject: ALICE, rights: ['delete'] })
    reg.grant(alice, { path: '/shared/tmp', subject: BOB, rights: ['read', 'delete'] })
    denied(() => reg.grant(alice, { path: '/shared', subject: BOB, rights: ['delete'] }), ALICE, '/shared', 'delete')
    assert.deepEqual(reg.rights(bob, '/shared/tmp/x'), ['read', 'delete'])
    assert.deepEqual(reg.rights(bob, '/shared/other'), [])
    // carol takes alice's delete back: bob's delete goes with it, his read stays
    reg.revoke(carol, { path: '/shared/tmp', subject: ALICE, rights: ['delete'] })
    assert.deepEqual(reg.rights(bob, '/shared/tmp/x'), ['read'])
    // carol takes alice's share: everything alice passed on stops counting
    reg.revoke(carol, { path: '/shared', subject: ALICE, rights: ['share'] })
    assert.deepEqual(reg.rights(bob, '/shared/tmp/x'), [])
    assert.deepEqual(reg.rights(alice, '/shared/tmp/x'), ['read', 'write'])
  })

  it('survives sharing cycles', () => {
    reg.create(carol, { path: '/shared' })
    reg.grant(carol, { path: '/shared', subject: ALICE, rights: ['read', 'share'] })
    reg.grant(alice, { path: '/shared', subject: BOB, rights: ['read', 'share'] })
    reg.grant(bob, { path: '/shared', subject: ALICE, rights: ['read', 'share'] })
    assert.deepEqual(reg.rights(bob, '/shared'), ['read', 'share'])
    reg.revoke(carol, { path: '/shared', subject: ALICE })
    // alice's and bob's grants to each other only held through carol's; neither keeps anything
    assert.deepEqual(reg.rights(alice, '/shared'), [])
    assert.deepEqual(reg.rights(bob, '/shared'), [])
  })

  it('applies wildcard subjects to members, not to guests', () => {
    reg.create(bob, { path: '/backup' })
    reg.grant(bob, { path: '/backup', subject: '*@home.collective.local', rights: ['read'] })
    assert.deepEqual(reg.rights(caller('alice', 'home.collective.local', 'node-07'), '/backup'), ['read'])
    assert.deepEqual(reg.rights(carol, '/backup'), [])
    assert.deepEqual(reg.rights(caller('alice', 'home.collective.local', 'guest-zed'), '/backup'), [])
    reg.grant(bob, { path: '/backup', subject: 'guest-zed@home.collective.local', rights: ['read', 'write'] })
    assert.deepEqual(reg.rights(caller('alice', 'home.collective.local', 'guest-zed'), '/backup'), ['read', 'write'])
  })

  it('lets grants expire on the injected clock', () => {
    reg.create(alice, { path: '/media' })
    reg.grant(alice, { path: '/media', subject: BOB, rights: ['read'], expiresAtMs: clock + HOUR })
    reg.grant(alice, { path: '/media', subject: BOB, rights: ['write'], expiresAtMs: clock + 2 * HOUR })
    reg.check(bob, '/media/x', 'read')
    clock += HOUR
    denied(() => { reg.check(bob, '/media/x', 'read') }, BOB, '/media/x', 'read')
    reg.check(bob, '/media/x', 'write')
    assert.deepEqual(reg.grants('/media').map(g => g.rights), [['write']])
    // an explicit `now` wins over the clock
    reg.check(bob, '/media/x', 'read', clock - 1)
    assert.throws(() => reg.grant(alice, { path: '/media', subject: CAROL, rights: ['read'], expiresAtMs: clock }), { name: 'InvalidGrantError' })
    clock += HOUR
    assert.equal(reg.pruneExpired(), 2)
    assert.deepEqual(reg.grants('/media'), [])
  })

  it('expires a sharer\'s grants with the sharer\'s own', () => {
    reg.create(carol, { path: '/shared' })
    reg.grant(carol, { path: '/shared', subject: ALICE, rights: ['read', 'share'], expiresAtMs: clock + HOUR })
    reg.grant(alice, { path: '/shared', subject: BOB, rights: ['read'] })
    assert.deepEqual(reg.rights(bob, '/shared'), ['read'])
    clock += HOUR
    assert.deepEqual(reg.rights(bob, '/shared'), [])
  })

  it('tells when a right lapses by expiry, through sharing chains, so capabilities can be cut to it', () => {
    reg.create(carol, { path: '/shared' })
    reg.grant(carol, { path: '/shared', subject: ALICE, rights: ['read', 'share'], expiresAtMs: clock + HOUR })
    reg.grant(alice, { path: '/shared', subject: BOB, rights: ['read'], expiresAtMs: clock + 3 * HOUR })
    reg.grant(carol, { path: '/shared/docs', subject: BOB, rights: ['read'], expiresAtMs: clock + 2 * HOUR })
    assert.equal(reg.lapseOf(carol, '/shared/x', 'read', 10 * HOUR), undefined, 'the owner\'s rights never lapse')
    assert.equal(reg.lapseOf(alice, '/shared/x', 'read', 10 * HOUR), clock + HOUR)
    // bob's read comes through alice's share, which goes first; under /docs carol's own grant holds an hour longer
    assert.equal(reg.lapseOf(bob, '/shared/x', 'read', 10 * HOUR), clock + HOUR)
    assert.equal(reg.lapseOf(bob, '/shared/docs/y', 'read', 10 * HOUR), clock + 2 * HOUR)
    assert.equal(reg.lapseOf(bob, '/shared/docs/y', 'read', HOUR), undefined, 'beyond the horizon: not soon')
    reg.grant(carol, { path: '/shared', subject: BOB, rights: ['read'] })
    assert.equal(reg.lapseOf(bob, '/shared/x', 'read', 10 * HOUR), undefined, 'a grant without expiry keeps it')
  })

  it('revokes some or all rights; owners revoke any grant, sharers only their own', () => {
    seed()
    assert.deepEqual(reg.revoke(alice, { path: '/media', subject: BOB, rights: ['write'] }), ['write'])
    assert.deepEqual(reg.rights(bob, '/media'), ['read'])
    assert.throws(() => reg.revoke(alice, { path: '/media', subject: BOB, rights: ['write'] }), { name: 'NoSuchGrantError' })
    assert.throws(() => reg.revoke(alice, { path: '/media/x', subject: BOB }), { name: 'NoSuchGrantError' })
    reg.grant(alice, { path: '/shared', subject: BOB, rights: ['read'] })
    // carol (owner) may remove alice's grant; bob (no share) may not; alice may remove her own
    denied(() => reg.revoke(bob, { path: '/shared', subject: BOB }), BOB, '/shared', 'share')
    assert.deepEqual(reg.revoke(alice, { path: '/shared', subject: BOB }), ['read'])
    reg.grant(alice, { path: '/shared', subject: BOB, rights: ['read'] })
    assert.deepEqual(reg.revoke(carol, { path: '/shared', subject: BOB }), ['read'])
    assert.deepEqual(reg.rights(bob, '/shared'), [])
  })

  it('refuses bad grants with a clear error and stores nothing', () => {
    reg.create(alice, { path: '/media' })
    const before = reg.get('/media')?.version
    assert.throws(() => reg.grant(alice, { path: '/media', subject: 'bob', rights: ['read'] }), { name: 'InvalidSubjectError' })
    assert.throws(() => reg.grant(alice, { path: '/media', subject: BOB, rights: [] }), { name: 'InvalidRightsError' })
    assert.throws(() => reg.grant(alice, { path: '/media', subject: ALICE, rights: ['read'] }), { name: 'InvalidGrantError' })
    assert.throws(() => reg.grant(alice, { path: '/media', subject: BOB, rights: ['read'], expiresAtMs: Number.NaN }), { name: 'InvalidGrantError' })
    assert.deepEqual(reg.grants('/media'), [])
    assert.equal(reg.get('/media')?.version, before)
    reg.grant(alice, { path: '/media', subject: BOB, rights: ['read'] })
    assert.equal(reg.get('/media')?.version, (before ?? 0) + 1)
  })

  it('costs (informational): one check with 100 grants on the path', () => {
    reg.create(alice, { path: '/media' })
    for (let i = 0; i < 100; i++) reg.grant(alice, { path: '/media', subject: `m${i}@d${i}.collective.local`, rights: ['read'] })
    reg.grant(alice, { path: '/media', subject: BOB, rights: ['read', 'share'] })
    reg.grant(bob, { path: '/media/a', subject: CAROL, rights: ['read'] })
    const rounds = 500
    const t = process.hrtime.bigint()
    for (let i = 0; i < rounds; i++) reg.check(carol, '/media/a/b/c/d.mkv', 'read')
    const us = Number(process.hrtime.bigint() - t) / 1000 / rounds
    console.log(`# permission check (102 grants, one sharer hop): ${us.toFixed(0)} µs`)
    assert.ok(us > 0)
  })

  describe('on disk', () => {
    let dir: string
    beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'perms-test-')) })
    after(async () => { if (dir != null) await rm(dir, { recursive: true, force: true }) })

    it('keeps DataStores and grants across a restart', () => {
      const path = join(dir, 'nested', 'perms.sqlite')
      let disk = openDatabase(path)
      let r = new DataStoreRegistry({ database: disk, logger: defaultLogger(), now: () => clock })
      r.create(alice, { path: '/media', strategy: 'media', replicas: 3 })
      r.grant(alice, { path: '/media', subject: BOB, rights: ['read', 'write'], expiresAtMs: clock + HOUR })
      disk.stop()
      disk = openDatabase(path)
      r = new DataStoreRegistry({ database: disk, logger: defaultLogger(), now: () => clock })
      assert.equal(r.get('/media')?.replicas, 3)
      assert.deepEqual(r.grants('/media'), [{ datastore: '/media', path: '/media', subject: BOB, grantor: ALICE, rights: ['read', 'write'], expiresAtMs: clock + HOUR }])
      assert.throws(() => { new DataStoreRegistry({ database: openDatabase(':memory:'), logger: defaultLogger() }).list(); disk.stop(); r.list() }, { name: 'NotStartedError' })
    })
  })
})
