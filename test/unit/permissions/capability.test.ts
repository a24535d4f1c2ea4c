import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Capability, CapabilityClaims } from '../../../src/gen/capability.js'
import {
  MAX_CAPABILITY_BYTES, MAX_CAPABILITY_CIDS, issueCapabilities, issueCapability, verifyCapability,
  type IssueCapabilityOptions, type VerifyCapabilityOptions
} from '../../../src/permissions/capability.js'
import { cidOf } from '../../../src/storage/chunking.js'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'

interface Peer { key: Ed25519PrivateKey, id: PeerId }

async function peer (): Promise<Peer> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key) }
}

describe('capabilities', () => {
  const NOW = 1_800_000_000_000
  let coordinator: Peer
  let other: Peer
  let client: Peer
  let node: Peer
  let node2: Peer
  let cids: string[]

  before(async () => {
    [coordinator, other, client, node, node2] = await Promise.all([peer(), peer(), peer(), peer(), peer()])
    cids = await Promise.all(Array.from({ length: 200 }, async (_, i) => (await cidOf(new TextEncoder().encode(`chunk ${i}`))).toString()))
  })

  function issue (extra: Partial<IssueCapabilityOptions> = {}): Promise<Uint8Array> {
    return issueCapability({ privateKey: coordinator.key, holder: client.id, audience: node.id, op: 'get', cids: cids.slice(0, 3), now: NOW, ...extra })
  }

  function verify (token: Uint8Array, extra: Partial<VerifyCapabilityOptions> = {}): ReturnType<typeof verifyCapability> {
    return verifyCapability(token, { cid: cids[1], op: 'get', node: node.id, holder: client.id, now: NOW + 1000, trustedIssuers: new Set([coordinator.id.toString()]), ...extra })
  }

  it('verifies a token for each chunk it covers', async () => {
    const token = await issue()
    for (const cid of cids.slice(0, 3)) {
      const v = await verify(token, { cid })
      assert.equal(v.issuer, coordinator.id.toString())
      assert.equal(v.holder, client.id.toString())
      assert.equal(v.audience, node.id.toString())
      assert.equal(v.op, 'get')
      assert.equal(v.chunkCount, 3)
      assert.equal(v.expiresAtMs, NOW + 5 * 60_000)
    }
    // any node, and a trust predicate instead of a set
    const anyNode = await issue({ audience: undefined })
    assert.equal((await verify(anyNode, { node: node2.id, trustedIssuers: id => id === coordinator.id.toString() })).audience, undefined)
  })

  it('refuses each failure with its own error', async () => {
    const token = await issue()
    await assert.rejects(verify(token, { now: NOW + 5 * 60_000 }), { name: 'CapabilityExpiredError' })
    await assert.rejects(verify(await issue({ now: NOW + 10 * 60_000 })), { name: 'CapabilityExpiredError' })
    await assert.rejects(verify(token, { op: 'put' }), { name: 'CapabilityOperationError' })
    await assert.rejects(verify(token, { op: 'delete' }), { name: 'CapabilityOperationError' })
    await assert.rejects(verify(token, { cid: cids[3] }), { name: 'CapabilityCidError' })
    await assert.rejects(verify(token, { cid: 'not-a-cid' }), { name: 'CapabilityCidError' })
    await assert.rejects(verify(token, { node: node2.id }), { name: 'CapabilityAudienceError' })
    await assert.rejects(verify(token, { holder: other.id }), { name: 'CapabilityHolderError' })
    await assert.rejects(verify(token, { trustedIssuers: new Set([other.id.toString()]) }), { name: 'UntrustedCapabilityIssuerError' })
    await assert.rejects(verify(new Uint8Array(MAX_CAPABILITY_BYTES + 1)), { name: 'CapabilityTooLargeError' })
    await assert.rejects(verify(new Uint8Array(0)), { name: 'MalformedCapabilityError' })
    await assert.rejects(verify(new Uint8Array([0xff, 0xff, 0xff])), { name: 'MalformedCapabilityError' })
  })

  it('refuses a token whose claims were changed, or signed by someone else in the issuer\'s name', async () => {
    const token = await issue()
    const envelope = Capability.decode(token)
    const claims = CapabilityClaims.decode(envelope.claims)
    // widen the expiry: the signature no longer matches
    const widened = Capability.encode({ claims: CapabilityClaims.encode({ ...claims, expiresAtMs: claims.expiresAtMs + 3_600_000 }), signature: envelope.signature })
    await assert.rejects(verify(widened), { name: 'CapabilitySignatureError' })
    // another key signs claims naming the trusted coordinator as issuer
    const forged = await issueCapability({ privateKey: other.key, holder: client.id, op: 'get', cids: [cids[1]], now: NOW })
    const forgedEnvelope = Capability.decode(forged)
    const forgedClaims = CapabilityClaims.encode({ ...CapabilityClaims.decode(forgedEnvelope.claims), issuer: coordinator.id.toMultihash().bytes as Uint8Array<ArrayBuffer> })
    await assert.rejects(verify(Capability.encode({ claims: forgedClaims, signature: forgedEnvelope.signature })), { name: 'CapabilitySignatureError' })
    await assert.rejects(verify(Capability.encode({ claims: envelope.claims, signature: new Uint8Array(0) })), { name: 'MalformedCapabilityError' })
    await assert.rejects(verify(Capability.encode({ claims: CapabilityClaims.encode({ ...claims, version: 2 }), signature: envelope.signature })), { name: 'MalformedCapabilityError' })
  })

  it('refuses to issue what it could not verify', async () => {
    await assert.rejects(issue({ cids: [] }), { name: 'MalformedCapabilityError' })
    await assert.rejects(issue({ cids: ['nope'] }), { name: 'MalformedCapabilityError' })
    await assert.rejects(issue({ op: 'list' as any }), { name: 'MalformedCapabilityError' })
    await assert.rejects(issue({ ttlMs: 0 }), { name: 'MalformedCapabilityError' })
    await assert.rejects(issue({ cids: cids.slice(0, MAX_CAPABILITY_CIDS + 1) }), { name: 'CapabilityTooLargeError' })
    const full = await issue({ cids: cids.slice(0, MAX_CAPABILITY_CIDS) })
    assert.ok(full.byteLength <= MAX_CAPABILITY_BYTES)
  })

  it('splits a long file into tokens of at most MAX_CAPABILITY_CIDS chunks, each verifying its own', async () => {
    const issued = await issueCapabilities({ privateKey: coordinator.key, holder: client.id, op: 'put', cids, now: NOW })
    assert.deepEqual(issued.map(i => i.cids.length), [64, 64, 64, 8])
    assert.deepEqual(issued.flatMap(i => i.cids), cids)
    for (const { cids: covered, token } of issued) {
      await verify(token, { op: 'put', cid: covered[covered.length - 1] })
    }
    await assert.rejects(verify(issued[0].token, { op: 'put', cid: cids[64] }), { name: 'CapabilityCidError' })
  })

  it('costs (informational): sign and verify per token', async () => {
    const rounds = 100
    const list = cids.slice(0, MAX_CAPABILITY_CIDS)
    let t = process.hrtime.bigint()
    let token: Uint8Array = new Uint8Array(0)
    for (let i = 0; i < rounds; i++) token = await issue({ cids: list })
    const signUs = Number(process.hrtime.bigint() - t) / 1000 / rounds
    t = process.hrtime.bigint()
    for (let i = 0; i < rounds; i++) await verify(token, { cid: list[i % list.length] })
    const verifyUs = Number(process.hrtime.bigint() - t) / 1000 / rounds
    console.log(`# capability (${list.length} CIDs, ${token.byteLength} bytes): issue ${signUs.toFixed(0)} µs, verify ${verifyUs.toFixed(0)} µs per op`)
    assert.ok(signUs > 0 && verifyUs > 0)
  })
})
