import '../../src/polyfill.js'
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { multiaddr } from '@multiformats/multiaddr'
import { TrustStore, readCertificateChain, readPeerKey } from '../../src/identity/index.js'
import { createHost } from '../../src/net/host.js'
import { PeerIdentities } from '../../src/net/peer-identities.js'
import { MetaClient } from '../../src/access/meta-client.js'
import { MetaOp } from '../../src/gen/meta.js'
import { generateInviteCode } from '../../src/permissions/index.js'
import { call } from '../../src/control/client.js'
import { Cleanup, cli, startDaemon, waitFor } from '../../test/helpers/daemons.js'
import { MemberFederation } from '../../test/helpers/members.js'
import type { CliResult, RunningDaemon } from '../../test/helpers/daemons.js'
import type { Host } from '../../src/net/host.js'

/**
 * Invites across real daemons: carol's coordinator (holding carol's member CA) invites a newcomer to /shared; the
 * newcomer redeems with the real CLI from a brand-new identity into a fresh home and then acts, with that
 * identity, on carol's and alice's coordinators. Refused codes (used up, expired, revoked, malformed, unknown)
 * change nothing; certificates are renewed by the issuing member's coordinator.
 */

const cleanup = new Cleanup()
let fed: MemberFederation
const as = async (member: string, ...args: string[]): Promise<CliResult> => await fed.as(member, ...args)
const ok = async (member: string, ...args: string[]): Promise<string> => await fed.ok(member, ...args)
let tmp: string
/** The one successful redemption: its CLI answer and home */
let dave: { name: string, peerId: string, home: string, context: string, config: string, expires: string, grants: Array<{ path: string, rights: string }> }
let joinString: string

async function invite (...args: string[]): Promise<any> {
  return JSON.parse(await ok('carol', 'invite', 'create', ...args, '--json'))
}

async function redeem (joinText: string, ...args: string[]): Promise<CliResult> {
  return await cli(['invite', 'redeem', joinText, ...args], { env: { XDG_DATA_HOME: join(tmp, 'xdg'), XDG_CONFIG_HOME: join(tmp, 'config') } })
}

/** A refusal of the CLI, by error name */
function refused (r: CliResult, name: string): void {
  assert.equal(r.code, 1, `must be refused with ${name}:\n${r.stdout}`)
  assert.match(r.stderr, new RegExp(`\\[${name}\\]`), r.stderr)
}

async function usesOf (id: string): Promise<number> {
  const list = JSON.parse(await ok('carol', 'invite', 'ls', '--json'))
  return list.find((i: any) => i.id === id).uses
}

async function metric (member: string, series: string): Promise<number> {
  const status = await call(fed.socket(`coordinator.${member}`), 'status')
  const text = await (await fetch(status.metrics)).text()
  const line = text.split('\n').find(l => l.startsWith(`${series} `))
  return line == null ? 0 : Number(line.split(' ')[1])
}

/** A libp2p host built from the redeemed home's files with the project's host builder, and meta calls through it */
async function guest (home: string): Promise<{ host: Host, ask: (member: string, op: MetaOp, fields?: Record<string, unknown>) => Promise<any> }> {
  const dir = join(home, 'client')
  const [root] = await readCertificateChain(join(dir, 'root.crt'))
  const chain = (await readCertificateChain(join(dir, 'peer.crt'))).map(c => new Uint8Array(c.rawData))
  const host = await createHost({ privateKey: await readPeerKey(join(dir, 'peer.key')), role: 'client', chain, trustStore: new TrustStore({ root }), identities: new PeerIdentities() })
  await host.start()
  const meta = new MetaClient({ host })
  return {
    host,
    ask: async (member, op, fields = {}) => {
      await host.dial(multiaddr(fed.addrOf(`coordinator.${member}`)))
      return await meta.call(fed.peer(`coordinator.${member}`).peerId as string, { op, ...fields }).catch(err => err)
    }
  }
}

