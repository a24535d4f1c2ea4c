import assert from 'node:assert/strict'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Registry, Counter, Gauge } from 'prom-client'
import { generatePeerKey } from '../../../src/identity/index.js'
import { certificateDer } from '../../../src/identity/cert-fields.js'
import { PeerIdentities } from '../../../src/net/peer-identities.js'
import { DataStoreRegistry, InviteStore } from '../../../src/permissions/index.js'
import { InviteRedemptions } from '../../../src/access/invites.js'
import { InviteMetrics } from '../../../src/access/invite-metrics.js'
import { MetaOp, MetaRequest } from '../../../src/gen/meta.js'
import { carol, openDatabase } from '../permissions/fixtures.js'
import { diskFederation } from './fixtures.js'
import type { DiskFederation } from './fixtures.js'
import type { PermissionsDatabase, Redemption } from '../../../src/permissions/index.js'
import type { PeerId } from '@libp2p/interface'

function redeemRequest (code: string, requestedName: string): MetaRequest {
  return { ...MetaRequest.decode(new Uint8Array(0)), op: MetaOp.INVITE_REDEEM, code, requestedName }
}

describe('InviteRedemptions', () => {
  let fed: DiskFederation
  let db: PermissionsDatabase
  let invites: InviteStore
  let identities: PeerIdentities
  let redemptions: InviteRedemptions
  let redeemed: Redemption[]
  let newcomer: PeerId

  before(async () => { fed = await diskFederation() })
  after(async () => { await fed.remove() })

  beforeEach(async () => {
    db = openDatabase()
    const datastores = new DataStoreRegistry({ database: db, logger: defaultLogger() })
    datastores.create(carol, { path: '/shared' })
    invites = new InviteStore({ database: db, datastores, logger: defaultLogger() })
    identities = new PeerIdentities()
    redeemed = []
    redemptions = new InviteRedemptions({ invites, issuer: await fed.carolIssuer(), trustStore: fed.trustStore(), identities, logger: defaultLogger(), onRedeemed: r => { redeemed.push(r) } })
    newcomer = peerIdFromPrivateKey(await generatePeerKey())
    identities.setUncertified(newcomer)
  })
  afterEach(() => { db.stop() })

  const serve = async (req: MetaRequest, remotePeer = newcomer, caller?: any): Promise<any> =>
    await redemptions.serve(req, { remotePeer, caller, signal: AbortSignal.timeout(5_000) })

  it('certifies the connection\'s own key as the guest, with the root and the grants', async () => {
    const { code } = invites.create(carol, { grants: [{ path: '/shared', rights: ['read', 'write'] }] })
    const res = await serve(redeemRequest(code, 'dave'))
    assert.equal(res.name, 'guest-dave@office.collective.local')
    assert.deepEqual(res.rootCertificate, certificateDer(fed.root))
    const identity = await fed.trustStore().verifyChain(res.certificates, newcomer)
    assert.deepEqual([identity.name, identity.role], [res.name, 'client'])
    assert.deepEqual(res.grants.map((g: any) => `${g.path as string} ${g.rights as string} ${g.grantor as string}`), ['/shared read+write carol@office.collective.local'])
    assert.deepEqual(redeemed.map(r => r.name), [res.name])
  })

  it('answers a retry with the same certificate, counting and announcing nothing more', async () => {
    const { code } = invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }] })
    const first = await serve(redeemRequest(code, 'erin'))
    const again = await serve(redeemRequest(code, 'erin'))
    assert.deepEqual(again.certificates, first.certificates)
    assert.equal(invites.list()[0].uses, 1)
    assert.equal(redeemed.length, 1)
  })

  it('refuses certified peers and peers the handshake did not admit, and issues nothing for a refused code', async () => {
    const { code } = invites.create(carol, { grants: [{ path: '/shared', rights: ['read'] }], maxUses: 1 })
    await assert.rejects(serve(redeemRequest(code, 'frank'), newcomer, fed.coordinator('alice').identity), { name: 'OperationNotAllowedError' })
    const stranger = peerIdFromPrivateKey(await generatePeerKey())
    await assert.rejects(serve(redeemRequest(code, 'frank'), stranger), { name: 'UnknownPeerError' })
    assert.equal(invites.list()[0].uses, 0)

    await serve(redeemRequest(code, 'frank'))
    const other = peerIdFromPrivateKey(await generatePeerKey())
    identities.setUncertified(other)
    const before = await readdir(join(fed.memberDir('carol'), 'issued'))
    await assert.rejects(serve(redeemRequest(code, 'grace'), other), { name: 'InviteExhaustedError' })
    assert.deepEqual(await readdir(join(fed.memberDir('carol'), 'issued')), before)
  })
})

describe('InviteMetrics', () => {
  it('counts open invites, and each expiry with uses left once, from the time it started', async () => {
    const db = openDatabase()
    let now = 1_000_000
    const datastores = new DataStoreRegistry({ database: db, logger: defaultLogger(), now: () => now })
    datastores.create(carol, { path: '/shared' })
    const invites = new InviteStore({ database: db, datastores, logger: defaultLogger(), now: () => now })
    const registers = [new Registry()]
    const metrics = { invitesActive: new Gauge({ name: 'active', help: 'a', registers }), invitesExpired: new Counter({ name: 'expired', help: 'e', registers }) }
    const value = async (m: Gauge | Counter): Promise<number> => (await m.get()).values[0]?.value ?? 0
    const grants = [{ path: '/shared', rights: ['read' as const] }]

    invites.create(carol, { grants, validForMs: 10 })
    invites.create(carol, { grants, validForMs: 100 })
    const used = invites.create(carol, { grants, validForMs: 100, maxUses: 1 })
    invites.redeem(used.code, peerIdFromPrivateKey(await generatePeerKey()).toString(), 'dave')
    now += 50
    const watcher = new InviteMetrics({ invites, metrics, now: () => now })
    await watcher.start()
    try {
      assert.equal(await value(metrics.invitesActive), 1)
      assert.equal(await value(metrics.invitesExpired), 0, 'it expired before the daemon started')
      now += 100
      watcher.refresh()
      watcher.refresh()
      assert.equal(await value(metrics.invitesActive), 0)
      assert.equal(await value(metrics.invitesExpired), 1, 'the used-up invite did not expire unused')
    } finally {
      await watcher.stop()
      db.stop()
    }
  })
})
