import assert from 'node:assert/strict'
import { afterEach, before, beforeEach, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { DataStoreRegistry } from '../../../src/permissions/datastores.js'
import { InviteStore } from '../../../src/permissions/invites.js'
import type { PermissionsDatabase } from '../../../src/permissions/database.js'
import { ALICE, BOB, alice, bob, caller, carol, openDatabase } from './fixtures.js'

const DAY = 24 * 3_600_000

describe('InviteStore', () => {
  let clock: number
  let db: PermissionsDatabase
  let reg: DataStoreRegistry
  let invites: InviteStore
  let newcomer: string
  let other: string

  before(async () => {
    newcomer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  })

  beforeEach(() => {
    clock = 1_000_000
    db = openDatabase()
    const components = { database: db, logger: defaultLogger(), now: () => clock }
    reg = new DataStoreRegistry(components)
    invites = new InviteStore({ ...components, datastores: reg })
    reg.create(carol, { path: '/shared' })
    reg.create(carol, { path: '/photos' })
  })
  afterEach(() => { db.stop() })

  it('admits a brand-new identity as a guest with exactly the granted access', () => {
    const { code, invite } = invites.create(carol, { grants: [{ path: '/shared', rights: ['read', 'write'] }], maxUses: 1, validForMs: 7 * DAY })
    assert.match(code, /^[a-z2-7]{26}$/)
    assert.equal(invite.id.length, 8)
    assert.deepEqual({ ...invite, id: '' }, { id: '', grants: [{ path: '/shared', rights: ['read', 'write'] }], maxUses: 1, uses: 0, expiresAtMs: clock + 7 * DAY, createdAtMs: clock, createdBy: 'carol@office.collective.local' })

    const r = invites.redeem(code.toUpperCase(), newcomer, 'Dave', clock + 1)
    assert.equal(r.name, 'guest-dave@office.collective.local')
    assert.equal(r.local, 'guest-dave')
    assert.equal(r.peerId, newcomer)
    assert.deepEqual(r.grants.map(g => [g.path, g.subject, g.grantor, g.rights.join('+')]), [['/shared', r.name, 'carol@office.collective.local', 'read+write']])
    // the certificate carol's CA issues names the guest; the handshake then reports it as a component of carol
    const dave = caller('carol', 'office.collective.local', r.local)
    assert.deepEqual(reg.rights(dave, '/shared/x'), ['read', 'write'])
    assert.deepEqual(reg.rights(dave, '/photos'), [])
    assert.equal(invites.list()[0].uses, 1)
  })

  it('answers a retry of the same redemption without counting a use', () => {
    const { code } = invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }], maxUses: 2 })
    const first = invites.redeem(code, newcomer, 'dave')
    assert.equal(first.retry, false)
    assert.deepEqual(invites.redeem(code, newcomer, 'guest-dave'), { ...first, retry: true })
    assert.equal(invites.list()[0].uses, 1)
  })

  it('is open while an invite is neither expired nor revoked, used up or not', () => {
    assert.equal(invites.hasOpen(), false)
    const { code } = invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }], maxUses: 1, validForMs: DAY })
    invites.redeem(code, newcomer, 'dave')
    // used up, but a newcomer whose answer was lost must still reach the coordinator to repeat its redemption
    assert.equal(invites.hasOpen(), true)
    assert.equal(invites.hasOpen(clock + DAY), false)
    const second = invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }] })
    invites.revoke(carol, second.invite.id)
    assert.equal(invites.hasOpen(clock + DAY), false)
  })

  it('refuses exhausted, expired, revoked, unknown and malformed codes, counting nothing', () => {
    const once = invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }] })
    invites.redeem(once.code, newcomer, 'dave')
    assert.throws(() => invites.redeem(once.code, other, 'erin'), { name: 'InviteExhaustedError' })

    const short = invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }], validForMs: 90 * 60_000 })
    assert.throws(() => invites.redeem(short.code, other, 'erin', clock + 90 * 60_000), { name: 'InviteExpiredError' })

    const revoked = invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }] })
    assert.equal(invites.revoke(carol, revoked.invite.id).revokedAtMs, clock)
    assert.throws(() => invites.redeem(revoked.code, other, 'erin'), { name: 'InviteRevokedError' })

    assert.throws(() => invites.redeem('a'.repeat(26), other, 'erin'), { name: 'UnknownInviteError' })
    for (const bad of ['', 'abc', once.code + 'a', once.code.slice(0, 25) + '1']) {
      assert.throws(() => invites.redeem(bad, other, 'erin'), { name: 'InvalidJoinStringError' }, bad)
    }
    assert.deepEqual(invites.list().map(i => i.uses).sort(), [0, 0, 1])
    assert.deepEqual(reg.grants('/shared').map(g => g.subject), ['guest-dave@office.collective.local'])
  })

  it('validates the request before counting a use', () => {
    const { code } = invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }], maxUses: 5 })
    assert.throws(() => invites.redeem(code, 'not-a-peer-id', 'dave'), { name: 'InvalidRedemptionError' })
    assert.throws(() => invites.redeem(code, newcomer, 'Dave Smith'), { name: 'InvalidRedemptionError' })
    assert.throws(() => invites.redeem(code, newcomer, ''), { name: 'InvalidRedemptionError' })
    assert.throws(() => invites.redeem(code, newcomer, 'x'.repeat(60)), { name: 'InvalidRedemptionError' })
    invites.redeem(code, newcomer, 'dave')
    assert.throws(() => invites.redeem(code, other, 'dave'), { name: 'GuestNameTakenError' })
    assert.throws(() => invites.redeem(code, newcomer, 'dave2'), { name: 'InvalidRedemptionError' })
    assert.equal(invites.list()[0].uses, 1)
  })

  it('re-checks the creator\'s authority at redemption', () => {
    reg.grant(carol, { path: '/shared', subject: ALICE, rights: ['read', 'write', 'share'] })
    const { code } = invites.create(alice, { grants: [{ path: '/shared', rights: ['read'] }] })
    reg.revoke(carol, { path: '/shared', subject: ALICE, rights: ['share'] })
    assert.throws(() => invites.redeem(code, newcomer, 'dave'), { name: 'PermissionDeniedError' })
    assert.equal(invites.list()[0].uses, 0)
    assert.deepEqual(reg.grants('/shared').map(g => g.subject), [ALICE])
  })

  it('refuses invites the creator could not grant, and bad definitions', () => {
    assert.throws(() => invites.create(bob, { grants: [{ path: '/shared', rights: ['read'] }] }), { name: 'PermissionDeniedError' })
    reg.grant(carol, { path: '/shared', subject: BOB, rights: ['read', 'share'] })
    assert.throws(() => invites.create(bob, { grants: [{ path: '/shared', rights: ['read', 'write'] }] }), /missing right: write/)
    invites.create(bob, { grants: [{ path: '/shared/sub', rights: ['read'] }] })
    assert.throws(() => invites.create(carol, { grants: [] }), { name: 'InvalidInviteError' })
    assert.throws(() => invites.create(carol, { grants: [{ path: '/shared', rights: [] }] }), { name: 'InvalidInviteError' })
    assert.throws(() => invites.create(carol, { grants: [{ path: '/nowhere', rights: ['read'] }] }), { name: 'NoSuchDataStoreError' })
    assert.throws(() => invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }], maxUses: 0 }), { name: 'InvalidInviteError' })
    assert.throws(() => invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }], validForMs: 400 * DAY }), { name: 'InvalidInviteError' })
    assert.throws(() => invites.create(caller('carol', 'office.collective.local', 'guest-x'), { grants: [{ path: '/shared', rights: ['read'] }] }), { name: 'PermissionDeniedError' })
    assert.equal(invites.list().length, 1)
  })

  it('lets only the creating member revoke, by code or id', () => {
    const { code, invite } = invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }] })
    assert.throws(() => invites.revoke(bob, invite.id), { name: 'PermissionDeniedError' })
    assert.throws(() => invites.revoke(carol, 'ffffffff'), { name: 'UnknownInviteError' })
    assert.equal(invites.revoke(caller('carol', 'office.collective.local', 'coordinator'), code).id, invite.id)
  })
})