describe('invites between members\' daemons', () => {
  before(async () => {
    fed = await MemberFederation.create(cleanup, { federation: { announceInterval: '1s' } })
    tmp = await cleanup.tempDir('collective-invites-')
    // carol keeps her member CA beside her coordinator: it certifies the newcomers she invites
    const configFile = join(fed.peer('coordinator.carol').dir, 'config.yaml')
    const config = parse(await readFile(configFile, 'utf8'))
    await writeFile(configFile, stringify({ ...config, memberCa: fed.ca.members.get('carol')?.dir }))
    await fed.startAll()
    await ok('carol', 'datastore', 'create', '/shared')
    await ok('carol', 'datastore', 'create', '/photos')
    await ok('alice', 'datastore', 'create', '/media')
  })

  after(async () => { await cleanup.run() })

  it('a brand-new identity redeems an invite into a fresh home and gets exactly the granted access', async () => {
    const created = await invite('--grant', '/shared:read+write', '--max-uses', '1', '--valid', '7d')
    assert.deepEqual(created.grants, [{ path: '/shared', rights: ['read', 'write'] }])
    assert.equal(created.expiresAtMs - created.createdAtMs, 7 * 86_400_000)
    assert.match(created.joinString, /^collective-p2p:\/\/join\?fed=collective\.local&root=[0-9a-f]{64}&addr=.*&code=[a-z2-7]{26}$/)
    joinString = created.joinString

    const r = await redeem(joinString, '--name', 'dave', '--json')
    assert.equal(r.code, 0, r.stderr)
    dave = JSON.parse(r.stdout)
    assert.equal(dave.name, 'guest-dave@office.collective.local')
    assert.deepEqual(dave.grants, [{ path: '/shared', rights: 'read+write' }])
    // a new context of its own, in the default place
    assert.equal(dave.context, 'dave-collective')
    assert.equal(dave.home, join(tmp, 'xdg', 'collective-p2p', 'dave-collective'))
    const contexts = JSON.parse((await cli(['context', 'ls', '--json'], { env: { XDG_CONFIG_HOME: join(tmp, 'config') } })).stdout)
    assert.ok(JSON.stringify(contexts).includes(dave.home), `the new home is a context: ${JSON.stringify(contexts)}`)
    assert.equal((await stat(join(dave.home, 'client', 'peer.key'))).mode & 0o777, 0o600)
    const config = parse(await readFile(dave.config, 'utf8'))
    assert.equal(config.role, 'client')
    assert.deepEqual(config.federation.bootstrap, [fed.addrOf('coordinator.carol')])
    assert.equal(await usesOf(created.id), 1)

    const { host, ask } = await guest(dave.home)
    try {
      assert.equal((await ask('carol', MetaOp.MKDIR, { path: '/shared/from-dave' })).entry?.path, '/shared/from-dave')
      assert.deepEqual((await ask('carol', MetaOp.LS, { path: '/shared' })).entries.map((e: any) => e.path), ['/shared/from-dave'])
      assert.equal((await ask('carol', MetaOp.RIGHTS, { path: '/shared/from-dave' })).rights, 'read+write')
      // nothing more: no delete in /shared, nothing in carol's other DataStore or in alice's, no DataStore of its own
      const denials = [
        await ask('carol', MetaOp.RM, { path: '/shared/from-dave' }),
        await ask('carol', MetaOp.LS, { path: '/photos' }),
        await ask('carol', MetaOp.MKDIR, { path: '/photos/dave' }),
        await ask('alice', MetaOp.LS, { path: '/media' })
      ]
      assert.deepEqual(denials.map(e => [e.name, e.path, e.right]), [
        ['PermissionDeniedError', '/shared/from-dave', 'delete'],
        ['PermissionDeniedError', '/photos', 'read'],
        ['PermissionDeniedError', '/photos/dave', 'write'],
        ['PermissionDeniedError', '/media', 'read']
      ])
      assert.equal((await ask('carol', MetaOp.RIGHTS, { path: '/photos' })).rights, 'none')
    } finally {
      await host.stop()
    }
    // the grant is carol's, to the guest, and shows in her DataStore
    const show = JSON.parse(await ok('carol', 'datastore', 'show', '/shared', '--json'))
    assert.deepEqual(show.grants.map((g: any) => `${g.subject as string}:${g.rights as string}:${g.grantor as string}`), ['guest-dave@office.collective.local:read+write:carol@office.collective.local'])
  })

  it('refuses a used-up code, counted once, and never writes over an existing home', async () => {
    const home = join(tmp, 'erin')
    refused(await redeem(joinString, '--name', 'erin', '--home', home), 'InviteExhaustedError')
    assert.equal(existsSync(home), false, 'a refused redemption writes nothing')
    const id = JSON.parse(await ok('carol', 'invite', 'ls', '--json')).find((i: any) => i.state === 'used up').id
    assert.equal(await usesOf(id), 1)

    // the same context again: refused before the coordinator is asked, so the fresh invite stays unused
    const fresh = await invite('--grant', '/shared:read', '--valid', '36h')
    assert.equal(fresh.expiresAtMs - fresh.createdAtMs, 36 * 3_600_000)
    const key = await readFile(join(dave.home, 'client', 'peer.key'), 'utf8')
    refused(await redeem(fresh.joinString, '--name', 'dave'), 'ContextExistsError')
    // another context name, but dave's home: the home is never written over either
    refused(await redeem(fresh.joinString, '--name', 'dave', '--context', 'dave-again', '--home', dave.home), 'HomeNotEmptyError')
    assert.equal(await readFile(join(dave.home, 'client', 'peer.key'), 'utf8'), key)
    assert.equal(await usesOf(fresh.id), 0)
  })

  it('refuses expired, revoked, malformed and unknown codes by name, counting nothing', async () => {
    const expiring = await invite('--grant', '/shared:read', '--valid', '2s')
    const revoked = await invite('--grant', '/shared:read')
    await ok('carol', 'invite', 'revoke', revoked.id)
    await new Promise(resolve => setTimeout(resolve, 2_500))

    refused(await redeem(expiring.joinString, '--name', 'frank', '--home', join(tmp, 'frank')), 'InviteExpiredError')
    refused(await redeem(revoked.joinString, '--name', 'grace', '--home', join(tmp, 'grace')), 'InviteRevokedError')
    refused(await redeem(revoked.joinString.replace(/code=[a-z2-7]+/, 'code=not-a-code'), '--home', join(tmp, 'h1')), 'InvalidJoinStringError')
    refused(await redeem('collective-p2p://join?fed=collective.local', '--home', join(tmp, 'h2')), 'InvalidJoinStringError')
    refused(await redeem(revoked.joinString.replace(/code=[a-z2-7]+/, `code=${generateInviteCode()}`), '--name', 'heidi', '--home', join(tmp, 'heidi')), 'UnknownInviteError')
    assert.equal(await usesOf(expiring.id), 0)
    assert.equal(await usesOf(revoked.id), 0)
    for (const name of ['frank', 'grace', 'h1', 'h2', 'heidi']) assert.equal(existsSync(join(tmp, name)), false)
    const states = JSON.parse(await ok('carol', 'invite', 'ls', '--json')).map((i: any) => i.state).sort()
    assert.deepEqual(states, ['expired', 'open', 'revoked', 'used up'])
  })

  it('counts invites in carol\'s metrics', async () => {
    assert.equal(await metric('carol', 'collective_invites_created_total'), 4)
    assert.equal(await metric('carol', 'collective_invites_redeemed_total'), 1)
    // Expiry is noticed by a periodic look at the store (every 10 s): until then the invite that expired a moment
    // ago still counts as active, so both figures are read after it.
    await waitFor('the expired invite to be counted', async () => await metric('carol', 'collective_invites_expired_total') === 1, 15_000, 500)
    assert.equal(await metric('carol', 'collective_invites_active'), 1)
  })

  it('renews certificates with the issuing member\'s coordinator, and the daemon presents the new one after a restart', async () => {
    // the guest's client daemon, from the redeemed home, asks carol's coordinator (CERT_RENEW)
    let daemon: RunningDaemon = await startDaemon(cleanup, join(dave.home, 'client'))
    const renewed = JSON.parse((await cli(['cert', 'renew', '--home', dave.home, '--json'])).stdout)
    assert.equal(renewed.name, dave.name)
    assert.equal(renewed.via, 'coordinator@office.collective.local')
    assert.ok(Date.parse(renewed.expires) > Date.parse(dave.expires), `${String(renewed.expires)} extends ${dave.expires}`)
    assert.equal(renewed.restartRequired, true)
    assert.equal((await call(daemon.socket, 'status')).certificateExpires, new Date(dave.expires).toISOString(), 'the running daemon keeps its certificate')
    assert.equal(await daemon.stop(), 0)
    daemon = await startDaemon(cleanup, join(dave.home, 'client'))
    assert.equal(daemon.status.certificateExpires, renewed.expires)
    await daemon.stop()

    // carol's coordinator holds its member CA: it renews its own certificate itself
    const before = (await call(fed.socket('coordinator.carol'), 'status')).certificateExpires
    const own = JSON.parse(await ok('carol', 'cert', 'renew', '--json'))
    assert.equal(own.via, 'this coordinator\'s member CA')
    assert.ok(Date.parse(own.expires) > Date.parse(before))

    // bob's CA is on this machine but not his coordinator's: renewed here, by the CLI
    const bob = fed.peer('coordinator.bob').dir
    const [previous] = await readCertificateChain(join(bob, 'peer.crt'))
    const local = JSON.parse(await ok('bob', 'cert', 'renew', '--member-dir', fed.ca.members.get('bob')?.dir as string, '--dir', bob, '--days', '400', '--json'))
    assert.ok(Date.parse(local.expires) > previous.notAfter.getTime())
    const [current] = await readCertificateChain(join(bob, 'peer.crt'))
    assert.equal(current.notAfter.toISOString(), local.expires)
  })
})
