import '../../../src/polyfill.js'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MemberStatus, MemberUpdate, SwimKind } from '../../../src/gen/swim.js'
import { privateKeySigner } from '../../../src/membership/signing.js'
import { signingPayload } from '../../../src/membership/record.js'
import { Swim } from '../../../src/membership/swim.js'
import { checksumSigner, checksumVerifier } from '../../../src/membership/simulation.js'
import { Cluster, TIMING, logger } from './fixtures.js'
import type { SwimRequest } from '../../../src/gen/swim.js'
import type { TestMember } from './fixtures.js'
import type { PrivateKey } from '@libp2p/interface'

function ping (updates: MemberUpdate[], lamport = 0): SwimRequest {
  return { kind: SwimKind.PING, target: '', timeoutMs: 0, lamport, updates }
}

/** `holder`'s wire record about `subject` */
function recordOf (holder: TestMember, subject: TestMember): MemberUpdate {
  const r = holder.swim.records().find(u => u.id === subject.id)
  assert.ok(r != null, 'holder knows the subject')
  return { ...r, addrs: [...r.addrs], meta: r.meta.map(m => ({ ...m })) }
}

async function signedBy (key: PrivateKey, u: MemberUpdate): Promise<MemberUpdate> {
  return { ...u, signature: new Uint8Array(await privateKeySigner(key).sign(signingPayload(u))) }
}

function statesSeen (m: TestMember, subject: string): string[] {
  return m.changes.filter(c => c.member.id === subject).map(c => c.member.state)
}

