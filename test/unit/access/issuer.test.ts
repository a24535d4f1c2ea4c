import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { join } from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { X509Certificate, generatePeerKey, describeCertificate } from '../../../src/identity/index.js'
import { CertificateIssuer } from '../../../src/access/issuer.js'
import { CertificateRenewal } from '../../../src/access/renewal.js'
import { MetaOp, MetaRequest } from '../../../src/gen/meta.js'
import { renewComponent } from '../../../src/local/provision.js'
import { diskFederation } from './fixtures.js'
import type { DiskFederation } from './fixtures.js'

const DAY = 86_400_000

describe('CertificateIssuer', () => {
  let fed: DiskFederation
  before(async () => { fed = await diskFederation() })
  after(async () => { await fed.remove() })

  it('refuses a folder without a CA, and a CA that did not certify its coordinator', async () => {
    const owner = new X509Certificate(fed.coordinator('carol').chain[0].slice())
    await assert.rejects(new CertificateIssuer({ logger: defaultLogger() }, { dir: join(fed.tmp, 'nowhere'), owner }).start(), { name: 'MemberCaUnavailableError' })
    // alice's CA would name carol's guests in alice's domain
    await assert.rejects(new CertificateIssuer({ logger: defaultLogger() }, { dir: fed.memberDir('alice'), owner }).start(), (err: any) => {
      assert.equal(err.name, 'MemberCaUnavailableError')
      assert.match(err.message, /did not certify this coordinator/)
      return true
    })
  })

  it('issues chains that verify for the peer\'s key, and registers them by name', async () => {
    const issuer = await fed.carolIssuer()
    const key = await generatePeerKey()
    const chain = await issuer.issue({ publicKey: key.publicKey, name: 'guest-dave', role: 'client' })
    const identity = await fed.trustStore().verifyChain(chain.map(c => new Uint8Array(c.rawData)), peerIdFromPrivateKey(key))
    assert.equal(identity.name, 'guest-dave@office.collective.local')
    assert.equal(identity.role, 'client')
    assert.equal((await issuer.registered('guest-dave'))?.serialNumber, chain[0].serialNumber)
    assert.equal(await issuer.registered('guest-nobody'), undefined)
  })
})

describe('CertificateRenewal', () => {
  let fed: DiskFederation
  let renewal: CertificateRenewal
  let now: number
  before(async () => {
    fed = await diskFederation()
    now = Date.now()
    renewal = new CertificateRenewal({ issuer: await fed.carolIssuer(), trustStore: fed.trustStore(), logger: defaultLogger(), now: () => now })
  })
  after(async () => { await fed.remove() })

  it('renews the same key, name and role with a new serial', async () => {
    const laptop = await fed.component('carol', 'laptop', 'client')
    const chain = await renewal.reissue(laptop.identity)
    const renewed = await fed.trustStore().verifyChain(chain.map(c => new Uint8Array(c.rawData)), peerIdFromPrivateKey(laptop.key))
    assert.deepEqual([renewed.name, renewed.role, renewed.peerId], [laptop.identity.name, 'client', laptop.identity.peerId])
    assert.notEqual(renewed.serial, laptop.identity.serial)
  })

  it('gives the validity asked for, at most 365 days, never one that has passed', async () => {
    const node = await fed.component('carol', 'node-01', 'node')
    const [thirty] = await renewal.reissue(node.identity, now + 30 * DAY)
    assert.ok(Math.abs(thirty.notAfter.getTime() - (now + 30 * DAY)) < 2_000)
    const [capped] = await renewal.reissue(node.identity, now + 1000 * DAY)
    assert.ok(capped.notAfter.getTime() <= now + 365 * DAY + 2_000)
    await assert.rejects(renewal.reissue(node.identity, now - 1), { name: 'InvalidMetaRequestError' })
  })

  it('renews only what its member CA issued, and nothing revoked', async () => {
    await assert.rejects(renewal.reissue(fed.coordinator('alice').identity), { name: 'OperationNotAllowedError' })
    const phone = await fed.component('carol', 'phone', 'client')
    const trustStore = fed.trustStore()
    const strict = new CertificateRenewal({ issuer: await fed.carolIssuer(), trustStore, logger: defaultLogger() })
    trustStore.revokeSerial(phone.identity.serial)
    await assert.rejects(strict.reissue(phone.identity), { name: 'CertificateRevokedError' })
  })

  it('answers CERT_RENEW for the connection\'s verified caller only', async () => {
    const laptop = await fed.component('carol', 'laptop-2', 'client')
    const req = { ...MetaRequest.decode(new Uint8Array(0)), op: MetaOp.CERT_RENEW }
    const res = await renewal.serve(req, { remotePeer: peerIdFromPrivateKey(laptop.key), caller: laptop.identity, signal: AbortSignal.timeout(5_000) })
    assert.equal(res.name, laptop.identity.name)
    assert.equal(res.certificates?.length, 2)
    assert.equal(res.expiresAtMs, new X509Certificate(res.certificates![0].slice()).notAfter.getTime())
    await assert.rejects(renewal.serve(req, { remotePeer: peerIdFromPrivateKey(laptop.key), signal: AbortSignal.timeout(5_000) }), { name: 'UnknownPeerError' })
  })
})

describe('renewComponent', () => {
  let fed: DiskFederation
  before(async () => { fed = await diskFederation() })
  after(async () => { await fed.remove() })

  it('reissues a component folder\'s certificate with the member CA that issued it', async () => {
    const node = await fed.component('carol', 'node-02', 'node')
    const { cert, previous } = await renewComponent({ memberDir: fed.memberDir('carol'), dir: node.dir, validityDays: 400 })
    assert.equal(describeCertificate(cert).federatedName, 'node-02@office.collective.local')
    assert.equal(describeCertificate(cert).peerId, node.identity.peerId)
    assert.ok(cert.notAfter > previous.notAfter)
    await assert.rejects(renewComponent({ memberDir: fed.memberDir('alice'), dir: node.dir }), { name: 'ForeignCertificateError' })
  })
})
