import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { call } from '../../src/control/client.js'
import { Cleanup, cli, waitFor } from '../../test/helpers/daemons.js'
import { MemberFederation } from '../../test/helpers/members.js'

/**
 * Revocation across the federation: alice revokes one of her nodes with her member CA, the root revokes bob as
 * a member; every daemon applies the signed record it receives over gossip, closes its connections to what was
 * revoked and refuses it from then on.
 */

// Gossip reaches every subscriber within a few gossipsub heartbeats (1 s); allow for the shared machine.
const SPREAD_BOUND_MS = 15_000

const cleanup = new Cleanup()
let fed: MemberFederation

async function connectedTo (key: string, peerId: string): Promise<boolean> {
  const peers = await call(fed.socket(key), 'peers') as Array<{ peerId: string }>
  return peers.some(p => p.peerId === peerId)
}

describe('revocation', () => {
  before(async () => {
    fed = await MemberFederation.create(cleanup, {
      members: [{ name: 'alice', domain: 'home.collective.local' }, { name: 'bob', domain: 'garage.collective.local' }],
      nodes: 1,
      federation: { probeInterval: '500ms', probeTimeout: '250ms', suspicionTimeout: '3s', syncInterval: '2s', announceInterval: '1s' }
    })
    await fed.startAll()
    await fed.converge('all four peers alive', view => [...fed.peers.values()].every(p => view.get(p.name)?.state === 'alive'), 60_000)
  })

  after(async () => { await cleanup.run() })

  it('a node revoked by its member is disconnected and refused everywhere', async () => {
    const node = fed.peer('node-01.alice')
    await waitFor('bob\'s coordinator to hold a connection to alice\'s node', async () => await connectedTo('coordinator.bob', node.peerId!), 30_000)
    const startedAt = Date.now()
    const r = await cli(['cert', 'revoke', 'node-01', '--member-dir', fed.ca.members.get('alice')!.dir, '--reason', 'laptop stolen', '--home', fed.peer('coordinator.alice').dir])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /revoked certificate node-01@home\.collective\.local/)
    for (const key of ['coordinator.alice', 'coordinator.bob', 'node-01.bob']) {
      await waitFor(`${key} to apply the revocation`, async () => (await call(fed.socket(key), 'revocations') as any[]).some(x => x.peerId === node.peerId), SPREAD_BOUND_MS)
      await waitFor(`${key} to drop its connection to the revoked node`, async () => !(await connectedTo(key, node.peerId!)), SPREAD_BOUND_MS)
    }
    console.log(`revocation applied and enforced at every peer within ${Date.now() - startedAt} ms`)
    // The node keeps trying to come back: every attempt is refused in the handshake, and it is declared dead.
    await waitFor('alice\'s coordinator to refuse the revoked node', async () => ((await call(fed.socket('coordinator.alice'), 'status')).refusals as any[]).some(x => x.remotePeer === node.peerId), 30_000)
    await fed.converge('the revoked node dead', view => view.get(node.name)?.state === 'dead', 30_000)
    assert.equal(await connectedTo('coordinator.alice', node.peerId!), false)
  })

  it('a member revoked by the root loses every connection; its forged or repeated records change nothing', async () => {
    const bob = fed.peer('coordinator.bob')
    const r = await cli(['member', 'revoke', 'bob', '--root-dir', fed.ca.rootDir, '--home', fed.peer('coordinator.alice').dir])
    assert.equal(r.code, 0, r.stderr)
    await waitFor('alice to drop bob', async () => !(await connectedTo('coordinator.alice', bob.peerId!)), SPREAD_BOUND_MS)
    await fed.converge('bob\'s coordinator dead', view => view.get(bob.name)?.state === 'dead', 30_000, ['coordinator.alice'])
    const again = await cli(['member', 'revoke', 'bob', '--root-dir', fed.ca.rootDir, '--home', fed.peer('coordinator.alice').dir])
    assert.equal(again.code, 0, again.stderr)
    const bad = await call(fed.socket('coordinator.alice'), 'revocation.publish', { record: Buffer.from('not a revocation').toString('base64') }).catch(err => err)
    assert.equal(bad.remoteName ?? bad.name, 'MalformedRevocationError')
  })
})