describe('Swim', () => {
  it('suspects a crashed member, then declares it dead everywhere once the suspicion timeout ran out', async () => {
    const c = await Cluster.of(4)
    const [a, b, d, victim] = c.members
    c.network.crash(victim.id)
    await victim.swim.stop()
    await c.clock.advance(20_000)
    const live = [a, b, d]
    for (const m of live) {
      assert.equal(m.swim.get(victim.id)?.state, 'dead', `${m.swim.get(m.id)?.meta.name} sees the victim dead`)
      assert.deepEqual(statesSeen(m, victim.id).slice(-2), ['suspect', 'dead'])
    }
    const events = live.flatMap(m => m.changes.filter(e => e.member.id === victim.id))
    const firstSuspect = Math.min(...events.filter(e => e.member.state === 'suspect').map(e => e.at))
    const firstDead = Math.min(...events.filter(e => e.member.state === 'dead').map(e => e.at))
    const lastDead = Math.max(...events.filter(e => e.member.state === 'dead').map(e => e.at))
    assert.ok(firstDead >= firstSuspect + TIMING.suspicionTimeoutMs, 'nobody declares death before the suspicion timeout')
    assert.ok(lastDead <= firstSuspect + TIMING.suspicionTimeoutMs + 2 * TIMING.probeIntervalMs, `dead everywhere ${lastDead - firstSuspect} ms after the first suspicion`)
    await c.stop()
  })

  it('lets a suspected member refute with a higher incarnation, so it is never declared dead', async () => {
    const c = await Cluster.of(3)
    const [a, b, target] = c.members
    const claim = { ...recordOf(a, target), status: MemberStatus.SUSPECT, version: 99 }
    await a.swim.handle(b.id, ping([claim]))
    assert.equal(a.swim.get(target.id)?.state, 'suspect')
    await c.clock.advance(TIMING.suspicionTimeoutMs * 2)
    for (const m of [a, b]) {
      const seen = m.swim.get(target.id)
      assert.equal(seen?.state, 'alive')
      assert.equal(seen?.incarnation, 1)
      assert.ok(!statesSeen(m, target.id).includes('dead'))
    }
    assert.equal(target.swim.get(target.id)?.incarnation, 1)
    await c.stop()
  })

  it('never resurrects a dead member from older information; only a higher incarnation signed by it does', async () => {
    const c = await Cluster.of(3)
    const [a, b, victim] = c.members
    const old = recordOf(a, victim)
    c.network.crash(victim.id)
    await victim.swim.stop()
    await c.clock.advance(15_000)
    assert.equal(a.swim.get(victim.id)?.state, 'dead')
    // The same incarnation, even with a far higher Lamport version, is older news than the death.
    await a.swim.handle(b.id, ping([{ ...old, version: 1_000_000 }]))
    await a.swim.mergeRecords(b.id, [old])
    assert.equal(a.swim.get(victim.id)?.state, 'dead')
    const back = await signedBy(victim.key, { ...old, incarnation: 1, addrs: ['/ip4/127.0.0.1/tcp/4002'] })
    await a.swim.handle(b.id, ping([back]))
    assert.equal(a.swim.get(victim.id)?.state, 'alive')
    assert.deepEqual(a.swim.get(victim.id)?.addrs, ['/ip4/127.0.0.1/tcp/4002'])
    await c.stop()
  })

  it('keeps a Lamport clock: a received clock raises it and later changes are versioned above it', async () => {
    const c = await Cluster.of(2)
    const [a, b] = c.members
    const before = a.swim.get(a.id)!
    const res = await a.swim.handle(b.id, ping([], 5000))
    assert.ok(res.lamport > 5000)
    await a.swim.updateSelf({ meta: { name: 'renamed' } })
    const after = a.swim.get(a.id)!
    assert.ok(after.version > res.lamport, `version ${after.version} after clock ${res.lamport}`)
    assert.equal(after.incarnation, before.incarnation + 1)
    await c.clock.advance(3000)
    assert.equal(b.swim.get(a.id)?.meta.name, 'renamed')
    assert.equal(b.swim.get(a.id)?.version, after.version)
    await c.stop()
  })

  it('refuses forged records: a changed body under the old signature, or a body signed by another member', async () => {
    const c = await Cluster.of(3)
    const [a, b, subject] = c.members
    const genuine = recordOf(a, subject)
    const moved = { ...genuine, incarnation: 1, addrs: ['/ip4/6.6.6.6/tcp/1'] }
    await a.swim.handle(b.id, ping([moved]))
    await a.swim.handle(b.id, ping([await signedBy(b.key, moved)]))
    await a.swim.mergeRecords(b.id, [await signedBy(b.key, { ...moved, status: MemberStatus.LEFT })])
    assert.equal(a.swim.get(subject.id)?.incarnation, 0)
    assert.deepEqual(a.swim.get(subject.id)?.addrs, genuine.addrs)
    assert.equal(a.swim.get(subject.id)?.state, 'alive')
    // The same change signed by the subject is accepted: the refusals above were the signature's doing.
    await a.swim.handle(b.id, ping([await signedBy(subject.key, moved)]))
    assert.deepEqual(a.swim.get(subject.id)?.addrs, ['/ip4/6.6.6.6/tcp/1'])
    await c.stop()
  })

  it('refuses oversized and malformed messages and records', async () => {
    const c = await Cluster.of(3)
    const [a, b, subject] = c.members
    const genuine = recordOf(a, subject)
    assert.equal((await a.swim.handle(b.id, ping(Array.from({ length: 13 }, () => genuine)))).error, 'InvalidRequestError')
    assert.equal((await a.swim.handle(b.id, { ...ping([]), kind: SwimKind.PING_REQ })).error, 'InvalidRequestError')
    const tooManyAddrs = await signedBy(subject.key, { ...genuine, incarnation: 1, addrs: Array.from({ length: 17 }, (_, i) => `/ip4/10.0.0.${i}/tcp/1`) })
    const tooLarge = await signedBy(subject.key, { ...genuine, incarnation: 2, meta: [{ key: 'blob', value: 'x'.repeat(5000) }] })
    const unsortedMeta = await signedBy(subject.key, { ...genuine, incarnation: 3, meta: [{ key: 'b', value: '1' }, { key: 'a', value: '2' }] })
    await a.swim.handle(b.id, ping([tooManyAddrs, tooLarge, unsortedMeta]))
    assert.equal(a.swim.get(subject.id)?.incarnation, 0)
    const unsorted = await a.swim.handleSync(b.id, { after: '', digest: [{ id: 'b', incarnation: 0, status: 0, version: 0 }, { id: 'a', incarnation: 0, status: 0, version: 0 }], last: true, records: [], lamport: 0 })
    assert.equal(unsorted.error, 'InvalidRequestError')
    // Garbage among pushed records is skipped; the valid record next to it still counts.
    const fresh = await signedBy(subject.key, { ...genuine, incarnation: 4 })
    await a.swim.handleSync(b.id, { after: '', digest: [], last: false, records: [new Uint8Array([0xff, 0xff, 0xff]), MemberUpdate.encode(fresh)], lamport: 0 })
    assert.equal(a.swim.get(subject.id)?.incarnation, 4)
    // The wire refuses what libp2p would: a probe above 64 KiB never leaves.
    const huge = ping(Array.from({ length: 12 }, (_, i) => ({ ...genuine, meta: [{ key: 'k', value: String(i).repeat(6000) }] })))
    await assert.rejects(c.network.transport(b.id).probe(a.id, huge, {}), { name: 'ProtocolError' })
    await c.stop()
  })

  it('repairs by anti-entropy what dissemination never carried', async () => {
    // No piggyback and no gossip: only the digest exchange can move the new meta.
    const quiet = { maxPiggyback: 0, gossipFanout: 0 }
    for (const syncIntervalMs of [1000, 1_000_000]) {
      const c = await Cluster.of(4, { ...quiet, syncIntervalMs })
      const [, , , changed] = c.members
      await changed.swim.updateSelf({ meta: { name: 'moved' } })
      await c.clock.advance(30_000)
      const learnt = c.members.filter(m => m.swim.get(changed.id)?.meta.name === 'moved').length
      assert.equal(learnt, syncIntervalMs === 1000 ? 4 : 1, `sync every ${syncIntervalMs} ms`)
      await c.stop()
    }
  })

  it('merges both sides of a healed partition that had declared each other dead', async () => {
    const c = await Cluster.of(4, { syncIntervalMs: 2000 })
    const [a, b, d, e] = c.members
    c.network.partition([[a.id, b.id], [d.id, e.id]])
    await c.clock.advance(20_000)
    assert.equal(a.swim.get(d.id)?.state, 'dead')
    assert.equal(d.swim.get(a.id)?.state, 'dead')
    c.network.heal()
    await c.clock.advance(60_000)
    for (const m of c.members) {
      assert.deepEqual(m.swim.members().map(r => r.state), ['alive', 'alive', 'alive', 'alive'], `${m.swim.get(m.id)?.meta.name} sees everyone back`)
    }
    await c.stop()
  })

  it('a live member wrongly held dead is told so by the first member it probes, long after the news stopped spreading, and refutes', async () => {
    const c = await Cluster.of(3)
    const [a, b, target] = c.members
    await a.swim.handle(b.id, ping([{ ...recordOf(a, target), status: MemberStatus.DEAD, version: 99 }]))
    assert.equal(a.swim.get(target.id)?.state, 'dead')
    // Spend a's retransmissions of the news on b: piggybacking alone would no longer carry it to anyone.
    for (let i = 0; i < 100; i++) await a.swim.handle(b.id, ping([]))
    assert.ok(!(await a.swim.handle(b.id, ping([]))).updates.some(u => u.id === target.id), 'the news is spent')
    // The target probes a: a's answer tells it what a believes, and it refutes at a higher incarnation.
    const answer = await a.swim.handle(target.id, ping([]))
    assert.ok(answer.updates.some(u => u.id === target.id && u.status === MemberStatus.DEAD), 'the answer carries its death')
    await target.swim.handle(a.id, ping(answer.updates))
    assert.equal(target.swim.get(target.id)?.incarnation, 1)
    await a.swim.handle(target.id, ping([recordOf(target, target)]))
    assert.equal(a.swim.get(target.id)?.state, 'alive')
    await c.stop()
  })

  it('pages a sync exchange larger than one digest page', async () => {
    const c = new Cluster()
    const make = (id: string): Swim => {
      const swim = new Swim({ transport: c.network.transport(id), logger, signer: checksumSigner(id), verifier: checksumVerifier, scheduler: c.clock, random: c.random },
        { ...TIMING, self: { id, addrs: [], meta: {} } })
      c.network.attach(id, swim)
      return swim
    }
    const big = make('big')
    const empty = make('empty')
    await big.start()
    await empty.start()
    const others = Array.from({ length: 1200 }, (_, i) => {
      const u: MemberUpdate = { id: `x${String(i).padStart(5, '0')}`, incarnation: 0, status: MemberStatus.ALIVE, addrs: [`/memory/${i}`], meta: [], signature: new Uint8Array(), version: 1 }
      return { ...u, signature: new Uint8Array(checksumSigner(u.id).sign(signingPayload(u)) as Uint8Array) }
    })
    assert.equal(await big.mergeRecords('test', others), 1200)
    const calls: number[] = []
    const transport = c.network.transport('empty')
    const counted = { ...transport, sync: async (to: string, req: any, options: any) => { calls.push(req.digest.length); return await transport.sync(to, req, options) } }
    const { received } = await c.run(import('../../../src/membership/sync.js').then(async ({ syncWith }) => await syncWith(
      { sorted: () => empty.records(), merge: async (from, records) => await empty.mergeRecords(from, records) },
      'big', async (req, options) => await counted.sync('big', req, options), () => 0)))
    assert.equal(received, 1201)
    assert.equal(empty.members().length, 1202)
    assert.equal(big.get('empty')?.state, 'alive', 'the responder asked for the caller\'s record')
    await big.stop()
    await empty.stop()
  })

  it('spreads a graceful leave as left, never as dead', async () => {
    const c = await Cluster.of(3)
    const [a, b, leaver] = c.members
    await c.run(leaver.swim.leave())
    await c.clock.advance(20_000)
    for (const m of [a, b]) {
      assert.equal(m.swim.get(leaver.id)?.state, 'left')
      assert.ok(!statesSeen(m, leaver.id).includes('dead'))
    }
    await c.stop()
  })

  it('joins through a seed: pulls the member list and is announced to everyone', async () => {
    const c = await Cluster.of(3)
    const joiner = await c.add()
    await c.run(joiner.swim.join([c.members[1].id]))
    assert.equal(joiner.swim.members().length, 4)
    await c.clock.advance(2000)
    for (const m of c.members) assert.equal(m.swim.get(joiner.id)?.state, 'alive')
    const lonely = await c.add()
    await assert.rejects(c.run(lonely.swim.join(['nobody'])), { name: 'JoinError' })
    await c.stop()
  })
})
